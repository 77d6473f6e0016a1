// The health monitor against a real deckhand and a listener that never
// answers; the database probe against a real PostgreSQL 15 and SQLite.
#include "db/databaseprobe.h"
#include "monitor/healthmonitor.h"
#include "servers.h"

#include <QProcess>
#include <QSignalSpy>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QSslCertificate>
#include <QSslConfiguration>
#include <QSslKey>
#include <QSslServer>
#include <QTcpServer>
#include <QtTest>

using namespace pilothouse;
using namespace pilothouse::fixtures;

class TestMonitor final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    quint16 m_port = 0;
    std::unique_ptr<Deckhand> m_deckhand;
    std::unique_ptr<PostgresServer> m_pg;

    HealthEndpoint endpoint(const QString &path, int intervalMs = 100, int timeoutMs = 1000) const
    {
        HealthEndpoint e;
        e.url = QUrl(QStringLiteral("http://127.0.0.1:%1%2").arg(m_port).arg(path));
        e.intervalMs = intervalMs;
        e.timeoutMs = timeoutMs;
        return e;
    }

    bool startDeckhand()
    {
        QProcessEnvironment env = deckhandEnvironment(m_port);
        env.insert(QStringLiteral("DATABASE_URL"),
                   QStringLiteral("sqlite://%1/deckhand.db").arg(m_dir.path()));
        env.insert(QStringLiteral("CHECK_INTERVAL_SECONDS"), QStringLiteral("0.2"));
        m_deckhand = std::make_unique<Deckhand>(env);
        QString error;
        return m_deckhand->start(&error) && m_deckhand->waitFor(m_port, "/livez", 200, 10000);
    }

    DatabaseFacts probeOnce(const DatabaseTarget &target, int timeoutMs = 3000)
    {
        DatabaseProbe probe(target);
        probe.setTimeoutMs(timeoutMs);
        QSignalSpy done(&probe, &DatabaseProbe::finished);
        probe.probe();
        if (!done.wait(timeoutMs + 5000))
            return {};
        return done.first().first().value<DatabaseFacts>();
    }

    DatabaseTarget pgTarget(const QString &db = QStringLiteral("postgres"), quint16 port = 0) const
    {
        DatabaseTarget t;
        t.dsn = QUrl(QStringLiteral("postgresql://postgres@127.0.0.1:%1/%2")
                         .arg(port ? port : m_pg->port())
                         .arg(db));
        t.passwordEnv = QStringLiteral("PILOTHOUSE_TEST_PGPASSWORD");
        return t;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_port = freePort();
        QVERIFY(startDeckhand());
    }

    void understandsHealthJsonAndPlainAnswers()
    {
        HealthMonitor monitor;
        const int readyz =
            monitor.addEndpoint(QStringLiteral("api"), endpoint(QStringLiteral("/readyz")));
        const int health =
            monitor.addEndpoint(QStringLiteral("api"), endpoint(QStringLiteral("/health")));
        const int missing =
            monitor.addEndpoint(QStringLiteral("other"), endpoint(QStringLiteral("/nope")));
        monitor.start();
        QTRY_VERIFY_WITH_TIMEOUT(monitor.endpoint(missing)->lastChecked.isValid() &&
                                     monitor.endpoint(readyz)->lastChecked.isValid() &&
                                     monitor.endpoint(health)->lastChecked.isValid(),
                                 10000);
        // No REDIS_URL: deckhand says warn, with the reason in the redis check.
        QTRY_COMPARE_WITH_TIMEOUT(int(monitor.endpoint(readyz)->status), int(EndpointStatus::Warn),
                                  5000);
        const EndpointState *r = monitor.endpoint(readyz);
        QCOMPARE(r->httpStatus, 200);
        QVERIFY(r->detail.contains(QLatin1String("REDIS_URL is not set")));
        QVERIFY(r->lastLatencyMs >= 0);
        bool sawSqlite = false;
        for (const health::Check &c : r->checks)
            sawSqlite = sawSqlite ||
                (c.name == QLatin1String("sqlite:responseTime") &&
                 c.status == health::Status::Pass);
        QVERIFY(sawSqlite);
        QVERIFY(!r->lastFailedChecks.isEmpty());
        QCOMPARE(int(monitor.endpoint(health)->status), int(EndpointStatus::Pass));
        QCOMPARE(int(monitor.endpoint(missing)->status), int(EndpointStatus::Fail));
        QVERIFY(monitor.endpoint(missing)->detail.startsWith(QLatin1String("HTTP 404")));
        QCOMPARE(int(monitor.serviceStatus(QStringLiteral("api"))), int(EndpointStatus::Warn));
        QCOMPARE(int(monitor.serviceStatus(QStringLiteral("other"))), int(EndpointStatus::Fail));
        // The history is bounded however long it runs.
        QTRY_VERIFY_WITH_TIMEOUT(monitor.endpoint(health)->history.size() >= 5, 5000);
        QVERIFY(monitor.endpoint(health)->history.size() <=
                monitor.endpoint(health)->history.capacity());
    }

    void transitionsWhenTheServiceGoesAndComes()
    {
        HealthMonitor monitor;
        const int id =
            monitor.addEndpoint(QStringLiteral("api"), endpoint(QStringLiteral("/livez"), 100));
        QSignalSpy changes(&monitor, &HealthMonitor::statusChanged);
        monitor.start();
        QTRY_COMPARE_WITH_TIMEOUT(int(monitor.endpoint(id)->status), int(EndpointStatus::Pass),
                                  5000);
        const QDateTime passSince = monitor.endpoint(id)->lastTransition;
        QVERIFY(passSince.isValid());

        m_deckhand->kill();
        QTRY_COMPARE_WITH_TIMEOUT(int(monitor.endpoint(id)->status), int(EndpointStatus::Fail),
                                  5000);
        QVERIFY2(monitor.endpoint(id)->detail.contains(QLatin1String("connection refused")),
                 qPrintable(monitor.endpoint(id)->detail));
        QVERIFY(monitor.endpoint(id)->lastTransition > passSince);
        const auto transitions = monitor.endpoint(id)->transitions.toList();
        QCOMPARE(int(transitions.last().from), int(EndpointStatus::Pass));
        QCOMPARE(int(transitions.last().to), int(EndpointStatus::Fail));

        // While it is down, checks back off instead of hammering it: the gaps
        // between failed checks grow (interval 100 ms: then 200, then 400).
        const auto failedAt = [&monitor, id] {
            QList<qint64> at;
            for (const LatencySample &sample : monitor.endpoint(id)->history.toList()) {
                if (sample.status == EndpointStatus::Fail)
                    at << sample.atMsecsSinceEpoch;
            }
            return at;
        };
        QTRY_VERIFY_WITH_TIMEOUT(failedAt().size() >= 4, 10000);
        const QList<qint64> at = failedAt();
        const qint64 firstGap = at.at(1) - at.at(0);
        const qint64 thirdGap = at.at(3) - at.at(2);
        QVERIFY2(thirdGap >= 350 && thirdGap >= 2 * firstGap,
                 qPrintable(QStringLiteral("gaps %1 ms then %2 ms").arg(firstGap).arg(thirdGap)));

        QVERIFY(startDeckhand());
        monitor.checkNow(); // what the session does after a start
        QTRY_COMPARE_WITH_TIMEOUT(int(monitor.endpoint(id)->status), int(EndpointStatus::Pass),
                                  5000);
        QVERIFY(changes.size() >= 3); // unknown->pass, pass->fail, fail->pass
    }

    void backoffDelays()
    {
        QCOMPARE(HealthMonitor::backoffDelayMs(1000, 0), 1000);
        QCOMPARE(HealthMonitor::backoffDelayMs(1000, 1), 1000);
        QCOMPARE(HealthMonitor::backoffDelayMs(1000, 2), 2000);
        QCOMPARE(HealthMonitor::backoffDelayMs(1000, 4), 8000);
        QCOMPARE(HealthMonitor::backoffDelayMs(1000, 40), 8000);
        QCOMPARE(HealthMonitor::backoffDelayMs(10000, 9), 30000);
        QCOMPARE(HealthMonitor::backoffDelayMs(60000, 9), 60000);
    }

    void silentServerTimesOut()
    {
        QTcpServer silent; // accepts, never answers
        QVERIFY(silent.listen(QHostAddress::LocalHost));
        HealthMonitor monitor;
        HealthEndpoint e;
        e.url = QUrl(QStringLiteral("http://127.0.0.1:%1/readyz").arg(silent.serverPort()));
        e.intervalMs = 1000;
        e.timeoutMs = 300;
        const int id = monitor.addEndpoint(QStringLiteral("api"), e);
        monitor.start();
        QTRY_COMPARE_WITH_TIMEOUT(int(monitor.endpoint(id)->status), int(EndpointStatus::Fail),
                                  5000);
        QVERIFY2(monitor.endpoint(id)->detail.contains(QLatin1String("no answer within 300 ms")),
                 qPrintable(monitor.endpoint(id)->detail));
    }

    // https endpoints go through the QNetworkAccessManager, with TLS verified:
    // a real TLS server with a self-signed certificate is refused, and says why.
    void httpsIsVerified()
    {
        const QString key = m_dir.filePath(QStringLiteral("tls.key"));
        const QString cert = m_dir.filePath(QStringLiteral("tls.crt"));
        QProcess openssl;
        openssl.start(QStringLiteral("openssl"),
                      { QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                        QStringLiteral("rsa:2048"), QStringLiteral("-nodes"),
                        QStringLiteral("-days"), QStringLiteral("1"), QStringLiteral("-subj"),
                        QStringLiteral("/CN=127.0.0.1"), QStringLiteral("-keyout"), key,
                        QStringLiteral("-out"), cert });
        PILOTHOUSE_REQUIRE(
            openssl.waitForStarted(5000)
                ? QString()
                : QStringLiteral("openssl is not installed (scripts/setup.sh installs it)"));
        QVERIFY(openssl.waitForFinished(30000) && openssl.exitCode() == 0);
        QFile k(key), c(cert);
        QVERIFY(k.open(QIODevice::ReadOnly) && c.open(QIODevice::ReadOnly));
        QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
        tls.setPrivateKey(QSslKey(k.readAll(), QSsl::Rsa));
        tls.setLocalCertificate(QSslCertificate(c.readAll()));
        QSslServer server;
        server.setSslConfiguration(tls);
        QVERIFY(server.listen(QHostAddress::LocalHost));
        HealthMonitor monitor;
        HealthEndpoint e;
        e.url = QUrl(QStringLiteral("https://127.0.0.1:%1/readyz").arg(server.serverPort()));
        e.intervalMs = 1000;
        e.timeoutMs = 3000;
        const int id = monitor.addEndpoint(QStringLiteral("api"), e);
        monitor.start();
        QTRY_COMPARE_WITH_TIMEOUT(int(monitor.endpoint(id)->status), int(EndpointStatus::Fail),
                                  10000);
        const QString detail = monitor.endpoint(id)->detail;
        QVERIFY2(detail.contains(QLatin1String("SSL"), Qt::CaseInsensitive) ||
                     detail.contains(QLatin1String("certificate"), Qt::CaseInsensitive),
                 qPrintable(detail));
    }

    void ringBuffer()
    {
        RingBuffer<int> r(3);
        for (int i = 1; i <= 5; ++i)
            r.push(i);
        QCOMPARE(r.size(), 3);
        QCOMPARE(r.toList(), (QList<int> { 3, 4, 5 }));
        QCOMPARE(r.last(), 5);
    }

    void postgres()
    {
        PILOTHOUSE_REQUIRE(postgresUnavailableReason());
        m_pg = std::make_unique<PostgresServer>();
        QString error;
        QVERIFY2(m_pg->start(&error), qPrintable(error));
        m_pg->psql(QStringLiteral("CREATE TABLE schema_migrations (version bigint PRIMARY KEY);"
                                  "INSERT INTO schema_migrations VALUES (1), (2), (7);"
                                  "CREATE TABLE events AS SELECT g AS id, repeat('x', 200) AS body "
                                  "FROM generate_series(1, 20000) g; ANALYZE events;"));
        qputenv("PILOTHOUSE_TEST_PGPASSWORD", m_pg->password().toUtf8());

        const DatabaseFacts f = probeOnce(pgTarget());
        QVERIFY2(f.reachable(), qPrintable(f.error));
        QCOMPARE(f.engine, QStringLiteral("PostgreSQL"));
        QVERIFY2(f.serverVersion.startsWith(QLatin1String("15")), qPrintable(f.serverVersion));
        QVERIFY(f.latencyMs >= 0);
        QVERIFY(f.sizeBytes > 4'000'000);
        QVERIFY(f.connectionsUsed >= 1);
        QVERIFY(f.connectionsMax >= f.connectionsUsed);
        QCOMPARE(f.migrationVersion, 7);
        QVERIFY(!f.largestTables.isEmpty());
        QCOMPARE(f.largestTables.first().name, QStringLiteral("public.events"));
        QCOMPARE(f.largestTables.first().rows, 20000);
        QVERIFY(!f.dsn.contains(m_pg->password()));
    }

    void postgresFailures()
    {
        if (!m_pg)
            QSKIP("needs the PostgreSQL of the previous case");
        qputenv("PILOTHOUSE_TEST_PGPASSWORD", "wrong-password");
        DatabaseFacts f = probeOnce(pgTarget());
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::AuthFailed));
        QVERIFY(f.error.contains(QLatin1String("~/.pgpass")));
        QVERIFY(!f.error.contains(QLatin1String("wrong-password")));

        qputenv("PILOTHOUSE_TEST_PGPASSWORD", m_pg->password().toUtf8());
        f = probeOnce(pgTarget(QStringLiteral("no_such_db")));
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::UnknownDatabase));
        QVERIFY(f.error.contains(QLatin1String("\"no_such_db\" does not exist")));

        f = probeOnce(pgTarget(QStringLiteral("postgres"), freePort()));
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::Refused));
        QVERIFY(f.error.contains(QLatin1String("connection refused")));

        QTcpServer silent;
        QVERIFY(silent.listen(QHostAddress::LocalHost));
        QElapsedTimer clock;
        clock.start();
        f = probeOnce(pgTarget(QStringLiteral("postgres"), silent.serverPort()), 1000);
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::Timeout));
        QVERIFY(clock.elapsed() < 5000);
    }

    void sqlite()
    {
        DatabaseTarget t;
        const QString path = m_dir.filePath(QStringLiteral("probe.db"));
        t.dsn = QUrl::fromLocalFile(path);
        t.dsn.setScheme(QStringLiteral("sqlite"));
        DatabaseFacts f = probeOnce(t);
        QCOMPARE(int(f.reachability), int(DatabaseFacts::Reachability::Missing));
        QVERIFY(!QFileInfo::exists(path)); // probing never creates it
        {
            QSqlDatabase db =
                QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("setup"));
            db.setDatabaseName(path);
            QVERIFY(db.open());
            QSqlQuery q(db);
            QVERIFY(q.exec(
                QStringLiteral("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")));
            QVERIFY(q.exec(QStringLiteral("INSERT INTO schema_migrations VALUES (1), (4)")));
            QVERIFY(q.exec(QStringLiteral("CREATE TABLE jobs (id INTEGER, body TEXT)")));
            for (int i = 0; i < 50; ++i)
                QVERIFY(q.exec(QStringLiteral("INSERT INTO jobs VALUES (%1, '%2')")
                                   .arg(i)
                                   .arg(QString(500, QLatin1Char('y')))));
            db.close();
        }
        QSqlDatabase::removeDatabase(QStringLiteral("setup"));
        f = probeOnce(t);
        QVERIFY2(f.reachable(), qPrintable(f.error));
        QCOMPARE(f.engine, QStringLiteral("SQLite"));
        QVERIFY(f.serverVersion.startsWith(QLatin1String("3.")));
        QCOMPARE(f.migrationVersion, 4);
        QCOMPARE(f.largestTables.first().name, QStringLiteral("jobs"));
        QCOMPARE(f.largestTables.first().rows, 50);
        QVERIFY(f.sizeBytes > 25000);
    }
};

QTEST_GUILESS_MAIN(TestMonitor)
#include "tst_monitor.moc"
