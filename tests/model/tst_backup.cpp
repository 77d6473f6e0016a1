// Backups of a native environment's SQLite database, on real files: SQLite's
// online backup while a writer holds the database open, a private file and
// folder, the manifest with its sha256, the listing, and a failure that
// leaves nothing behind. (PostgreSQL in the stack is covered by the stack
// e2e, tests/e2e/tst_compose.cpp, through a real engine.)
#include "core/session.h"
#include "db/backup.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>
#include <sys/stat.h>

using namespace pilothouse;

namespace {

int modeOf(const QString &path)
{
    struct stat st
    {
    };
    return ::stat(QFile::encodeName(path).constData(), &st) == 0 ? int(st.st_mode & 0777) : -1;
}

Environment sqliteEnvironment(const QString &name, const QString &dbPath)
{
    Environment e;
    e.name = name;
    e.kind = EnvironmentKind::Native;
    DatabaseTarget db;
    db.dsn = QUrl::fromLocalFile(dbPath);
    db.dsn.setScheme(QStringLiteral("sqlite"));
    e.database = db;
    return e;
}

struct BackupOutcome
{
    BackupInfo info;
    QString error;
};

BackupOutcome backUp(StackSession &session)
{
    BackupJob job(&session);
    QSignalSpy done(&job, &BackupJob::finished);
    job.start();
    if (!done.wait(60000))
        return { {}, QStringLiteral("test: no answer within 60 s") };
    return { done.first().at(0).value<BackupInfo>(), done.first().at(1).toString() };
}

qint64 rowsIn(const QString &path)
{
    qint64 n = -1;
    {
        QSqlDatabase db =
            QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("count"));
        db.setDatabaseName(path);
        if (db.open()) {
            QSqlQuery q(db);
            if (q.exec(QStringLiteral("SELECT count(*) FROM jobs")) && q.next())
                n = q.value(0).toLongLong();
        }
        db.close();
    }
    QSqlDatabase::removeDatabase(QStringLiteral("count"));
    return n;
}

} // namespace

class TestBackup : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;

private slots:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true); // the data folder under ~/.qttest
        QVERIFY(m_dir.isValid());
        QDir(backupFolder(QStringLiteral("bk"))).removeRecursively();
        QDir(backupFolder(QStringLiteral("gone"))).removeRecursively();
    }

    // While another connection holds the database open in WAL mode with an
    // open write transaction, the backup copies what was committed, whole.
    void sqliteOnlineBackupIsPrivateVerifiedAndListed()
    {
        const QString dbPath = m_dir.filePath(QStringLiteral("live.db"));
        QSqlDatabase writer =
            QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("w"));
        writer.setDatabaseName(dbPath);
        QVERIFY(writer.open());
        QSqlQuery q(writer);
        QVERIFY(q.exec(QStringLiteral("PRAGMA journal_mode=WAL")));
        QVERIFY(q.exec(QStringLiteral("CREATE TABLE jobs (id INTEGER PRIMARY KEY, body TEXT)")));
        QVERIFY(writer.transaction());
        for (int i = 0; i < 1000; ++i)
            QVERIFY(q.exec(QStringLiteral("INSERT INTO jobs (body) VALUES ('job %1')").arg(i)));
        QVERIFY(writer.commit());
        // A write under way: not committed, not in the backup.
        QVERIFY(writer.transaction());
        QVERIFY(q.exec(QStringLiteral("INSERT INTO jobs (body) VALUES ('uncommitted')")));

        StackSession session(sqliteEnvironment(QStringLiteral("bk"), dbPath));
        const BackupOutcome o = backUp(session);
        QVERIFY2(o.error.isEmpty(), qPrintable(o.error));
        QVERIFY(writer.rollback());
        writer.close();

        const BackupInfo &b = o.info;
        QCOMPARE(b.environment, QStringLiteral("bk"));
        QCOMPARE(b.format, QStringLiteral("sqlite"));
        QVERIFY(b.verifiedOk());
        QVERIFY(QFileInfo::exists(b.path));
        QVERIFY(!QFileInfo::exists(b.path + QStringLiteral(".partial")));
        QCOMPARE(modeOf(b.path), 0600);
        QCOMPARE(modeOf(b.path + QStringLiteral(".json")), 0600);
        QCOMPARE(modeOf(backupFolder(QStringLiteral("bk"))), 0700);
        QCOMPARE(rowsIn(b.path), 1000);
        QFile f(b.path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(b.size, f.size());
        QCOMPARE(b.sha256,
                 QString::fromLatin1(
                     QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256).toHex()));
        // Listed from its manifest, newest first.
        const BackupOutcome second = backUp(session);
        QVERIFY2(second.error.isEmpty(), qPrintable(second.error));
        const QList<BackupInfo> list = listBackups(QStringLiteral("bk"));
        QCOMPARE(list.size(), 2);
        QCOMPARE(list.first().path, second.info.path);
        QCOMPARE(list.last().sha256, b.sha256);
    }

    // Restore into the stopped environment: the file replaced in one rename,
    // its -wal and -shm gone with it, the replaced one kept aside; a
    // tampered archive is refused before anything is touched.
    void sqliteRestoreReplacesTheFile()
    {
        const QString dbPath = m_dir.filePath(QStringLiteral("live.db"));
        const QList<BackupInfo> list = listBackups(QStringLiteral("bk"));
        QVERIFY(!list.isEmpty());
        // Written after the backup: lost by the restore.
        {
            QSqlDatabase w =
                QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("w2"));
            w.setDatabaseName(dbPath);
            QVERIFY(w.open());
            QSqlQuery q(w);
            QVERIFY(q.exec(QStringLiteral("INSERT INTO jobs (body) VALUES ('later')")));
            w.close();
        }
        QSqlDatabase::removeDatabase(QStringLiteral("w2"));
        QCOMPARE(rowsIn(dbPath), 1001);
        QFile wal(dbPath + QStringLiteral("-wal"));
        QVERIFY(wal.open(QIODevice::WriteOnly)); // as a crashed writer would leave it
        wal.close();

        StackSession session(sqliteEnvironment(QStringLiteral("bk"), dbPath));
        BackupInfo tampered = list.last();
        tampered.sha256 = QString(64, QLatin1Char('0'));
        {
            RestoreJob job(&session);
            QSignalSpy done(&job, &RestoreJob::finished);
            job.start(tampered);
            QVERIFY(done.wait(30000));
            QVERIFY2(done.first().at(0).toString().contains(QLatin1String("sha256")),
                     qPrintable(done.first().at(0).toString()));
            QCOMPARE(rowsIn(dbPath), 1001); // untouched
        }
        RestoreJob job(&session);
        QSignalSpy done(&job, &RestoreJob::finished);
        job.start(list.last());
        QVERIFY(done.wait(30000));
        QVERIFY2(done.first().at(0).toString().isEmpty(),
                 qPrintable(done.first().at(0).toString()));
        QCOMPARE(rowsIn(dbPath), 1000);
        QVERIFY(!QFileInfo::exists(dbPath + QStringLiteral("-wal")));
        QCOMPARE(rowsIn(dbPath + QStringLiteral(".before-restore")), 1001);
        QCOMPARE(modeOf(dbPath), 0600);
        QVERIFY(restoreMarker(QStringLiteral("bk")).isEmpty());
    }

    // A restore cut off by the panel's death leaves its marker: the next
    // start of either front end says what happened and what to do.
    void anUnfinishedRestoreIsExplained()
    {
        QVERIFY(unfinishedRestore(QStringLiteral("bk")).isEmpty());
        QFile marker(QDir(backupFolder(QStringLiteral("bk")))
                         .filePath(QStringLiteral("restore-in-progress.json")));
        QVERIFY(marker.open(QIODevice::WriteOnly));
        marker.write(R"({"backup": "/b/x.dump", "safety": "/b/safe.dump", "stopped": ["a", "b"],
                         "started_at": "2026-12-03T10:00:00Z"})");
        marker.close();
        const QString said = unfinishedRestore(QStringLiteral("bk"));
        QVERIFY2(said.contains(QLatin1String("/b/x.dump")) &&
                     said.contains(QLatin1String("did not finish")) &&
                     said.contains(QLatin1String("2 service(s)")) &&
                     said.contains(QLatin1String("Start starts them")) &&
                     said.contains(QLatin1String("pilothousectl restore /b/safe.dump --yes")),
                 qPrintable(said));
        clearRestoreMarker(QStringLiteral("bk"));
        QVERIFY(unfinishedRestore(QStringLiteral("bk")).isEmpty());
    }

    // A database that is not there: a clear error, and no file of it left.
    void aFailedBackupLeavesNothing()
    {
        StackSession session(
            sqliteEnvironment(QStringLiteral("gone"), m_dir.filePath(QStringLiteral("none.db"))));
        const BackupOutcome o = backUp(session);
        QVERIFY2(o.error.contains(QLatin1String("does not exist")), qPrintable(o.error));
        const QDir folder(backupFolder(QStringLiteral("gone")));
        QVERIFY2(folder.entryList(QDir::Files).isEmpty(),
                 qPrintable(folder.entryList(QDir::Files).join(u',')));
        QVERIFY(listBackups(QStringLiteral("gone")).isEmpty());
    }

    // Without a database configured, the job says what to add.
    void noDatabaseSaysWhatToAdd()
    {
        Environment e;
        e.name = QStringLiteral("nodb");
        e.kind = EnvironmentKind::Native;
        StackSession session(e);
        const BackupOutcome o = backUp(session);
        QVERIFY2(o.error.contains(QLatin1String("has no database")), qPrintable(o.error));
    }
};

QTEST_GUILESS_MAIN(TestBackup)
#include "tst_backup.moc"
