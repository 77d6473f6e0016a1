// deckhand with real PostgreSQL 15 and Redis 7: readiness, the job round trip
// through API, Redis and worker, outages and recovery without a restart,
// credentials, concurrent migrations, and the healthcheck command.
#include "servers.h"

#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>
#include <memory>

using namespace pilothouse::fixtures;

namespace {

constexpr int kIntervalMs = 1000;

QJsonObject jsonOf(const HttpReply &r)
{
    return QJsonDocument::fromJson(r.body).object();
}

QString checkStatus(const HttpReply &readyz, const QString &check)
{
    return jsonOf(readyz)
        .value(QStringLiteral("checks"))
        .toObject()
        .value(check)
        .toArray()
        .first()
        .toObject()
        .value(QStringLiteral("status"))
        .toString();
}

int runDeckhand(const QProcessEnvironment &env, const QStringList &args,
                QByteArray *output = nullptr)
{
    QProcess p;
    p.setProcessEnvironment(env);
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(Deckhand::binary(), args);
    if (!p.waitForFinished(30000))
        return -1;
    if (output)
        *output = p.readAll();
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

struct Outage
{
    bool failed = false; // /readyz said 503 with the check failing
    bool livezAlways200 = true;
    qint64 slowestLivezMs = 0;
};
// Polls /livez and /readyz every 50 ms for two check intervals (and a
// little slack) after a dependency went away, until readiness fails.
Outage watchOutage(quint16 port, const QString &check)
{
    Outage seen;
    QElapsedTimer since;
    since.start();
    while (since.elapsed() < 2 * kIntervalMs + 500) {
        const HttpReply live = httpRequest(port, "GET", "/livez");
        seen.livezAlways200 = seen.livezAlways200 && live.status == 200;
        seen.slowestLivezMs = qMax(seen.slowestLivezMs, live.elapsedMs);
        const HttpReply ready = httpRequest(port, "GET", "/readyz");
        if (ready.status == 503 && checkStatus(ready, check) == QLatin1String("fail")) {
            seen.failed = true;
            break;
        }
        QThread::msleep(50);
    }
    return seen;
}

} // namespace

class TestStack : public QObject
{
    Q_OBJECT

    std::unique_ptr<PostgresServer> m_pg;
    std::unique_ptr<RedisServer> m_redis;
    std::unique_ptr<Deckhand> m_api;
    std::unique_ptr<Deckhand> m_worker;
    QTemporaryDir m_tmp;
    quint16 m_port = 0;

    QProcessEnvironment env(const QString &databaseUrl, const QString &redisUrl) const
    {
        QProcessEnvironment e = deckhandEnvironment(m_port);
        e.insert(QStringLiteral("DATABASE_URL"), databaseUrl);
        if (!redisUrl.isEmpty())
            e.insert(QStringLiteral("REDIS_URL"), redisUrl);
        e.insert(QStringLiteral("CHECK_INTERVAL_SECONDS"), QString::number(kIntervalMs / 1000.0));
        e.insert(QStringLiteral("CHECK_TIMEOUT_SECONDS"), QStringLiteral("0.5"));
        e.insert(QStringLiteral("WORKER_HEARTBEAT_FILE"),
                 m_tmp.filePath(QStringLiteral("worker.heartbeat")));
        return e;
    }

    QJsonObject submitAndWait(quint16 port, const QByteArray &body, int timeoutMs = 15000)
    {
        const HttpReply created =
            httpRequest(port, "POST", "/v1/jobs", body, { { "Content-Type", "application/json" } });
        if (created.status != 202) {
            qWarning("POST /v1/jobs answered %d: %s", created.status, created.body.constData());
            return {};
        }
        const QByteArray location = created.header("Location");
        QDeadlineTimer deadline(timeoutMs);
        while (!deadline.hasExpired()) {
            const HttpReply r = httpRequest(port, "GET", location);
            const QJsonObject job = jsonOf(r);
            const QString status = job.value(QStringLiteral("status")).toString();
            if (status == QLatin1String("succeeded") || status == QLatin1String("failed"))
                return job;
            QThread::msleep(25);
        }
        qWarning("job %s did not finish", location.constData());
        return {};
    }

    // Submits a sleep job and waits until a worker runs it; its URL, or empty.
    QByteArray startSleepJob(int ms)
    {
        const HttpReply created = httpRequest(m_port, "POST", "/v1/jobs",
                                              QByteArray(R"({"type":"sleep","payload":{"ms":)") +
                                                  QByteArray::number(ms) + "}}",
                                              { { "Content-Type", "application/json" } });
        if (created.status != 202)
            return {};
        const QByteArray location = created.header("Location");
        QDeadlineTimer deadline(5000);
        while (!deadline.hasExpired()) {
            if (jsonOf(httpRequest(m_port, "GET", location))
                    .value(QStringLiteral("status"))
                    .toString() == QLatin1String("running"))
                return location;
            QThread::msleep(20);
        }
        return {};
    }

private Q_SLOTS:
    void initTestCase()
    {
        PILOTHOUSE_REQUIRE(postgresUnavailableReason() + redisUnavailableReason());
        QString error;
        m_pg = std::make_unique<PostgresServer>();
        QVERIFY2(m_pg->start(&error), qPrintable(error));
        m_redis = std::make_unique<RedisServer>();
        QVERIFY2(m_redis->start(&error), qPrintable(error));

        m_port = freePort();
        m_api = std::make_unique<Deckhand>(env(m_pg->url(), m_redis->url()));
        QVERIFY2(m_api->start(&error), qPrintable(error));
        QVERIFY2(m_api->waitFor(m_port, "/readyz", 200, 20000),
                 m_api->outputLines().join('\n').constData());
        m_worker = std::make_unique<Deckhand>(env(m_pg->url(), m_redis->url()),
                                              QStringList { QStringLiteral("worker") });
        QVERIFY2(m_worker->start(&error), qPrintable(error));
    }

    void readyzPassesWithPostgresAndRedis()
    {
        const HttpReply r = httpRequest(m_port, "GET", "/readyz");
        QCOMPARE(r.status, 200);
        const QJsonObject o = jsonOf(r);
        QCOMPARE(o.value(QStringLiteral("status")).toString(), QStringLiteral("pass"));
        QCOMPARE(checkStatus(r, QStringLiteral("postgres:responseTime")), QStringLiteral("pass"));
        QCOMPARE(checkStatus(r, QStringLiteral("redis:responseTime")), QStringLiteral("pass"));
        QCOMPARE(checkStatus(r, QStringLiteral("schema:version")), QStringLiteral("pass"));
        const QJsonObject pg = o.value(QStringLiteral("checks"))
                                   .toObject()
                                   .value(QStringLiteral("postgres:responseTime"))
                                   .toArray()
                                   .first()
                                   .toObject();
        QVERIFY(pg.value(QStringLiteral("observedValue")).toDouble() > 0);
    }

    void otherEndpoints()
    {
        QCOMPARE(httpRequest(m_port, "GET", "/livez").status, 200);
        QCOMPARE(httpRequest(m_port, "GET", "/health").body, QByteArray(R"({"status":"ok"})"));
        const QJsonObject healthz = jsonOf(httpRequest(m_port, "GET", "/healthz"));
        QCOMPARE(healthz,
                 (QJsonObject { { QStringLiteral("status"), QStringLiteral("ok") },
                                { QStringLiteral("db"), QStringLiteral("ok") },
                                { QStringLiteral("redis"), QStringLiteral("ok") } }));
        QCOMPARE(jsonOf(httpRequest(m_port, "GET", "/version"))
                     .value(QStringLiteral("schema_version"))
                     .toInt(),
                 1);
        const QByteArray metrics = httpRequest(m_port, "GET", "/metrics").body;
        QVERIFY(metrics.contains(R"(deckhand_dependency_up{dependency="postgres"} 1)"));
        QVERIFY(metrics.contains(R"(deckhand_dependency_up{dependency="redis"} 1)"));
        QVERIFY(metrics.contains("deckhand_dependency_latency_seconds{dependency=\"postgres\"}"));
        QVERIFY(metrics.contains("deckhand_queue_depth "));
    }

    void migrationsRecorded()
    {
        QString error;
        QCOMPARE(
            m_pg->psql(QStringLiteral("SELECT version FROM schema_migrations ORDER BY version;"),
                       QStringLiteral("postgres"), &error),
            QStringLiteral("1"));
        QVERIFY2(error.isEmpty(), qPrintable(error));
    }

    void jobRoundTrip_data()
    {
        QTest::addColumn<QByteArray>("body");
        QTest::addColumn<QJsonObject>("expectedResult");
        QTest::newRow("echo") << QByteArray(R"({"type":"echo","payload":{"hello":"world","n":3}})")
                              << QJsonObject { { QStringLiteral("hello"), QStringLiteral("world") },
                                               { QStringLiteral("n"), 3 } };
        QTest::newRow("sleep") << QByteArray(R"({"type":"sleep","payload":{"ms":150}})")
                               << QJsonObject { { QStringLiteral("slept_ms"), 150 } };
    }
    void jobRoundTrip()
    {
        QFETCH(QByteArray, body);
        QFETCH(QJsonObject, expectedResult);
        const QJsonObject job = submitAndWait(m_port, body);
        QCOMPARE(job.value(QStringLiteral("status")).toString(), QStringLiteral("succeeded"));
        QCOMPARE(job.value(QStringLiteral("result")).toObject(), expectedResult);
        QVERIFY(job.value(QStringLiteral("duration_ms")).toDouble() >= 0);
        QVERIFY(!job.value(QStringLiteral("worker_id")).toString().isEmpty());
        QVERIFY(!job.value(QStringLiteral("started_at")).toString().isEmpty());
        QCOMPARE(job.value(QStringLiteral("attempts")).toInt(), 1);
        // The row is really in PostgreSQL.
        const QString id = job.value(QStringLiteral("id")).toString();
        QCOMPARE(m_pg->psql(QStringLiteral("SELECT status FROM jobs WHERE id = '%1';").arg(id)),
                 QStringLiteral("succeeded"));
    }

    void processedJobsShowInMetrics()
    {
        QTRY_VERIFY_WITH_TIMEOUT(httpRequest(m_port, "GET", "/metrics")
                                     .body.contains(R"(deckhand_jobs{status="succeeded"} 2)"),
                                 3 * kIntervalMs);
        QVERIFY(httpRequest(m_port, "GET", "/metrics")
                    .body.contains("deckhand_jobs_processed_total 2"));
    }

    void healthcheckCommand()
    {
        QProcessEnvironment e = env(m_pg->url(), m_redis->url());
        QCOMPARE(runDeckhand(e, { QStringLiteral("healthcheck") }), 0);
        QCOMPARE(runDeckhand(e, { QStringLiteral("healthcheck"), QStringLiteral("--live") }), 0);
        QCOMPARE(runDeckhand(e, { QStringLiteral("healthcheck"), QStringLiteral("--worker") }), 0);
        e.insert(QStringLiteral("PORT"), QString::number(freePort()));
        QCOMPARE(runDeckhand(e, { QStringLiteral("healthcheck"), QStringLiteral("--live") }), 1);
    }

    void postgresOutageAndRecovery()
    {
        const qint64 pid = m_api->pid();
        QString error;
        QVERIFY2(m_pg->stop(&error), qPrintable(error));
        const Outage seen = watchOutage(m_port, QStringLiteral("postgres:responseTime"));
        QVERIFY2(seen.failed, "readiness did not turn 503 within two check intervals");
        QVERIFY2(seen.livezAlways200, "livez did not answer 200 throughout");
        QVERIFY2(seen.slowestLivezMs < 250,
                 qPrintable(QStringLiteral("livez took %1 ms").arg(seen.slowestLivezMs)));
        QCOMPARE(runDeckhand(env(m_pg->url(), m_redis->url()), { QStringLiteral("healthcheck") }),
                 1);

        // Jobs are refused at once with the reason, not after a timeout.
        const HttpReply refused = httpRequest(m_port, "POST", "/v1/jobs", R"({"type":"echo"})");
        QCOMPARE(refused.status, 503);
        QVERIFY(jsonOf(refused)
                    .value(QStringLiteral("message"))
                    .toString()
                    .contains(QLatin1String("database unavailable")));
        QVERIFY(refused.elapsedMs < 250);
        QCOMPARE(
            jsonOf(httpRequest(m_port, "GET", "/healthz")).value(QStringLiteral("db")).toString(),
            QStringLiteral("error"));

        QVERIFY2(m_pg->start(&error), qPrintable(error));
        QElapsedTimer sinceStart;
        sinceStart.start();
        QTRY_COMPARE_WITH_TIMEOUT(httpRequest(m_port, "GET", "/readyz").status, 200,
                                  2 * kIntervalMs + 500);
        QCOMPARE(m_api->pid(), pid); // recovered without a restart
        // The worker reconnected too.
        const QJsonObject job =
            submitAndWait(m_port, R"({"type":"echo","payload":{"after":"pg outage"}})", 20000);
        QCOMPARE(job.value(QStringLiteral("status")).toString(), QStringLiteral("succeeded"));
    }

    void redisOutageAndRecovery()
    {
        QString error;
        QVERIFY(m_redis->stop(&error));
        const Outage seen = watchOutage(m_port, QStringLiteral("redis:responseTime"));
        QVERIFY2(seen.failed, "readiness did not turn 503 within two check intervals");
        QVERIFY2(seen.livezAlways200, "livez did not answer 200 throughout");
        QVERIFY2(seen.slowestLivezMs < 250,
                 qPrintable(QStringLiteral("livez took %1 ms").arg(seen.slowestLivezMs)));
        const HttpReply ready = httpRequest(m_port, "GET", "/readyz");
        QCOMPARE(checkStatus(ready, QStringLiteral("redis:responseTime")), QStringLiteral("fail"));
        QCOMPARE(checkStatus(ready, QStringLiteral("postgres:responseTime")),
                 QStringLiteral("pass"));
        const HttpReply refused = httpRequest(m_port, "POST", "/v1/jobs", R"({"type":"echo"})");
        QCOMPARE(refused.status, 503);
        QVERIFY(jsonOf(refused)
                    .value(QStringLiteral("message"))
                    .toString()
                    .contains(QLatin1String("queue unavailable")));

        QVERIFY2(m_redis->start(&error), qPrintable(error));
        QTRY_COMPARE_WITH_TIMEOUT(httpRequest(m_port, "GET", "/readyz").status, 200,
                                  2 * kIntervalMs + 500);
        const QJsonObject job =
            submitAndWait(m_port, R"({"type":"echo","payload":{"after":"redis outage"}})", 20000);
        QCOMPARE(job.value(QStringLiteral("status")).toString(), QStringLiteral("succeeded"));
    }

    void workerRequeuesItsJobOnShutdown()
    {
        const QByteArray location = startSleepJob(30000);
        QVERIFY(!location.isEmpty());
        QElapsedTimer timer;
        timer.start();
        m_worker->terminate();
        QVERIFY(m_worker->waitForExit(5000));
        QCOMPARE(m_worker->exitCode(), 0);
        QVERIFY(timer.elapsed() < 3000);
        QCOMPARE(
            jsonOf(httpRequest(m_port, "GET", location)).value(QStringLiteral("status")).toString(),
            QStringLiteral("queued"));
        QCOMPARE(m_redis->cli({ QStringLiteral("LLEN"), QStringLiteral("deckhand:jobs") }),
                 QStringLiteral("1"));
        QVERIFY(!QFile::exists(m_tmp.filePath(QStringLiteral("worker.heartbeat"))));
        // Drop it so later tests start from an empty queue.
        m_redis->cli({ QStringLiteral("DEL"), QStringLiteral("deckhand:jobs") });
        QString error;
        m_worker = std::make_unique<Deckhand>(env(m_pg->url(), m_redis->url()),
                                              QStringList { QStringLiteral("worker") });
        QVERIFY2(m_worker->start(&error), qPrintable(error));
    }

    void workerKilledMidJobIsRecoveredByAnother()
    {
        // The regular worker steps aside so the two below are the only ones.
        m_worker->terminate();
        QVERIFY(m_worker->waitForExit(5000));
        QProcessEnvironment first = env(m_pg->url(), m_redis->url());
        first.insert(QStringLiteral("WORKER_LEASE_SECONDS"), QStringLiteral("1"));
        QProcessEnvironment second = first;
        first.insert(QStringLiteral("WORKER_HEARTBEAT_FILE"),
                     m_tmp.filePath(QStringLiteral("a.heartbeat")));
        second.insert(QStringLiteral("WORKER_HEARTBEAT_FILE"),
                      m_tmp.filePath(QStringLiteral("b.heartbeat")));

        Deckhand crashing(first, { QStringLiteral("worker") });
        QString error;
        QVERIFY2(crashing.start(&error), qPrintable(error));
        const QByteArray location = startSleepJob(1500);
        QVERIFY(!location.isEmpty());
        const QString crashedId = jsonOf(httpRequest(m_port, "GET", location))
                                      .value(QStringLiteral("worker_id"))
                                      .toString();
        crashing.kill();
        QVERIFY(crashing.waitForExit(5000));

        // Its lease runs out; another worker takes the job over and finishes it.
        Deckhand rescuer(second, { QStringLiteral("worker") });
        QVERIFY2(rescuer.start(&error), qPrintable(error));
        QTRY_COMPARE_WITH_TIMEOUT(
            jsonOf(httpRequest(m_port, "GET", location)).value(QStringLiteral("status")).toString(),
            QStringLiteral("succeeded"), 15000);
        const QJsonObject job = jsonOf(httpRequest(m_port, "GET", location));
        QCOMPARE(job.value(QStringLiteral("attempts")).toInt(), 2);
        QVERIFY(job.value(QStringLiteral("worker_id")).toString() != crashedId);
        QVERIFY(rescuer.outputLines().join('\n').contains("job of a stopped worker requeued"));
        QCOMPARE(m_redis->cli({ QStringLiteral("LLEN"),
                                QStringLiteral("deckhand:jobs:processing:") + crashedId }),
                 QStringLiteral("0"));
        rescuer.terminate();
        QVERIFY(rescuer.waitForExit(5000));
        QCOMPARE(rescuer.exitCode(), 0);

        m_worker = std::make_unique<Deckhand>(env(m_pg->url(), m_redis->url()),
                                              QStringList { QStringLiteral("worker") });
        QVERIFY2(m_worker->start(&error), qPrintable(error));
    }

    void passwordSources_data()
    {
        QTest::addColumn<QString>("source");
        QTest::newRow("url") << QStringLiteral("url");
        QTest::newRow("PGPASSWORD") << QStringLiteral("PGPASSWORD");
        QTest::newRow("pgpass file") << QStringLiteral("pgpass");
    }
    void passwordSources()
    {
        QFETCH(QString, source);
        QProcessEnvironment e =
            env(source == QLatin1String("url") ? m_pg->url()
                                               : m_pg->url(QStringLiteral("postgres"), false),
                {});
        QTemporaryDir dir;
        if (source == QLatin1String("PGPASSWORD"))
            e.insert(QStringLiteral("PGPASSWORD"), m_pg->password());
        if (source == QLatin1String("pgpass")) {
            QFile pgpass(dir.filePath(QStringLiteral("pgpass")));
            QVERIFY(pgpass.open(QIODevice::WriteOnly));
            pgpass.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner);
            pgpass.write(QStringLiteral("127.0.0.1:%1:*:postgres:%2\n")
                             .arg(m_pg->port())
                             .arg(m_pg->password())
                             .toUtf8());
            pgpass.close();
            e.insert(QStringLiteral("PGPASSFILE"), pgpass.fileName());
        }
        const quint16 port = freePort();
        e.insert(QStringLiteral("PORT"), QString::number(port));
        Deckhand api(e);
        QString error;
        QVERIFY2(api.start(&error), qPrintable(error));
        QVERIFY2(api.waitFor(port, "/readyz", 200, 10000),
                 api.outputLines().join('\n').constData());
        QCOMPARE(checkStatus(httpRequest(port, "GET", "/readyz"),
                             QStringLiteral("postgres:responseTime")),
                 QStringLiteral("pass"));
    }

    void wrongPasswordIsReportedNotLeaked()
    {
        const QString wrong = QStringLiteral("WrongPassword4242");
        QProcessEnvironment e = env(QStringLiteral("postgresql://postgres:%1@127.0.0.1:%2/postgres")
                                        .arg(wrong)
                                        .arg(m_pg->port()),
                                    {});
        const quint16 port = freePort();
        e.insert(QStringLiteral("PORT"), QString::number(port));
        Deckhand api(e);
        QString error;
        QVERIFY2(api.start(&error), qPrintable(error));
        QVERIFY(api.waitFor(port, "/readyz", 503, 10000));
        QTRY_VERIFY_WITH_TIMEOUT(
            httpRequest(port, "GET", "/readyz").body.contains("authentication failed"), 5000);
        const HttpReply r = httpRequest(port, "GET", "/readyz");
        QVERIFY(!r.body.contains(wrong.toUtf8()));
        QVERIFY(!api.outputLines().join('\n').contains(wrong.toUtf8()));
        api.terminate();
        QVERIFY(api.waitForExit(5000));
        QVERIFY(!api.outputLines().join('\n').contains(wrong.toUtf8()));
    }

    void concurrentMigrationsArSafe_data()
    {
        QTest::addColumn<QString>("backend");
        QTest::newRow("postgres") << QStringLiteral("postgres");
        QTest::newRow("sqlite") << QStringLiteral("sqlite");
    }
    void concurrentMigrationsArSafe()
    {
        QFETCH(QString, backend);
        QString url;
        QTemporaryDir dir;
        if (backend == QLatin1String("postgres")) {
            const QString db = QStringLiteral("mig_%1").arg(QDateTime::currentMSecsSinceEpoch());
            QString error;
            m_pg->psql(QStringLiteral("CREATE DATABASE %1;").arg(db), QStringLiteral("postgres"),
                       &error);
            QVERIFY2(error.isEmpty(), qPrintable(error));
            url = m_pg->url(db);
        } else {
            url = QStringLiteral("sqlite://") + dir.filePath(QStringLiteral("m.db"));
        }
        QList<QProcess *> runs;
        for (int i = 0; i < 4; ++i) {
            auto *p = new QProcess(this);
            p->setProcessEnvironment(env(url, {}));
            p->start(Deckhand::binary(), { QStringLiteral("migrate") });
            runs << p;
        }
        for (QProcess *p : runs) {
            QVERIFY(p->waitForFinished(30000));
            QVERIFY2(p->exitCode() == 0, p->readAllStandardOutput().constData());
        }
        qDeleteAll(runs);
        {
            QSqlDatabase check = QSqlDatabase::addDatabase(backend == QLatin1String("postgres")
                                                               ? QStringLiteral("QPSQL")
                                                               : QStringLiteral("QSQLITE"),
                                                           QStringLiteral("check"));
            if (backend == QLatin1String("postgres")) {
                check.setHostName(QStringLiteral("127.0.0.1"));
                check.setPort(m_pg->port());
                check.setUserName(QStringLiteral("postgres"));
                check.setPassword(m_pg->password());
                check.setDatabaseName(url.section(QLatin1Char('/'), -1));
            } else {
                check.setDatabaseName(dir.filePath(QStringLiteral("m.db")));
            }
            QVERIFY(check.open());
            QSqlQuery q(check);
            QVERIFY(q.exec(QStringLiteral("SELECT COUNT(*), MAX(version) FROM schema_migrations")));
            QVERIFY(q.next());
            QCOMPARE(q.value(0).toInt(), 1);
            QCOMPARE(q.value(1).toInt(), 1);
            QVERIFY(q.exec(QStringLiteral("SELECT COUNT(*) FROM jobs")));
        }
        QSqlDatabase::removeDatabase(QStringLiteral("check"));
    }

    void sqliteWithRedisRoundTrip()
    {
        // The embedded database with the queue: its own Redis db so the
        // PostgreSQL worker above does not take these jobs.
        QTemporaryDir dir;
        const QString redisUrl = QStringLiteral("redis://127.0.0.1:%1/1").arg(m_redis->port());
        QProcessEnvironment e =
            env(QStringLiteral("sqlite://") + dir.filePath(QStringLiteral("d.db")), redisUrl);
        const quint16 port = freePort();
        e.insert(QStringLiteral("PORT"), QString::number(port));
        e.insert(QStringLiteral("WORKER_HEARTBEAT_FILE"), dir.filePath(QStringLiteral("hb")));
        Deckhand api(e);
        Deckhand worker(e, { QStringLiteral("worker") });
        QString error;
        QVERIFY2(api.start(&error), qPrintable(error));
        QVERIFY(api.waitFor(port, "/readyz", 200, 10000));
        QCOMPARE(
            jsonOf(httpRequest(port, "GET", "/readyz")).value(QStringLiteral("status")).toString(),
            QStringLiteral("pass"));
        QVERIFY2(worker.start(&error), qPrintable(error));
        const QJsonObject job = submitAndWait(port, R"({"type":"echo","payload":{"db":"sqlite"}})");
        QCOMPARE(job.value(QStringLiteral("status")).toString(), QStringLiteral("succeeded"));
        QCOMPARE(
            job.value(QStringLiteral("result")).toObject().value(QStringLiteral("db")).toString(),
            QStringLiteral("sqlite"));
        worker.terminate();
        QVERIFY(worker.waitForExit(5000));
        QCOMPARE(worker.exitCode(), 0);
    }

    // JOBS_API_TOKEN: the jobs API asks for the bearer token (probes stay
    // open); JOBS_MAX_QUEUED: a full queue is 503 with the reason, not a
    // growing Redis list. Its own Redis db, with no worker taking the jobs.
    void jobsTokenAndQueueCap()
    {
        QTemporaryDir dir;
        const QString redisUrl = QStringLiteral("redis://127.0.0.1:%1/2").arg(m_redis->port());
        QProcessEnvironment e =
            env(QStringLiteral("sqlite://") + dir.filePath(QStringLiteral("d.db")), redisUrl);
        const quint16 port = freePort();
        const QByteArray token = "e2e-token-0123456789abcdef";
        e.insert(QStringLiteral("PORT"), QString::number(port));
        e.insert(QStringLiteral("JOBS_API_TOKEN"), QString::fromLatin1(token));
        e.insert(QStringLiteral("JOBS_MAX_QUEUED"), QStringLiteral("2"));
        Deckhand api(e);
        QString error;
        QVERIFY2(api.start(&error), qPrintable(error));
        QVERIFY(api.waitFor(port, "/readyz", 200, 10000));
        const QByteArray job = R"({"type":"echo","payload":{}})";
        const QList<QPair<QByteArray, QByteArray>> json { { "Content-Type", "application/json" } };
        HttpReply r = httpRequest(port, "POST", "/v1/jobs", job, json);
        QCOMPARE(r.status, 401);
        QVERIFY(r.header("WWW-Authenticate").startsWith("Bearer"));
        auto wrong = json;
        wrong.append(qMakePair(QByteArray("Authorization"),
                               QByteArray("Bearer e2e-token-0123456789abcdeX")));
        QCOMPARE(httpRequest(port, "POST", "/v1/jobs", job, wrong).status, 401);
        auto right = json;
        right.append(qMakePair(QByteArray("Authorization"), "Bearer " + token));
        r = httpRequest(port, "POST", "/v1/jobs", job, right);
        QCOMPARE(r.status, 202);
        const QByteArray location = r.header("Location");
        QCOMPARE(httpRequest(port, "GET", location).status, 401);
        QCOMPARE(httpRequest(port, "GET", location, {}, { { "Authorization", "Bearer " + token } })
                     .status,
                 200);
        QCOMPARE(httpRequest(port, "POST", "/v1/jobs", job, right).status, 202);
        r = httpRequest(port, "POST", "/v1/jobs", job, right);
        QCOMPARE(r.status, 503);
        QVERIFY2(r.body.contains("the job queue is full (2 jobs waiting, JOBS_MAX_QUEUED=2)"),
                 r.body.constData());
        QCOMPARE(r.header("Retry-After"), QByteArray("5"));
        QCOMPARE(m_redis
                     ->cli({ QStringLiteral("-n"), QStringLiteral("2"), QStringLiteral("LLEN"),
                             QStringLiteral("deckhand:jobs") })
                     .trimmed(),
                 QStringLiteral("2"));
        // Probes and the version stay open.
        QCOMPARE(httpRequest(port, "GET", "/readyz").status, 200);
        QCOMPARE(httpRequest(port, "GET", "/version").status, 200);
        m_redis->cli({ QStringLiteral("-n"), QStringLiteral("2"), QStringLiteral("FLUSHDB") });
    }

    // The heartbeat is written without following a symbolic link, and
    // `healthcheck --worker` counts only the worker's own plain file.
    void heartbeatRefusesSymbolicLinks()
    {
        QTemporaryDir dir;
        const QString target = dir.filePath(QStringLiteral("victim"));
        QFile victim(target);
        QVERIFY(victim.open(QIODevice::WriteOnly));
        victim.write("keep me");
        victim.close();
        const QString hb = dir.filePath(QStringLiteral("hb"));
        QVERIFY(QFile::link(target, hb));
        QProcessEnvironment e =
            env(m_pg->url(), QStringLiteral("redis://127.0.0.1:%1/3").arg(m_redis->port()));
        e.insert(QStringLiteral("WORKER_HEARTBEAT_FILE"), hb);
        e.insert(QStringLiteral("PORT"), QString::number(freePort()));
        Deckhand worker(e, { QStringLiteral("worker") });
        QString error;
        QVERIFY2(worker.start(&error), qPrintable(error));
        QTRY_VERIFY_WITH_TIMEOUT(
            worker.outputLines().join('\n').contains("it is a symbolic link; refused"), 10000);
        QVERIFY(victim.open(QIODevice::ReadOnly));
        QCOMPARE(victim.readAll(), QByteArray("keep me")); // not followed
        victim.close();
        QCOMPARE(runDeckhand(e, { QStringLiteral("healthcheck"), QStringLiteral("--worker") }), 1);
        worker.terminate();
        QVERIFY(worker.waitForExit(5000));
        // A plain file of its own passes.
        QFile::remove(hb);
        e.insert(QStringLiteral("WORKER_HEARTBEAT_FILE"), hb);
        Deckhand again(e, { QStringLiteral("worker") });
        QVERIFY2(again.start(&error), qPrintable(error));
        QTRY_VERIFY_WITH_TIMEOUT(QFileInfo::exists(hb), 10000);
        QCOMPARE(QFileInfo(hb).permissions() & (QFile::ReadOther | QFile::ReadGroup),
                 QFile::Permissions());
        QCOMPARE(runDeckhand(e, { QStringLiteral("healthcheck"), QStringLiteral("--worker") }), 0);
        again.terminate();
        QVERIFY(again.waitForExit(5000));
    }

    void cleanupTestCase()
    {
        if (m_worker) {
            m_worker->terminate();
            QVERIFY(m_worker->waitForExit(5000));
            QCOMPARE(m_worker->exitCode(), 0);
        }
        if (m_api) {
            m_api->terminate();
            QVERIFY(m_api->waitForExit(10000));
            QCOMPARE(m_api->exitCode(), 0);
            for (const QByteArray &line : m_api->outputLines()) {
                QVERIFY2(!QJsonDocument::fromJson(line).isNull(), line.constData());
                QVERIFY2(!line.contains(m_pg->password().toUtf8()), "a password reached the log");
            }
        }
    }
};

QTEST_GUILESS_MAIN(TestStack)
#include "tst_stack.moc"
