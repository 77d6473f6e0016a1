// Database passwords from the system keychain: a real Secret Service
// (gnome-keyring on a private D-Bus session bus, unlocked with a throwaway
// password) and a real PostgreSQL 15.
#include "core/secrets.h"
#include "db/databaseprobe.h"
#include "env/environment.h"
#include "servers.h"

#include <QSignalSpy>
#include <QStandardPaths>
#include <QtTest>

using namespace pilothouse;
using namespace pilothouse::fixtures;

class TestKeychain final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_home;
    QProcess m_bus;
    std::unique_ptr<PostgresServer> m_pg;

    QString startSecretService()
    {
        const QString dbus = QStandardPaths::findExecutable(QStringLiteral("dbus-daemon"));
        const QString keyring =
            QStandardPaths::findExecutable(QStringLiteral("gnome-keyring-daemon"));
        if (dbus.isEmpty() || keyring.isEmpty())
            return QStringLiteral("dbus-daemon or gnome-keyring-daemon is not installed (apt-get "
                                  "install dbus gnome-keyring)");
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("HOME"), m_home.path());
        env.insert(QStringLiteral("XDG_DATA_HOME"), m_home.filePath(QStringLiteral("data")));
        env.insert(QStringLiteral("XDG_RUNTIME_DIR"), m_home.filePath(QStringLiteral("run")));
        QDir().mkpath(m_home.filePath(QStringLiteral("run")));
        QFile::setPermissions(m_home.filePath(QStringLiteral("run")),
                              QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        m_bus.setProcessEnvironment(env);
        m_bus.start(dbus,
                    { QStringLiteral("--session"), QStringLiteral("--nofork"),
                      QStringLiteral("--nopidfile"), QStringLiteral("--print-address=1") });
        if (!m_bus.waitForStarted() || !m_bus.waitForReadyRead(10000))
            return QStringLiteral("dbus-daemon did not start: ") + m_bus.errorString();
        const QByteArray address = m_bus.readLine().trimmed();
        env.insert(QStringLiteral("DBUS_SESSION_BUS_ADDRESS"), QString::fromUtf8(address));
        QProcess keyringProcess;
        keyringProcess.setProcessEnvironment(env);
        keyringProcess.start(keyring,
                             { QStringLiteral("--daemonize"), QStringLiteral("--unlock"),
                               QStringLiteral("--components=secrets") });
        keyringProcess.write("throwaway-login-password");
        keyringProcess.closeWriteChannel();
        if (!keyringProcess.waitForFinished(20000) || keyringProcess.exitCode() != 0)
            return QStringLiteral("gnome-keyring-daemon did not start: ") +
                QString::fromUtf8(keyringProcess.readAllStandardError());
        // This process and the pilothousectl it starts talk to that bus only.
        qputenv("DBUS_SESSION_BUS_ADDRESS", address);
        return {};
    }

    Outcome write(const QString &key, const QString &value)
    {
        std::optional<Outcome> result;
        writeSecret(key, value, this, [&result](Outcome r) { result = r; });
        if (!QTest::qWaitFor([&] { return result.has_value(); }, 20000))
            return Error { QStringLiteral("test: no answer from the keychain") };
        return *result;
    }

    DatabaseFacts probe(const DatabaseTarget &target)
    {
        DatabaseProbe p(target);
        QSignalSpy done(&p, &DatabaseProbe::finished);
        p.probe();
        done.wait(20000);
        return done.isEmpty() ? DatabaseFacts {} : done.first().first().value<DatabaseFacts>();
    }

private slots:
    void initTestCase()
    {
        PILOTHOUSE_REQUIRE(keychainAvailable()
                               ? QString()
                               : QStringLiteral("this build has no QtKeychain (scripts/setup.sh "
                                                "installs qtkeychain-qt6-dev)"));
        PILOTHOUSE_REQUIRE(postgresUnavailableReason());
        PILOTHOUSE_REQUIRE(startSecretService());
        m_pg = std::make_unique<PostgresServer>();
        QString error;
        QVERIFY2(m_pg->start(&error), qPrintable(error));
    }

    void cleanupTestCase()
    {
        m_bus.kill(); // gnome-keyring-daemon leaves with its bus
        m_bus.waitForFinished(5000);
    }

    void probeTakesThePasswordFromTheKeychain()
    {
        const auto set = parseEnvironments(
            QStringLiteral("{\"version\":1,\"environments\":[{\"name\":\"kc\",\"kind\":\"native\","
                           "\"processes\":[{\"name\":\"p\",\"program\":\"/bin/true\"}],"
                           "\"database\":{\"dsn\":\"postgresql://postgres@127.0.0.1:%1/"
                           "postgres\",\"keychain\":true}}]}")
                .arg(m_pg->port())
                .toUtf8(),
            QStringLiteral("kc.json"), QDir::current());
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        const DatabaseTarget target = *set->environments.first().database;
        QCOMPARE(target.keychainKey, QStringLiteral("kc/database"));

        // Nothing stored yet: a clear error, no connection attempt without a password.
        DatabaseFacts f = probe(target);
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::AuthFailed));
        QVERIFY2(f.error.contains(QLatin1String("no secret \"kc/database\" in the keychain")),
                 qPrintable(f.error));

        const Outcome stored = write(target.keychainKey, m_pg->password());
        QVERIFY2(stored.ok(), qPrintable(stored ? QString() : stored.error()));
        f = probe(target);
        QVERIFY2(f.reachable(), qPrintable(f.error));
        QVERIFY(f.serverVersion.startsWith(QLatin1String("15")));

        QVERIFY(write(target.keychainKey, QStringLiteral("not-the-password")).ok());
        f = probe(target);
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::AuthFailed));
        QVERIFY(!f.error.contains(QLatin1String("not-the-password")));
    }

    void pilothousectlStoresIt()
    {
        QTemporaryFile cfg;
        QVERIFY(cfg.open());
        cfg.write(
            QStringLiteral("{\"version\":1,\"environments\":[{\"name\":\"kc2\",\"kind\":\"native\","
                           "\"processes\":[{\"name\":\"p\",\"program\":\"/bin/true\"}],"
                           "\"database\":{\"dsn\":\"postgresql://postgres@127.0.0.1:%1/"
                           "postgres\",\"keychain\":true}}]}")
                .arg(m_pg->port())
                .toUtf8());
        cfg.close();
        const QStringList env { QStringLiteral("--config"), cfg.fileName(), QStringLiteral("--env"),
                                QStringLiteral("kc2") };
        QProcess set;
        set.start(QStringLiteral(PILOTHOUSECTL),
                  QStringList { QStringLiteral("set-db-password") } + env);
        QVERIFY(set.waitForStarted());
        set.write(m_pg->password().toUtf8() + '\n');
        set.closeWriteChannel();
        QVERIFY(set.waitForFinished(30000));
        QVERIFY2(set.exitCode() == 0, set.readAllStandardError().constData());
        QVERIFY(!set.readAllStandardError().contains(m_pg->password().toUtf8())); // never echoed

        QProcess db;
        db.start(QStringLiteral(PILOTHOUSECTL), QStringList { QStringLiteral("db") } + env);
        QVERIFY(db.waitForFinished(30000));
        QVERIFY2(db.exitCode() == 0, db.readAllStandardOutput().constData());

        QProcess del;
        del.start(QStringLiteral(PILOTHOUSECTL),
                  QStringList { QStringLiteral("set-db-password"), QStringLiteral("--delete") } +
                      env);
        QVERIFY(del.waitForFinished(30000));
        QCOMPARE(del.exitCode(), 0);
        db.start(QStringLiteral(PILOTHOUSECTL), QStringList { QStringLiteral("db") } + env);
        QVERIFY(db.waitForFinished(30000));
        QCOMPARE(db.exitCode(), 1);
        QVERIFY(db.readAllStandardOutput().contains("no secret \"kc2/database\" in the keychain"));
    }
};

QTEST_GUILESS_MAIN(TestKeychain)
#include "tst_keychain.moc"
