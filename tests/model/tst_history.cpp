// The deployment history on real SQLite files, including a writer process
// killed with SIGKILL in the middle of its work.
#include "deploy/history.h"
#include "deploy/historystore.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QTemporaryDir>
#include <QtTest>
#include <csignal>
#include <cstdio>
#include <thread>

using namespace pilothouse;

namespace {

// Child mode: deploy and record as fast as possible, saying what is committed.
int writer(const QString &path, bool holdRunning)
{
    DeploymentHistory h;
    if (!h.open(path))
        return 1;
    for (int i = 1;; ++i) {
        Deployment d;
        d.environment = QStringLiteral("staging");
        d.service = QStringLiteral("api");
        d.fromTag = QStringLiteral("sha-%1").arg(i - 1);
        d.toTag = QStringLiteral("sha-%1").arg(i);
        const auto id = h.begin(d);
        if (!id)
            return 2;
        if (holdRunning && i == 300) {
            std::printf("began %lld\n", static_cast<long long>(*id));
            std::fflush(stdout);
            std::this_thread::sleep_for(std::chrono::hours(1));
        }
        if (!h.finish(*id, Deployment::Outcome::Succeeded, {}))
            return 3;
        std::printf("committed %d\n", i);
        std::fflush(stdout);
    }
}

} // namespace

class TestHistory final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    static int count(const QString &path, const QString &where)
    {
        QSqlDatabase db =
            QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("check"));
        db.setDatabaseName(path);
        int n = -1;
        if (db.open()) {
            QSqlQuery q(db);
            if (q.exec(QStringLiteral("SELECT count(*) FROM deployments WHERE ") + where) &&
                q.next())
                n = q.value(0).toInt();
            db.close();
        }
        db = {};
        QSqlDatabase::removeDatabase(QStringLiteral("check"));
        return n;
    }

    static QString integrity(const QString &path)
    {
        QString result;
        {
            QSqlDatabase db =
                QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("integrity"));
            db.setDatabaseName(path);
            if (db.open()) {
                QSqlQuery q(db);
                if (q.exec(QStringLiteral("PRAGMA integrity_check")) && q.next())
                    result = q.value(0).toString();
                db.close();
            }
        }
        QSqlDatabase::removeDatabase(QStringLiteral("integrity"));
        return result;
    }

private slots:
    void recordsAndReads()
    {
        const QString path = m_dir.filePath(QStringLiteral("a/deployments.db"));
        DeploymentHistory h;
        const auto opened = h.open(path);
        QVERIFY2(opened.ok(), qPrintable(opened ? QString() : opened.error()));
        QCOMPARE(*opened, 0);
        Deployment d;
        d.environment = QStringLiteral("staging");
        d.service = QStringLiteral("api");
        d.fromTag = QStringLiteral("sha-aaaaaaa");
        d.fromDigest = QStringLiteral("sha256:aa");
        d.toTag = QStringLiteral("sha-bbbbbbb");
        d.toDigest = QStringLiteral("sha256:bb");
        const auto first = h.begin(d);
        QVERIFY(first.ok());
        QVERIFY(h.finish(*first, Deployment::Outcome::Succeeded, {}).ok());
        d.fromTag = d.toTag;
        d.toTag = QStringLiteral("sha-ccccccc");
        const auto second = h.begin(d);
        QVERIFY(second.ok());
        QVERIFY(h.finish(*second, Deployment::Outcome::Reverted,
                         QStringLiteral("readiness failed for 30 s"),
                         { QStringLiteral("line 1"), QStringLiteral("{\"level\":\"error\"}") })
                    .ok());
        // A finished deployment cannot be finished again.
        QVERIFY(!h.finish(*second, Deployment::Outcome::Succeeded, {}).ok());

        const auto rows = h.list(QStringLiteral("staging"));
        QVERIFY(rows.ok());
        QCOMPARE(rows->size(), 2);
        QCOMPARE(rows->first().id, *second); // newest first
        QCOMPARE(int(rows->first().outcome), int(Deployment::Outcome::Reverted));
        QCOMPARE(rows->first().reason, QStringLiteral("readiness failed for 30 s"));
        QCOMPARE(rows->first().logLines.size(), 2);
        QVERIFY(rows->first().who.contains(QLatin1Char('@')));
        QVERIFY(rows->first().finishedAt >= rows->first().startedAt);
        QVERIFY(h.list(QStringLiteral("production"))->isEmpty());

        // Read back as a rollback plan reads them: with b running again after
        // the revert, the one to go back to is what b replaced, digest and all.
        const auto previous = previousSuccessful(
            *rows, { QStringLiteral("sha-bbbbbbb"), QStringLiteral("sha256:bb") });
        QVERIFY(previous.has_value());
        QCOMPARE(previous->tag, QStringLiteral("sha-aaaaaaa"));
        QCOMPARE(previous->digest, QStringLiteral("sha256:aa"));
    }

    // The schema each build expects is kept with the row, for a later rollback's check.
    void schemaVersions()
    {
        const QString path = m_dir.filePath(QStringLiteral("schema/deployments.db"));
        DeploymentHistory h;
        QVERIFY(h.open(path).ok());
        Deployment d;
        d.environment = QStringLiteral("staging");
        d.service = QStringLiteral("api");
        d.fromTag = QStringLiteral("sha-a");
        d.toTag = QStringLiteral("sha-b");
        d.fromSchema = 3;
        d.strategy = QStringLiteral("start-first");
        const auto id = h.begin(d);
        QVERIFY(id.ok());
        QVERIFY(h.finish(*id, Deployment::Outcome::Succeeded, {}, {}, 4).ok());
        const auto rows = h.list(QStringLiteral("staging"));
        QCOMPARE(rows->first().strategy, QStringLiteral("start-first"));
        QCOMPARE(rows->first().fromSchema, 3);
        QCOMPARE(rows->first().toSchema, 4);
        QCOMPARE(expectedSchema(*rows, QStringLiteral("sha-a")), 3);
        QCOMPARE(expectedSchema(*rows, QStringLiteral("sha-b")), 4);
        QCOMPARE(expectedSchema(*rows, QStringLiteral("sha-c")), -1);
    }

    // What a rollback reads from the rows: where to go back to, and its digest.
    void rollbackTargets()
    {
        const auto row = [](const char *from, const char *fromDigest, const char *to,
                            const char *toDigest, Deployment::Outcome outcome) {
            Deployment d;
            d.fromTag = QString::fromLatin1(from);
            d.fromDigest = QString::fromLatin1(fromDigest);
            d.toTag = QString::fromLatin1(to);
            d.toDigest = QString::fromLatin1(toDigest);
            d.outcome = outcome;
            return d;
        };
        using O = Deployment::Outcome;
        // Newest first: A -> B succeeded, then B -> C reverted.
        const QList<Deployment> rows { row("sha-b", "sha256:b", "sha-c", "sha256:c", O::Reverted),
                                       row("sha-a", "sha256:a", "sha-b", "sha256:b",
                                           O::Succeeded) };
        // On B: what B replaced (A), not the reverted C.
        auto previous =
            previousSuccessful(rows, { QStringLiteral("sha-b"), QStringLiteral("sha256:b") });
        QVERIFY(previous);
        QCOMPARE(previous->tag, QStringLiteral("sha-a"));
        QCOMPARE(previous->digest, QStringLiteral("sha256:a"));
        // On A (rolled back by hand): B, the newest success that does not run.
        previous =
            previousSuccessful(rows, { QStringLiteral("sha-a"), QStringLiteral("sha256:a") });
        QVERIFY(previous);
        QCOMPARE(previous->tag, QStringLiteral("sha-b"));
        // A moving tag: same name, another digest, is another build.
        const QList<Deployment> moving { row("staging", "sha256:1", "staging", "sha256:2",
                                             O::Succeeded) };
        previous =
            previousSuccessful(moving, { QStringLiteral("staging"), QStringLiteral("sha256:2") });
        QVERIFY(previous);
        QCOMPARE(previous->digest, QStringLiteral("sha256:1"));
        QVERIFY(!previousSuccessful({}, { QStringLiteral("sha-a"), {} }));
        QCOMPARE(recordedDigest(rows, QStringLiteral("sha-b")), QStringLiteral("sha256:b"));
        QCOMPARE(recordedDigest(rows, QStringLiteral("sha-c")), QString()); // never succeeded
        QCOMPARE(recordedDigest(rows, QStringLiteral("sha-z")), QString());
    }

    // A file written before the schema columns existed: a reader leaves it as
    // it is and still reads it; a writer adds them.
    void olderFileFormat()
    {
        const QString path = m_dir.filePath(QStringLiteral("old/deployments.db"));
        QVERIFY(QDir().mkpath(QFileInfo(path).absolutePath()));
        {
            QSqlDatabase db =
                QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("old"));
            db.setDatabaseName(path);
            QVERIFY(db.open());
            QSqlQuery q(db);
            QVERIFY(q.exec(QStringLiteral(
                "CREATE TABLE deployments (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " environment TEXT NOT NULL, service TEXT NOT NULL, from_tag TEXT, from_digest "
                "TEXT, to_tag TEXT NOT NULL, to_digest TEXT, who TEXT NOT NULL, started_at TEXT "
                "NOT NULL, finished_at TEXT, outcome TEXT NOT NULL, reason TEXT, log_lines TEXT, "
                "owner TEXT)")));
            QVERIFY(q.exec(QStringLiteral(
                "INSERT INTO deployments (environment, service, to_tag, who, started_at, outcome) "
                "VALUES ('staging', 'api', 'sha-old', 'me@here', '2026-01-01T00:00:00Z', "
                "'succeeded')")));
            db.close();
        }
        QSqlDatabase::removeDatabase(QStringLiteral("old"));
        {
            DeploymentHistory reader;
            QVERIFY(reader.open(path, DeploymentHistory::Mode::Reader).ok());
            const auto rows = reader.list();
            QVERIFY2(rows.ok(), qPrintable(rows ? QString() : rows.error()));
            QCOMPARE(rows->size(), 1);
            QCOMPARE(rows->first().toSchema, -1);
            QVERIFY(rows->first().strategy.isEmpty()); // not recorded then
        }
        QCOMPARE(count(path, QStringLiteral("1")), 1);
        DeploymentHistory writer;
        QVERIFY(writer.open(path).ok());
        Deployment d;
        d.environment = QStringLiteral("staging");
        d.service = QStringLiteral("api");
        d.toTag = QStringLiteral("sha-new");
        d.fromSchema = 2;
        d.strategy = QStringLiteral("recreate");
        const auto id = writer.begin(d);
        QVERIFY2(id.ok(), qPrintable(id ? QString() : id.error()));
        QCOMPARE(writer.list()->first().fromSchema, 2);
        QCOMPARE(writer.list()->first().strategy, QStringLiteral("recreate"));
    }

    // An open that fails leaves nothing half open, and every later call says
    // why (what the Deployments page shows), not only "not open".
    void aFailedOpenSaysWhyOnEveryCall()
    {
        const QString blocker = m_dir.filePath(QStringLiteral("a-file"));
        QFile f(blocker);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.close();
        const QString garbage = m_dir.filePath(QStringLiteral("garbage.db"));
        QFile g(garbage);
        QVERIFY(g.open(QIODevice::WriteOnly));
        g.write(QByteArray(4096, 'x'));
        g.close();
        const QList<std::pair<QString, QString>> cases {
            { blocker + QStringLiteral("/deployments.db"), QStringLiteral("cannot create") },
            { garbage, QStringLiteral("not a database") },
        };
        for (const auto &[path, why] : cases) {
            DeploymentHistory h;
            const auto opened = h.open(path);
            QVERIFY(!opened.ok());
            QVERIFY2(opened.error().contains(why), qPrintable(opened.error()));
            const auto rows = h.list();
            QVERIFY(!rows.ok());
            QCOMPARE(rows.error(), opened.error());
            Deployment d;
            d.environment = QStringLiteral("staging");
            d.service = QStringLiteral("api");
            d.toTag = QStringLiteral("sha-a");
            const auto id = h.begin(d);
            QVERIFY(!id.ok());
            QCOMPARE(id.error(), opened.error());
        }
        QCOMPARE(QFileInfo(garbage).size(), 4096); // a file that is not a history is left alone
    }

    // The same history on its own thread: calls in order, answers on the caller's thread.
    void storeOnItsOwnThread()
    {
        const QString path = m_dir.filePath(QStringLiteral("store/deployments.db"));
        qint64 id = 0;
        {
            HistoryStore store;
            QSignalSpy changed(&store, &HistoryStore::changed);
            std::optional<Expected<int>> opened;
            store.open(path, DeploymentHistory::Mode::Writer, this, [&](Expected<int> r) {
                QCOMPARE(QThread::currentThread(), thread());
                opened = r;
            });
            Deployment d;
            d.environment = QStringLiteral("staging");
            d.service = QStringLiteral("api");
            d.toTag = QStringLiteral("sha-1");
            store.begin(d, this, [&](Expected<qint64> r) { id = r ? *r : -1; });
            QTRY_VERIFY(id != 0);
            QVERIFY(opened && opened->ok());
            QVERIFY(store.isOpen());
            QVERIFY(id > 0);
            store.finish(id, Deployment::Outcome::Failed, QStringLiteral("why"), {}, -1, this, {});
            // Destroyed right away: the queued write still happens.
            {
                QObject gone;
                bool called = false;
                store.list({}, 10, &gone, [&called](auto) { called = true; });
            }
            QTRY_COMPARE(changed.size(), 2);
        }
        DeploymentHistory h;
        QVERIFY(h.open(path, DeploymentHistory::Mode::Reader).ok());
        QCOMPARE(toString(h.list()->first().outcome), QStringLiteral("failed"));
        QCOMPARE(h.list()->first().id, id);
    }

    void pilothousectlHistory()
    {
        // pilothousectl reads AppDataLocation: give it a data folder of its own.
        const QString data = m_dir.filePath(QStringLiteral("xdg"));
        {
            DeploymentHistory h;
            QVERIFY(h.open(data + QStringLiteral("/pilothouse/deployments.db")).ok());
            Deployment d;
            d.environment = QStringLiteral("local");
            d.service = QStringLiteral("deckhand");
            d.fromTag = QStringLiteral("sha-1");
            d.toTag = QStringLiteral("sha-2");
            const auto id = h.begin(d);
            QVERIFY(id.ok());
            QVERIFY(
                h.finish(*id, Deployment::Outcome::Reverted, QStringLiteral("health gate failed"))
                    .ok());
        }
        QProcess ctl;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("XDG_DATA_HOME"), data);
        ctl.setProcessEnvironment(env);
        ctl.start(QStringLiteral(PILOTHOUSECTL),
                  { QStringLiteral("history"), QStringLiteral("--json") });
        QVERIFY(ctl.waitForFinished(30000));
        QCOMPARE(ctl.exitCode(), 0);
        const QJsonArray rows = QJsonDocument::fromJson(ctl.readAllStandardOutput())
                                    .object()
                                    .value(QStringLiteral("deployments"))
                                    .toArray();
        QCOMPARE(rows.size(), 1);
        QCOMPARE(rows.first().toObject().value(QStringLiteral("outcome")).toString(),
                 QStringLiteral("reverted"));
        QCOMPARE(rows.first().toObject().value(QStringLiteral("reason")).toString(),
                 QStringLiteral("health gate failed"));
    }

    void sigkillLosesNothing()
    {
        const QString path = m_dir.filePath(QStringLiteral("killed.db"));
        // First killed mid-deployment (a row is running)...
        QProcess child;
        child.start(QCoreApplication::applicationFilePath(),
                    { QStringLiteral("--writer"), path, QStringLiteral("hold") });
        QVERIFY(child.waitForStarted());
        QByteArray out;
        QTRY_VERIFY_WITH_TIMEOUT((out += child.readAllStandardOutput()).contains("began"), 60000);
        {
            // While its writer lives, its running deployment is left alone.
            DeploymentHistory h;
            const auto marked = h.open(path);
            QVERIFY(marked.ok());
            QCOMPARE(*marked, 0);
        }
        child.kill();
        QVERIFY(child.waitForFinished(5000));
        QCOMPARE(integrity(path), QStringLiteral("ok"));
        QCOMPARE(count(path, QStringLiteral("outcome = 'succeeded'")), 299);
        {
            // ...and the next open marks what the dead writer left running.
            DeploymentHistory h;
            const auto marked = h.open(path);
            QVERIFY(marked.ok());
            QCOMPARE(*marked, 1);
            const auto rows = h.list({}, 1000);
            QVERIFY(rows.ok());
            QCOMPARE(rows->size(), 300);
            QCOMPARE(int(rows->first().outcome), int(Deployment::Outcome::Interrupted));
            QVERIFY(rows->first().reason.contains(QLatin1String("stopped during this deployment")));
            QVERIFY(rows->first().finishedAt.isValid());
        }

        // Then killed at whatever point of its writes it happens to be.
        QProcess racing;
        racing.start(QCoreApplication::applicationFilePath(),
                     { QStringLiteral("--writer"), path, QStringLiteral("run") });
        QVERIFY(racing.waitForStarted());
        QByteArray raced;
        QTRY_VERIFY_WITH_TIMEOUT((raced += racing.readAllStandardOutput()).count('\n') >= 100,
                                 60000);
        racing.kill();
        QVERIFY(racing.waitForFinished(5000));
        raced += racing.readAllStandardOutput();
        const int committedByRacer = int(raced.count("committed"));
        QCOMPARE(integrity(path), QStringLiteral("ok"));
        // Nothing it reported committed was lost.
        QVERIFY(count(path, QStringLiteral("outcome = 'succeeded'")) >= 299 + committedByRacer);
        DeploymentHistory h;
        const auto marked = h.open(path);
        QVERIFY(marked.ok());
        QVERIFY(*marked <= 1); // its last one, if it died between begin and finish
        QCOMPARE(count(path, QStringLiteral("outcome = 'running'")), 0);
    }
};

int main(int argc, char *argv[])
{
    if (argc == 4 && qstrcmp(argv[1], "--writer") == 0) {
        QCoreApplication app(argc, argv);
        return writer(QString::fromLocal8Bit(argv[2]), qstrcmp(argv[3], "hold") == 0);
    }
    QCoreApplication app(argc, argv);
    TestHistory t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_history.moc"
