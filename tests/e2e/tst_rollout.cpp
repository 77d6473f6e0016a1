// Zero-downtime rollouts on a real Docker engine: the stack of compose.yaml,
// its HAProxy edge owning the published port, an environment with
// deploy.strategy start-first, and the same deckhand builds as tst_deploy (A
// and B good, C broken) in a loopback registry. A bounded load generator
// (tests/e2e/loadgen.py) sends GET /livez through the proxy the whole time
// and counts every failed request, phase by phase: a deploy of B, a rollback
// to A, C reverted by itself, a cancel mid-gate, and `docker kill` of one api
// replica of two must each cost 0 failed requests; a job in flight while the
// worker is rolled completes exactly once. The same load against today's
// recreate strategy shows what it costs (printed, and more than 0). Run by
// stack_e2e.py with PILOTHOUSE_E2E_* set; on its own it skips (fails under
// CI=true).
#include "core/session.h"
#include "deploy/deployer.h"
#include "deploy/historystore.h"
#include "drivers/command.h"
#include "drivers/docker.h"
#include "e2e_env.h"
#include "servers.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QSignalSpy>
#include <QtTest>

using namespace pilothouse;

using pilothouse::e2e::var;

namespace {

// tests/e2e/loadgen.py, driven through its stdin.
class LoadGenerator
{
public:
    bool start(int port)
    {
        m_process.setProgram(QStringLiteral("/usr/bin/python3"));
        m_process.setArguments(
            { QStringLiteral(LOADGEN), QStringLiteral("http://127.0.0.1:%1/livez").arg(port),
              QStringLiteral("--connections"), QStringLiteral("4"), QStringLiteral("--rate"),
              QStringLiteral("50"), QStringLiteral("--max-seconds"), QStringLiteral("1200") });
        m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        m_process.start();
        return m_process.waitForStarted(10000);
    }
    // Requests from now on count under `name`.
    void phase(const QString &name) { m_process.write("phase " + name.toUtf8() + '\n'); }
    // The counts of one phase so far.
    QJsonObject report(const QString &name)
    {
        m_process.write("report\n");
        QByteArray line;
        QElapsedTimer clock;
        clock.start();
        while (!line.endsWith('\n') && clock.elapsed() < 10000) {
            if (!m_process.canReadLine())
                m_process.waitForReadyRead(200);
            if (m_process.canReadLine())
                line = m_process.readLine();
        }
        return QJsonDocument::fromJson(line)
            .object()
            .value(u"phases")
            .toObject()
            .value(name)
            .toObject();
    }
    void stop()
    {
        m_process.closeWriteChannel();
        if (!m_process.waitForFinished(15000))
            m_process.kill();
        m_process.waitForFinished(5000);
    }

private:
    QProcess m_process;
};

QString describe(const QJsonObject &p)
{
    return QStringLiteral("%1 requests, %2 failed, p50 %3 ms, p99 %4 ms; first failures: %5")
        .arg(p.value(u"requests").toInt())
        .arg(p.value(u"failed").toInt())
        .arg(p.value(u"p50_ms").toDouble())
        .arg(p.value(u"p99_ms").toDouble())
        .arg(QString::fromUtf8(
            QJsonDocument(p.value(u"failures").toArray()).toJson(QJsonDocument::Compact)));
}

} // namespace

class TestRollout final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::optional<Environment> m_env;
    std::optional<Environment> m_recreateEnv;
    std::unique_ptr<StackSession> m_session;
    std::unique_ptr<StackSession> m_recreateSession;
    std::unique_ptr<HistoryStore> m_history;
    std::unique_ptr<Deployer> m_deployer;
    LoadGenerator m_load;
    QNetworkAccessManager m_network;
    QString m_a, m_b, m_c, m_repo;
    int m_port = 0;
    QJsonObject m_steady;

    DeployResult await(Deployer *deployer, const std::function<void()> &call,
                       int timeoutMs = 240000)
    {
        QSignalSpy done(deployer, &Deployer::finished);
        call();
        if (!done.wait(timeoutMs)) {
            DeployResult r;
            r.outcome = DeployResult::Outcome::Failed;
            r.message = QStringLiteral("test: no answer within %1 ms").arg(timeoutMs);
            return r;
        }
        return done.first().first().value<DeployResult>();
    }

    // Every container of a service, as the panel sees it.
    QList<ServiceRow> rows(const QString &service) const
    {
        QList<ServiceRow> out;
        for (const ServiceRow &r : m_session->services()) {
            if (r.state.service == service)
                out << r;
        }
        return out;
    }

    // One container of each of the api and the worker, on `tag`, healthy.
    bool settledOn(const QString &tag) const
    {
        const QList<ServiceRow> api = rows(QStringLiteral("api"));
        const QList<ServiceRow> worker = rows(QStringLiteral("worker"));
        return api.size() == 1 && worker.size() == 1 && api.first().state.tag == tag &&
            worker.first().state.tag == tag && api.first().health == ServiceHealth::Healthy &&
            worker.first().health == ServiceHealth::Healthy;
    }

    QStringList ids(const QString &service) const
    {
        QStringList out;
        for (const ServiceRow &r : rows(service))
            out << r.state.containerId;
        return out;
    }

    // The phase so far must have lost nothing.
    void expectNoFailure(const QString &phase, int minimumRequests = 100)
    {
        const QJsonObject p = m_load.report(phase);
        qInfo("%s through the proxy: %s", qPrintable(phase), qPrintable(describe(p)));
        qInfo("BENCH_RATIO %s p99 %.3f ms against steady %.3f ms", qPrintable(phase),
              p.value(u"p99_ms").toDouble(), m_steady.value(u"p99_ms").toDouble());
        QVERIFY2(p.value(u"requests").toInt() >= minimumRequests, qPrintable(describe(p)));
        QVERIFY2(p.value(u"failed").toInt() == 0, qPrintable(describe(p)));
    }

    int requests(const QString &phase) { return m_load.report(phase).value(u"requests").toInt(); }

    // GET /livez answered by the deckhand at this address itself (its /metrics).
    qint64 livezServed(const QString &address)
    {
        if (address.isEmpty())
            return 0;
        QNetworkReply *reply = m_network.get(
            QNetworkRequest(QUrl(QStringLiteral("http://%1:8000/metrics").arg(address))));
        QSignalSpy done(reply, &QNetworkReply::finished);
        if (!reply->isFinished())
            done.wait(5000);
        qint64 served = 0;
        for (const QByteArray &line : reply->readAll().split('\n')) {
            if (line.startsWith("http_requests_total{") && line.contains("route=\"/livez\""))
                served += line.mid(line.lastIndexOf(' ') + 1).toLongLong();
        }
        reply->deleteLater();
        return served;
    }

    QJsonObject http(const QByteArray &method, const QString &path, const QJsonObject &body = {})
    {
        QNetworkRequest request(
            QUrl(QStringLiteral("http://127.0.0.1:%1%2").arg(m_port).arg(path)));
        request.setHeader(QNetworkRequest::ContentTypeHeader, QStringLiteral("application/json"));
        QNetworkReply *reply = m_network.sendCustomRequest(
            request, method, body.isEmpty() ? QByteArray() : QJsonDocument(body).toJson());
        QSignalSpy done(reply, &QNetworkReply::finished);
        if (!reply->isFinished())
            done.wait(10000);
        const QJsonObject answer = QJsonDocument::fromJson(reply->readAll()).object();
        reply->deleteLater();
        return answer;
    }

    // docker-compose (v1) or docker compose (v2), as stack_e2e.py found it.
    CommandResult compose(const QStringList &args, const QString &tag)
    {
        std::optional<Expected<ComposeCli>> cli;
        locateCompose(*m_env, this, [&cli](Expected<ComposeCli> c) { cli = c; });
        if (!QTest::qWaitFor([&cli] { return cli.has_value(); }, 30000) || !*cli)
            return {};
        QMap<QString, QString> vars { { m_env->repositoryVariable, m_repo },
                                      { m_env->tagVariable, tag } };
        return run(
            composeCommand(*m_env, cli->value(), args, 120000, QStringLiteral("compose"), vars));
    }

    CommandResult run(const CommandSpec &spec)
    {
        Command cmd(spec);
        QSignalSpy done(&cmd, &Command::finished);
        cmd.start();
        if (!done.wait(spec.timeoutMs + 5000))
            return {};
        return done.first().first().value<CommandResult>();
    }

private slots:
    void initTestCase()
    {
        const QString project = var("PILOTHOUSE_E2E_PROJECT");
        PILOTHOUSE_REQUIRE(project.isEmpty()
                               ? QStringLiteral("run by tests/e2e/stack_e2e.py, which starts the "
                                                "engine and a registry, pushes the builds and "
                                                "sets PILOTHOUSE_E2E_*")
                               : QString());
        QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));
        QVERIFY(m_dir.isValid());
        m_repo = var("PILOTHOUSE_E2E_REPOSITORY");
        m_a = var("PILOTHOUSE_E2E_TAG_A");
        m_b = var("PILOTHOUSE_E2E_TAG_B");
        m_c = var("PILOTHOUSE_E2E_TAG_C");
        m_port = var("PILOTHOUSE_E2E_API_PORT").toInt();
        QJsonObject startFirst = e2e::deployEnvironment(QStringLiteral("e2e"), m_repo, 0.25);
        QJsonObject deploy = startFirst.value(u"deploy").toObject();
        deploy.insert(QStringLiteral("strategy"), QStringLiteral("start-first"));
        deploy.insert(QStringLiteral("containerPort"), 8000);
        startFirst.insert(QStringLiteral("deploy"), deploy);
        QJsonObject recreate = e2e::deployEnvironment(QStringLiteral("e2e-recreate"), m_repo, 0.25);
        const QString config = m_dir.filePath(QStringLiteral("envs.json"));
        QVERIFY(e2e::writeEnvironments(config, { startFirst, recreate }));
        const auto set = loadEnvironments(config);
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        m_env = *set->find(QStringLiteral("e2e"));
        m_recreateEnv = *set->find(QStringLiteral("e2e-recreate"));
        QCOMPARE(int(m_env->rollout), int(Environment::Rollout::StartFirst));
        QCOMPARE(int(m_recreateEnv->rollout), int(Environment::Rollout::Recreate));

        m_history = std::make_unique<HistoryStore>();
        std::optional<Expected<int>> opened;
        m_history->open(DeploymentHistory::defaultPath(), DeploymentHistory::Mode::Writer, this,
                        [&opened](Expected<int> r) { opened = r; });
        QTRY_VERIFY(opened.has_value());
        QVERIFY2(opened->ok(), qPrintable(opened->ok() ? QString() : opened->error()));

        m_session = std::make_unique<StackSession>(*m_env);
        m_session->startWatching();
        QTRY_COMPARE_WITH_TIMEOUT(int(m_session->watcher()->engineStatus()),
                                  int(EngineWatcher::EngineStatus::Connected), 30000);
        m_session->setPinnedTag(m_a);
        QSignalSpy up(m_session.get(), &StackSession::operationFinished);
        m_session->up();
        QVERIFY(up.wait(300000));
        const auto r = up.first().first().value<OperationResult>();
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 180000);
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_a), 60000);
        m_deployer = std::make_unique<Deployer>(m_session.get(), m_history.get());
        QVERIFY(m_deployer->startsFirst());
        QCOMPARE(m_deployer->strategyName(), QStringLiteral("start-first"));
        QVERIFY(m_deployer->rolloutCaveat().isEmpty()); // no outage to warn of

        QVERIFY(m_load.start(m_port));
        m_load.phase(QStringLiteral("steady"));
        // A few seconds' worth of requests at the generator's rate.
        QTRY_VERIFY_WITH_TIMEOUT(requests(QStringLiteral("steady")) >= 500, 30000);
        m_steady = m_load.report(QStringLiteral("steady"));
        qInfo("steady state through the proxy: %s", qPrintable(describe(m_steady)));
        QVERIFY2(m_steady.value(u"failed").toInt() == 0, qPrintable(describe(m_steady)));
        QVERIFY2(m_steady.value(u"requests").toInt() > 100, qPrintable(describe(m_steady)));
    }

    // B starts next to A, passes the gate itself, then A drains: no request
    // fails, the window sees both versions at once, and a job the old worker
    // holds completes once.
    void deployStartsFirstWithNoFailedRequest()
    {
        const QStringList oldApi = ids(QStringLiteral("api"));
        const QJsonObject job = http(
            "POST", QStringLiteral("/v1/jobs"),
            { { QStringLiteral("type"), QStringLiteral("sleep") },
              { QStringLiteral("payload"), QJsonObject { { QStringLiteral("ms"), 15000 } } } });
        const QString jobId = job.value(u"id").toString();
        QVERIFY2(!jobId.isEmpty(), QJsonDocument(job).toJson().constData());
        // The old worker has it before the rollout starts.
        QTRY_COMPARE_WITH_TIMEOUT(
            http("GET", QStringLiteral("/v1/jobs/") + jobId).value(u"status").toString(),
            QStringLiteral("running"), 10000);

        int most = 0;
        bool bothVersions = false;
        QSet<QString> roles; // "tag role" as the services table showed them
        const auto link = connect(m_session.get(), &StackSession::servicesChanged, this, [&] {
            const QList<ServiceRow> api = rows(QStringLiteral("api"));
            most = std::max(most, int(api.size()));
            QSet<QString> tags;
            for (const ServiceRow &r : api) {
                tags.insert(r.state.tag);
                if (!r.rollout.isEmpty())
                    roles.insert(r.state.tag + QLatin1Char(' ') + r.rollout);
            }
            bothVersions = bothVersions || (tags.contains(m_a) && tags.contains(m_b));
        });
        QSignalSpy steps(m_deployer.get(), &Deployer::stepChanged);
        m_load.phase(QStringLiteral("deploy-B"));
        QElapsedTimer clock;
        clock.start();
        const DeployResult r = await(m_deployer.get(), [this] { m_deployer->deploy(m_b); });
        qInfo("BENCH rollout_start_first_deploy %lld ms", clock.elapsed());
        disconnect(link);
        QVERIFY2(r.ok(), qPrintable(r.message));
        expectNoFailure(QStringLiteral("deploy-B"));
        QVERIFY2(bothVersions, "the panel never showed A and B side by side");
        QCOMPARE(most, 2);
        // Each side said what it was doing, in the rows the window shows.
        const QStringList wanted { QString(m_a + QStringLiteral(" old, serving")),
                                   QString(m_b + QStringLiteral(" new, health gate")),
                                   QString(m_a + QStringLiteral(" old, draining")),
                                   QString(m_b + QStringLiteral(" new, serving")) };
        for (const QString &seen : wanted)
            QVERIFY2(
                roles.contains(seen),
                qPrintable(QStringList(roles.begin(), roles.end()).join(QStringLiteral("; "))));
        for (const ServiceRow &row : m_session->services())
            QVERIFY2(row.rollout.isEmpty(), qPrintable(row.rollout)); // over: no roles left
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_b), 30000);
        for (const QString &id : oldApi)
            QVERIFY(!ids(QStringLiteral("api")).contains(id));
        QStringList seen;
        for (const QList<QVariant> &s : steps) {
            const QString step = toString(s.first().value<DeployStep>());
            if (seen.isEmpty() || seen.last() != step)
                seen << step;
        }
        QCOMPARE(seen.join(u','),
                 QStringLiteral("preparing,pulling,recreating,waiting for health,draining"));
        std::optional<Expected<QList<Deployment>>> rows;
        m_history->list(m_env->name, 10, this,
                        [&rows](Expected<QList<Deployment>> l) { rows = l; });
        QTRY_VERIFY(rows.has_value());
        QVERIFY(rows->ok() && !rows->value().isEmpty());
        QCOMPARE(rows->value().first().strategy, QStringLiteral("start-first"));

        // The job: finished by the old worker as it drained, or handed back
        // and finished by the new one; either way once.
        QTRY_COMPARE_WITH_TIMEOUT(
            http("GET", QStringLiteral("/v1/jobs/") + jobId).value(u"status").toString(),
            QStringLiteral("succeeded"), 90000);
        const QJsonObject done = http("GET", QStringLiteral("/v1/jobs/") + jobId);
        qInfo("the job in flight: %s", QJsonDocument(done).toJson(QJsonDocument::Compact).data());
        QVERIFY(!done.value(u"finished_at").toString().isEmpty());
        // Run at most twice (the old worker's start, handed back, then the
        // new one's), finished once: one result, no error.
        QVERIFY2(done.value(u"attempts").toInt() >= 1 && done.value(u"attempts").toInt() <= 2,
                 QJsonDocument(done).toJson().constData());
        QVERIFY(done.value(u"error").isNull());
    }

    void rollbackStartsFirstWithNoFailedRequest()
    {
        m_load.phase(QStringLiteral("rollback-A"));
        QElapsedTimer clock;
        clock.start();
        const DeployResult r = await(m_deployer.get(), [this] { m_deployer->rollback(m_a); });
        qInfo("BENCH rollout_start_first_rollback %lld ms", clock.elapsed());
        QVERIFY2(r.ok(), qPrintable(r.message));
        expectNoFailure(QStringLiteral("rollback-A"));
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_a), 30000);
    }

    // C never gets ready: the gate fails on C's own container, C is removed,
    // and A, which never stopped, is the same container as before.
    void brokenBuildIsRemovedWhileTheOldOneServes()
    {
        const QStringList before = ids(QStringLiteral("api"));
        m_load.phase(QStringLiteral("broken-C"));
        const DeployResult r = await(m_deployer.get(), [this] { m_deployer->deploy(m_c); });
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Reverted));
        QVERIFY2(r.message.contains(QLatin1String("kept serving")) || r.message.contains(m_a),
                 qPrintable(r.message));
        expectNoFailure(QStringLiteral("broken-C"));
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_a), 30000);
        QCOMPARE(ids(QStringLiteral("api")), before);
        QVERIFY(!r.logLines.isEmpty()); // C's own last words
    }

    void cancelMidGateWithNoFailedRequest()
    {
        const QStringList before = ids(QStringLiteral("api"));
        m_load.phase(QStringLiteral("cancel"));
        QSignalSpy finished(m_deployer.get(), &Deployer::finished);
        m_deployer->deploy(m_b);
        QVERIFY(QTest::qWaitFor(
            [this] { return m_deployer->step() == DeployStep::WaitingForHealth; }, 120000));
        m_deployer->cancel();
        QVERIFY(finished.wait(120000));
        const auto r = finished.last().first().value<DeployResult>();
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Cancelled));
        expectNoFailure(QStringLiteral("cancel"), 50);
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_a), 30000);
        QCOMPARE(ids(QStringLiteral("api")), before);
    }

    // Two api replicas behind the proxy; one is killed: the proxy retries
    // the requests it had on the other one.
    void killedReplicaCostsNoRequest()
    {
        const CommandResult scaled =
            compose({ QStringLiteral("up"), QStringLiteral("--detach"), QStringLiteral("--no-deps"),
                      QStringLiteral("--no-recreate"), QStringLiteral("--no-build"),
                      QStringLiteral("--scale"), QStringLiteral("api=2"), QStringLiteral("api") },
                    m_a);
        QVERIFY2(scaled.ok(), qPrintable(scaled.errorOutput));
        QTRY_VERIFY_WITH_TIMEOUT(
            rows(QStringLiteral("api")).size() == 2 &&
                rows(QStringLiteral("api")).last().health == ServiceHealth::Healthy &&
                rows(QStringLiteral("api")).first().health == ServiceHealth::Healthy,
            60000);
        // The proxy sends the load to both: each has answered /livez itself.
        for (const ServiceRow &r : rows(QStringLiteral("api")))
            QTRY_VERIFY2_WITH_TIMEOUT(livezServed(r.state.addresses.value(0)) >= 20,
                                      qPrintable(r.state.container), 30000);
        m_load.phase(QStringLiteral("kill-replica"));
        QTRY_VERIFY_WITH_TIMEOUT(requests(QStringLiteral("kill-replica")) >= 100, 30000);
        const QString victim = ids(QStringLiteral("api")).first();
        const CommandResult killed = run(dockerCommand(*m_env, { QStringLiteral("kill"), victim },
                                                       30000, QStringLiteral("docker kill")));
        QVERIFY2(killed.ok(), qPrintable(killed.errorOutput));
        // Enough requests after the kill for the proxy to have met the dead one.
        QTRY_VERIFY_WITH_TIMEOUT(requests(QStringLiteral("kill-replica")) >= 700, 30000);
        expectNoFailure(QStringLiteral("kill-replica"));
        // Back to one replica for what follows.
        const CommandResult one =
            compose({ QStringLiteral("up"), QStringLiteral("--detach"), QStringLiteral("--no-deps"),
                      QStringLiteral("--no-build"), QStringLiteral("--scale"),
                      QStringLiteral("api=1"), QStringLiteral("api") },
                    m_a);
        QVERIFY2(one.ok(), qPrintable(one.errorOutput));
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_a), 60000);
    }

    // Today's recreate under the same load, for comparison: the old
    // container stops before the new one answers, so requests fail.
    void recreateCostsRequests()
    {
        m_recreateSession = std::make_unique<StackSession>(*m_recreateEnv);
        m_recreateSession->startWatching();
        QTRY_VERIFY_WITH_TIMEOUT(m_recreateSession->watcher()->isSeeded(), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(m_recreateSession->stateOf(QStringLiteral("api")).has_value(),
                                 30000);
        Deployer recreate(m_recreateSession.get(), m_history.get());
        QVERIFY(!recreate.startsFirst());
        QVERIFY(recreate.rolloutCaveat().contains(QLatin1String("outage")));
        m_load.phase(QStringLiteral("recreate-B"));
        QElapsedTimer clock;
        clock.start();
        const DeployResult r = await(&recreate, [&] { recreate.deploy(m_b); });
        qInfo("BENCH rollout_recreate_deploy %lld ms", clock.elapsed());
        QVERIFY2(r.ok(), qPrintable(r.message));
        const QJsonObject p = m_load.report(QStringLiteral("recreate-B"));
        qInfo("recreate-B through the proxy: %s", qPrintable(describe(p)));
        qInfo("BENCH_FAILED recreate %d start-first 0", p.value(u"failed").toInt());
        QVERIFY2(p.value(u"failed").toInt() > 0,
                 "recreate lost no request: the load generator may not see an outage");
        m_load.phase(QStringLiteral("after"));
        QTRY_VERIFY_WITH_TIMEOUT(settledOn(m_b), 60000);
    }

    void cleanupTestCase()
    {
        m_load.stop();
        if (!m_session)
            return;
        m_deployer.reset();
        m_recreateSession.reset();
        QSignalSpy down(m_session.get(), &StackSession::operationFinished);
        m_session->down();
        down.wait(180000);
        m_session->stopWatching();
    }
};

QTEST_GUILESS_MAIN(TestRollout)
#include "tst_rollout.moc"
