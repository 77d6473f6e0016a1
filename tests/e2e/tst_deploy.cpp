// Deployments on a real Docker engine with a real registry: Debian's
// docker-registry on loopback holds three deckhand builds of this repository,
// A and B good and C broken (its readiness never passes). With the stack on A:
// deploy B, roll back to A in one call, deploy C and watch the gate bring A
// back by itself; an unknown tag, a stopped registry and a second deployment
// are refused and change nothing; pilothousectl deploy/rollback and their exit
// codes; a pilothousectl killed mid-deployment leaves the history whole. Run by
// stack_e2e.py (which starts the engine and the registry and pushes the
// builds) with PILOTHOUSE_E2E_* set; on its own it skips (fails under CI=true).
#include "core/session.h"
#include "deploy/deployer.h"
#include "deploy/historystore.h"
#include "drivers/command.h"
#include "drivers/docker.h"
#include "e2e_env.h"
#include "health/healthreport.h"
#include "monitor/healthmonitor.h"
#include "servers.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QtTest>
#include <csignal>

using namespace pilothouse;

using pilothouse::e2e::var;

class TestDeploy final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_config;
    std::optional<Environment> m_env;
    std::unique_ptr<StackSession> m_session;
    std::unique_ptr<HistoryStore> m_history;
    std::unique_ptr<Deployer> m_deployer;
    QString m_a, m_b, m_c, m_repo;

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

    QList<Deployment> history()
    {
        std::optional<Expected<QList<Deployment>>> rows;
        m_history->list(m_env->name, 1000, this,
                        [&rows](Expected<QList<Deployment>> r) { rows = r; });
        if (!QTest::qWaitFor([&rows] { return rows.has_value(); }, 10000) || !*rows)
            return {};
        return rows->value();
    }

    ServiceState state(const QString &service) const
    {
        return m_session->stateOf(service).value_or(ServiceState {});
    }

    ServiceRow row(const QString &service) const
    {
        for (const ServiceRow &r : m_session->services()) {
            if (r.state.service == service)
                return r;
        }
        return {};
    }

    // The api and the worker both run `tag`, from one image, and are healthy.
    bool apiHealthyOn(const QString &tag) const
    {
        const ServiceRow api = row(QStringLiteral("api"));
        const ServiceRow worker = row(QStringLiteral("worker"));
        return api.state.tag == tag && api.health == ServiceHealth::Healthy &&
            worker.state.tag == tag && worker.health == ServiceHealth::Healthy &&
            !api.state.imageId.isEmpty() && worker.state.imageId == api.state.imageId;
    }

    struct Ctl
    {
        int exitCode = -1;
        QByteArray out;
        QByteArray err;
        QJsonObject json() const { return QJsonDocument::fromJson(out).object(); }
    };

    Ctl ctl(const QStringList &args, int timeoutMs = 240000)
    {
        QProcess p;
        p.start(QStringLiteral(PILOTHOUSECTL),
                QStringList { QStringLiteral("--config"), m_config, QStringLiteral("--env"),
                              m_env->name }
                    << args);
        Ctl c;
        if (!p.waitForStarted(10000) || !p.waitForFinished(timeoutMs)) {
            p.kill();
            p.waitForFinished(5000);
            c.err = "test: pilothousectl did not finish";
            return c;
        }
        c.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
        c.out = p.readAllStandardOutput();
        c.err = p.readAllStandardError();
        return c;
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
        // The same data folder as pilothousectl's (history, deploy lock).
        QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));
        QVERIFY(m_dir.isValid());
        m_repo = var("PILOTHOUSE_E2E_REPOSITORY");
        m_a = var("PILOTHOUSE_E2E_TAG_A");
        m_b = var("PILOTHOUSE_E2E_TAG_B");
        m_c = var("PILOTHOUSE_E2E_TAG_C");
        // A registry that is not running: the same repository on a closed port.
        const QString stopped =
            QStringLiteral("127.0.0.1:%1/pilothouse/deckhand").arg(fixtures::freePort());
        m_config = m_dir.filePath(QStringLiteral("envs.json"));
        QVERIFY(e2e::writeEnvironments(
            m_config,
            { e2e::deployEnvironment(QStringLiteral("e2e"), m_repo, 0.25),
              e2e::deployEnvironment(QStringLiteral("e2e-no-registry"), stopped, 0.25) }));
        const auto set = loadEnvironments(m_config);
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        m_env = *set->find(QStringLiteral("e2e"));

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
        // The stack starts on A: the panel passes the repository and the tag.
        m_session->setPinnedTag(m_a);
        QSignalSpy up(m_session.get(), &StackSession::operationFinished);
        m_session->up();
        QVERIFY(up.wait(300000));
        const auto r = up.first().first().value<OperationResult>();
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 180000);
        QCOMPARE(state(QStringLiteral("api")).tag, m_a);
        QCOMPARE(state(QStringLiteral("api")).image, m_repo + QLatin1Char(':') + m_a);
        QCOMPARE(state(QStringLiteral("worker")).tag, m_a);
        m_deployer = std::make_unique<Deployer>(m_session.get(), m_history.get());
        QCOMPARE(m_deployer->runningTag(), m_a);
    }

    void tagsComeFromTheRegistry()
    {
        std::optional<Expected<QList<ImageTag>>> tags;
        m_deployer->listTags(this, [&tags](Expected<QList<ImageTag>> t) { tags = t; });
        QTRY_VERIFY_WITH_TIMEOUT(tags.has_value(), 15000);
        QVERIFY2(tags->ok(), qPrintable(tags->ok() ? QString() : tags->error()));
        QStringList names;
        for (const ImageTag &t : tags->value())
            names << t.name;
        for (const QString &t : { m_a, m_b, m_c })
            QVERIFY2(names.contains(t), qPrintable(t));
    }

    void deployAGoodBuild()
    {
        const ServiceState before = state(QStringLiteral("api"));
        const QString worker = state(QStringLiteral("worker")).containerId;
        const qsizetype rows = history().size();
        QSignalSpy steps(m_deployer.get(), &Deployer::stepChanged);
        QElapsedTimer clock;
        clock.start();
        const DeployResult r = await(m_deployer.get(), [this] { m_deployer->deploy(m_b); });
        qInfo("BENCH deploy_good %lld ms", clock.elapsed());
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(apiHealthyOn(m_b));
        const ServiceState after = state(QStringLiteral("api"));
        QVERIFY(after.containerId != before.containerId);
        QVERIFY(after.imageId != before.imageId);
        // The worker runs the same image: it moved with the api.
        QVERIFY(state(QStringLiteral("worker")).containerId != worker);
        QCOMPARE(state(QStringLiteral("worker")).tag, m_b);
        QCOMPARE(state(QStringLiteral("worker")).imageId, after.imageId);
        QCOMPARE(state(QStringLiteral("worker")).digest, after.digest);
        // Every step was reported, in order.
        QStringList seen;
        for (const QList<QVariant> &s : steps) {
            const QString step = toString(s.first().value<DeployStep>());
            if (seen.isEmpty() || seen.last() != step)
                seen << step;
        }
        QCOMPARE(seen.join(u','),
                 QStringLiteral("preparing,pulling,recreating,waiting for health"));
        const QList<Deployment> h = history();
        QCOMPARE(h.size(), rows + 1);
        const Deployment &d = h.first();
        QCOMPARE(toString(d.outcome), toString(Deployment::Outcome::Succeeded));
        QCOMPARE(d.service, QStringLiteral("api,worker")); // one row for both
        QCOMPARE(d.fromTag, m_a);
        QCOMPARE(d.toTag, m_b);
        QCOMPARE(d.fromDigest, before.digest);
        QVERIFY(d.toDigest.startsWith(QLatin1String("sha256:")));
        QVERIFY(d.who.contains(QLatin1Char('@')));
        QVERIFY(d.finishedAt >= d.startedAt);
        // The schema each build expects, from its /version.
        QVERIFY(d.fromSchema >= 1);
        QCOMPARE(d.toSchema, d.fromSchema);
        QCOMPARE(m_session->pinnedTag(), m_b);
    }

    void rollbackIsOneCall()
    {
        std::optional<Expected<RollbackPlan>> plan;
        m_deployer->planRollback({}, this, [&plan](Expected<RollbackPlan> p) { plan = p; });
        QTRY_VERIFY(plan.has_value());
        QVERIFY2(plan->ok(), qPrintable(plan->ok() ? QString() : plan->error()));
        QCOMPARE(plan->value().fromTag, m_b);
        QCOMPARE(plan->value().toTag, m_a);
        QVERIFY(plan->value().toDigest.startsWith(QLatin1String("sha256:")));
        QVERIFY(plan->value().targetSchema >= 1);
        QCOMPARE(plan->value().databaseSchema, plan->value().targetSchema);
        QVERIFY(plan->value().schemaWarning.isEmpty());

        QElapsedTimer clock;
        clock.start();
        const DeployResult r = await(m_deployer.get(), [this] { m_deployer->rollback(); });
        qInfo("BENCH rollback_to_previous %lld ms", clock.elapsed());
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(apiHealthyOn(m_a));
        QCOMPARE(history().first().toTag, m_a);
        QCOMPARE(history().first().fromTag, m_b);
    }

    // A database migrated past what the rollback target expects: the plan warns.
    void rollbackWarnsWhenTheDatabaseIsNewer()
    {
        const QString pg = state(QStringLiteral("postgres")).containerId;
        QVERIFY(!pg.isEmpty());
        const auto psql = [this, &pg](const QString &sql) {
            Command cmd(
                dockerCommand(*m_env,
                              { QStringLiteral("exec"), pg, QStringLiteral("psql"),
                                QStringLiteral("-U"), var("POSTGRES_USER"), QStringLiteral("-d"),
                                var("POSTGRES_DB"), QStringLiteral("-tAc"), sql },
                              30000, QStringLiteral("psql")));
            QSignalSpy done(&cmd, &Command::finished);
            cmd.start();
            return done.wait(35000) && done.first().first().value<CommandResult>().ok();
        };
        const auto databaseSays = [this](int version) {
            HealthMonitor *m = m_session->monitor();
            for (int id : m->idsOf(QStringLiteral("api"))) {
                for (const health::Check &c : m->endpoint(id)->checks) {
                    if (c.name == QLatin1String("schema:version") && c.observedValue)
                        return int(*c.observedValue) == version;
                }
            }
            return false;
        };
        QVERIFY(psql(QStringLiteral("INSERT INTO schema_migrations (version, name, applied_at) "
                                    "VALUES (99, 'from a later build', now())")));
        QTRY_VERIFY_WITH_TIMEOUT(databaseSays(99), 20000);
        std::optional<Expected<RollbackPlan>> plan;
        m_deployer->planRollback({}, this, [&plan](Expected<RollbackPlan> p) { plan = p; });
        QTRY_VERIFY(plan.has_value());
        QVERIFY2(plan->ok(), qPrintable(plan->ok() ? QString() : plan->error()));
        QCOMPARE(plan->value().databaseSchema, 99);
        QVERIFY(plan->value().targetSchema >= 1 && plan->value().targetSchema < 99);
        QVERIFY2(plan->value().schemaWarning.contains(QLatin1String("schema version 99")),
                 qPrintable(plan->value().schemaWarning));
        QVERIFY(psql(QStringLiteral("DELETE FROM schema_migrations WHERE version = 99")));
        QTRY_VERIFY_WITH_TIMEOUT(!databaseSays(99), 20000);
    }

    void brokenBuildIsRevertedByItself()
    {
        QElapsedTimer clock;
        clock.start();
        const DeployResult r = await(m_deployer.get(), [this] { m_deployer->deploy(m_c); });
        qInfo("BENCH broken_build_reverted %lld ms", clock.elapsed());
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Reverted));
        QVERIFY2(r.message.contains(QLatin1String("health gate")), qPrintable(r.message));
        // The api's readiness never passes; the worker cannot reach the
        // database either: whichever the gate saw first is named.
        QVERIFY2(r.message.contains(QLatin1String("/readyz")) ||
                     r.message.contains(QLatin1String("worker")),
                 qPrintable(r.message));
        QVERIFY(apiHealthyOn(m_a));
        // The failed container's own last lines: libpq asked for TLS.
        QVERIFY(!r.logLines.isEmpty());
        QVERIFY2(r.logLines.join(u'\n').contains(QLatin1String("SSL"), Qt::CaseInsensitive),
                 qPrintable(r.logLines.join(u'\n')));
        const Deployment d = history().first();
        QCOMPARE(toString(d.outcome), toString(Deployment::Outcome::Reverted));
        QCOMPARE(d.toTag, m_c);
        QCOMPARE(d.fromTag, m_a);
        QCOMPARE(d.reason, r.message);
        QCOMPARE(d.logLines, r.logLines);
        QCOMPARE(m_session->pinnedTag(), m_a);
    }

    // The api is fine on B, but its worker crashes under the gate: both go
    // back to A, in one history row.
    void workerFailingItsGateRevertsBoth()
    {
        const ServiceState apiBefore = state(QStringLiteral("api"));
        const ServiceState workerBefore = state(QStringLiteral("worker"));
        QSignalSpy finished(m_deployer.get(), &Deployer::finished);
        m_deployer->deploy(m_b);
        // The new worker container, running: a real crash of it (SIGKILL).
        QString newWorker;
        QVERIFY(QTest::qWaitFor(
            [&] {
                const ServiceState w = state(QStringLiteral("worker"));
                if (w.tag == m_b && w.containerId != workerBefore.containerId && w.isRunning())
                    newWorker = w.containerId;
                return !newWorker.isEmpty() || !finished.isEmpty();
            },
            120000));
        QVERIFY2(!newWorker.isEmpty(), "the deployment ended before the new worker ran");
        Command kill(dockerCommand(*m_env, { QStringLiteral("kill"), newWorker }, 30000,
                                   QStringLiteral("docker kill")));
        QSignalSpy killed(&kill, &Command::finished);
        kill.start();
        QVERIFY(killed.wait(35000));
        QVERIFY(finished.wait(240000));
        const auto r = finished.last().first().value<DeployResult>();
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Reverted));
        QVERIFY2(r.message.contains(QLatin1String("worker")), qPrintable(r.message));
        QVERIFY2(r.message.contains(QLatin1String("api and worker are back on ") + m_a),
                 qPrintable(r.message));
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_a), 30000);
        QCOMPARE(state(QStringLiteral("api")).imageId, apiBefore.imageId);
        const Deployment d = history().first();
        QCOMPARE(toString(d.outcome), toString(Deployment::Outcome::Reverted));
        QCOMPARE(d.service, QStringLiteral("api,worker"));
        QCOMPARE(m_session->pinnedTag(), m_a);
    }

    // A moving tag ("staging") re-pushed to another build: deploying it again
    // is a change, and rolling back goes to the digest that ran, not the tag.
    void movingTagRollsBackByDigest()
    {
        const auto push = [this](const QString &source) {
            const QString ref = m_repo + QStringLiteral(":staging");
            for (const QStringList &args : { QStringList { QStringLiteral("tag"), source, ref },
                                             QStringList { QStringLiteral("push"), ref } }) {
                Command cmd(dockerCommand(*m_env, args, 120000, QStringLiteral("docker")));
                QSignalSpy done(&cmd, &Command::finished);
                cmd.start();
                if (!done.wait(125000) || !done.first().first().value<CommandResult>().ok())
                    return false;
            }
            return true;
        };
        QVERIFY(push(var("PILOTHOUSE_E2E_SOURCE_A")));
        DeployResult r =
            await(m_deployer.get(), [this] { m_deployer->deploy(QStringLiteral("staging")); });
        QVERIFY2(r.ok(), qPrintable(r.message));
        const QString digestA = r.deployment.toDigest;
        QVERIFY(push(var("PILOTHOUSE_E2E_SOURCE_B")));
        r = await(m_deployer.get(), [this] { m_deployer->deploy(QStringLiteral("staging")); });
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(r.deployment.toDigest != digestA);
        QCOMPARE(r.deployment.fromTag, QStringLiteral("staging"));

        std::optional<Expected<RollbackPlan>> plan;
        m_deployer->planRollback({}, this, [&plan](Expected<RollbackPlan> p) { plan = p; });
        QTRY_VERIFY(plan.has_value());
        QVERIFY2(plan->ok(), qPrintable(plan->ok() ? QString() : plan->error()));
        QCOMPARE(plan->value().toTag, QStringLiteral("staging"));
        QCOMPARE(plan->value().toDigest, digestA);
        r = await(m_deployer.get(), [&] { m_deployer->rollback(plan->value()); });
        QVERIFY2(r.ok(), qPrintable(r.message));
        QCOMPARE(r.deployment.toDigest, digestA);
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(QStringLiteral("staging")), 10000);
        // And back to A's own tag for what follows.
        r = await(m_deployer.get(), [this] { m_deployer->deploy(m_a); });
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(apiHealthyOn(m_a));
    }

    void unknownTagChangesNothing()
    {
        const ServiceState before = state(QStringLiteral("api"));
        const qsizetype rows = history().size();
        const QString tag = QStringLiteral("sha-") + QString(40, QLatin1Char('0'));
        const DeployResult r = await(m_deployer.get(), [&] { m_deployer->deploy(tag); });
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Refused));
        QVERIFY2(r.message.contains(tag), qPrintable(r.message));
        QVERIFY2(r.message.contains(QLatin1String("nothing was changed")), qPrintable(r.message));
        QCOMPARE(state(QStringLiteral("api")).containerId, before.containerId);
        QCOMPARE(history().size(), rows);
        QVERIFY(!m_deployer->isBusy());
        QVERIFY(m_session->operationLock().isEmpty());
    }

    void stoppedRegistryChangesNothing()
    {
        const auto set = loadEnvironments(m_config);
        QVERIFY(set.ok());
        StackSession other(*set->find(QStringLiteral("e2e-no-registry")));
        other.startWatching();
        QTRY_VERIFY_WITH_TIMEOUT(other.watcher()->isSeeded(), 30000);
        Deployer deployer(&other, m_history.get());
        const ServiceState before = state(QStringLiteral("api"));
        const DeployResult r = await(&deployer, [&] { deployer.deploy(m_b); });
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Refused));
        QVERIFY2(r.message.contains(QLatin1String("refused the connection")),
                 qPrintable(r.message));
        QCOMPARE(state(QStringLiteral("api")).containerId, before.containerId);
    }

    void secondDeploymentIsRefusedAndCancelGoesBack()
    {
        const ServiceState before = state(QStringLiteral("api"));
        QSignalSpy started(m_deployer.get(), &Deployer::started);
        QSignalSpy finished(m_deployer.get(), &Deployer::finished);
        m_deployer->deploy(m_b);
        QVERIFY(started.wait(60000));

        // Another deployer of the same environment (as pilothousectl would be).
        Deployer second(m_session.get(), m_history.get());
        const DeployResult refused = await(&second, [&] { second.deploy(m_b); });
        QCOMPARE(toString(refused.outcome), toString(DeployResult::Outcome::Refused));
        QVERIFY2(refused.message.contains(QLatin1String("another deployment")),
                 qPrintable(refused.message));
        // The same one again, and a stack operation meanwhile.
        QSignalSpy again(m_deployer.get(), &Deployer::finished);
        m_deployer->deploy(m_c);
        QVERIFY(again.wait(5000));
        QCOMPARE(toString(again.first().first().value<DeployResult>().outcome),
                 toString(DeployResult::Outcome::Refused));
        QVERIFY(m_deployer->isBusy());
        QSignalSpy op(m_session.get(), &StackSession::operationFinished);
        m_session->restart();
        QVERIFY(op.wait(5000));
        const auto opResult = op.first().first().value<OperationResult>();
        QVERIFY(!opResult.ok());
        QVERIFY2(opResult.message.contains(QLatin1String("deployment")),
                 qPrintable(opResult.message));

        // Cancel once B runs and is being judged: the service goes back to A.
        QVERIFY(QTest::qWaitFor(
            [this] { return m_deployer->step() == DeployStep::WaitingForHealth; }, 120000));
        finished.clear();
        m_deployer->cancel();
        QVERIFY(finished.wait(120000));
        const auto r = finished.last().first().value<DeployResult>();
        QCOMPARE(toString(r.outcome), toString(DeployResult::Outcome::Cancelled));
        QVERIFY2(r.message.contains(QLatin1String("back on ") + m_a), qPrintable(r.message));
        QVERIFY(apiHealthyOn(m_a));
        QCOMPARE(state(QStringLiteral("api")).imageId, before.imageId);
        QCOMPARE(toString(history().first().outcome), toString(Deployment::Outcome::Cancelled));
        QVERIFY(m_session->operationLock().isEmpty());
    }

    void pilothousectlDeploysAndRollsBack()
    {
        Ctl c = ctl(
            { QStringLiteral("deploy"), QStringLiteral("--tag"), m_b, QStringLiteral("--json") });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QCOMPARE(c.json().value(u"outcome").toString(), QStringLiteral("succeeded"));
        QCOMPARE(c.json().value(u"running_tag").toString(), m_b);
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_b), 10000);

        c = ctl({ QStringLiteral("rollback"), QStringLiteral("--json") });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QCOMPARE(c.json().value(u"to_tag").toString(), m_a);
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_a), 10000);

        // A reverted deploy exits non-zero and says why.
        c = ctl(
            { QStringLiteral("deploy"), QStringLiteral("--tag"), m_c, QStringLiteral("--json") });
        QCOMPARE(c.exitCode, 1);
        QCOMPARE(c.json().value(u"outcome").toString(), QStringLiteral("reverted"));
        QCOMPARE(c.json().value(u"running_tag").toString(), m_a);
        QVERIFY(!c.json().value(u"log_lines").toArray().isEmpty());

        // Refusals: an unknown tag (3), a malformed one (2).
        c = ctl({ QStringLiteral("deploy"), QStringLiteral("--tag"), QStringLiteral("sha-nope") });
        QCOMPARE(c.exitCode, 3);
        QVERIFY2(c.err.contains("sha-nope"), c.err.constData());
        c = ctl({ QStringLiteral("deploy"), QStringLiteral("--tag"), QStringLiteral("-bad tag") });
        QCOMPARE(c.exitCode, 2);

        c = ctl({ QStringLiteral("history"), QStringLiteral("--json") });
        QCOMPARE(c.exitCode, 0);
        const QJsonArray rows = c.json().value(u"deployments").toArray();
        QVERIFY(rows.size() >= 3);
        QCOMPARE(rows.at(0).toObject().value(u"outcome").toString(), QStringLiteral("reverted"));
        QCOMPARE(rows.at(1).toObject().value(u"to_tag").toString(), m_a);
    }

    // pilothousectl starts the stack on the tag deployed last, as the
    // window does (not the compose file's default), and lists tags in the
    // window's order.
    void pilothousectlKeepsTheDeployedTagAndTheTagOrder()
    {
        Ctl c = ctl({ QStringLiteral("deploy"), QStringLiteral("--tag"), m_b });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_b), 10000);
        c = ctl({ QStringLiteral("down") });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QTRY_VERIFY_WITH_TIMEOUT(state(QStringLiteral("api")).containerId.isEmpty() ||
                                     !state(QStringLiteral("api")).isRunning(),
                                 60000);
        // A new session (as after a restart of the panel) knows no pin.
        c = ctl({ QStringLiteral("up"), QStringLiteral("--wait"), QStringLiteral("120") });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_b), 60000);

        c = ctl({ QStringLiteral("tags"), QStringLiteral("--json") });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QStringList fromCli;
        for (const QJsonValue &v : c.json().value(u"tags").toArray())
            fromCli << v.toString();
        std::optional<Expected<QList<ImageTag>>> tags;
        m_deployer->listTags(this, [&tags](Expected<QList<ImageTag>> t) { tags = t; });
        QTRY_VERIFY_WITH_TIMEOUT(tags.has_value(), 15000);
        QVERIFY(tags->ok());
        QStringList fromWindow;
        for (const ImageTag &t : tags->value())
            fromWindow << t.name;
        QCOMPARE(fromCli, fromWindow);
        // Newest build first, by when each first showed up here: C after B
        // after A, whatever was deployed or rolled back to since.
        QVERIFY2(fromCli.indexOf(m_c) < fromCli.indexOf(m_b) &&
                     fromCli.indexOf(m_b) < fromCli.indexOf(m_a),
                 qPrintable(fromCli.join(u' ')));

        // Back to A for what follows.
        c = ctl({ QStringLiteral("deploy"), QStringLiteral("--tag"), m_a });
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_a), 10000);
    }

    void killedPanelLeavesTheHistoryWhole()
    {
        const QList<Deployment> before = history();
        QProcess p;
        p.setProcessChannelMode(QProcess::SeparateChannels);
        p.start(QStringLiteral(PILOTHOUSECTL),
                { QStringLiteral("--config"), m_config, QStringLiteral("--env"), m_env->name,
                  QStringLiteral("deploy"), QStringLiteral("--tag"), m_b });
        QVERIFY(p.waitForStarted(10000));
        QByteArray err;
        QVERIFY(QTest::qWaitFor(
            [&] {
                err += p.readAllStandardError();
                return err.contains("Waiting for api") || p.state() == QProcess::NotRunning;
            },
            120000));
        QVERIFY2(p.state() == QProcess::Running, err.constData());
        ::kill(pid_t(p.processId()), SIGKILL);
        QVERIFY(p.waitForFinished(10000));

        {
            // The file itself: whole, every earlier row there, the killed one still running.
            QSqlDatabase db =
                QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("check"));
            db.setDatabaseName(DeploymentHistory::defaultPath());
            QVERIFY(db.open());
            QSqlQuery q(db);
            QVERIFY(q.exec(QStringLiteral("PRAGMA integrity_check")) && q.next());
            QCOMPARE(q.value(0).toString(), QStringLiteral("ok"));
            QVERIFY(q.exec(QStringLiteral("SELECT COUNT(*) FROM deployments WHERE environment = "
                                          "'e2e'")) &&
                    q.next());
            QCOMPARE(q.value(0).toLongLong(), qint64(before.size() + 1));
            q.finish();
            db.close();
        }
        QSqlDatabase::removeDatabase(QStringLiteral("check"));
        const QList<Deployment> after = history();
        QCOMPARE(after.size(), before.size() + 1);
        QCOMPARE(toString(after.first().outcome), toString(Deployment::Outcome::Running));
        for (qsizetype i = 0; i < before.size(); ++i) {
            QCOMPARE(after.at(i + 1).id, before.at(i).id);
            QCOMPARE(toString(after.at(i + 1).outcome), toString(before.at(i).outcome));
        }
        // The next writer marks it interrupted.
        DeploymentHistory next;
        const auto marked = next.open(DeploymentHistory::defaultPath());
        QVERIFY2(marked.ok(), qPrintable(marked.ok() ? QString() : marked.error()));
        QCOMPARE(*marked, 1);
        QCOMPARE(toString(history().first().outcome), toString(Deployment::Outcome::Interrupted));

        // The killed owner's lock is stale at once: the service can be brought back.
        QTRY_VERIFY_WITH_TIMEOUT(m_session->stateOf(QStringLiteral("api")).has_value() &&
                                     state(QStringLiteral("api")).isRunning(),
                                 60000);
        if (state(QStringLiteral("api")).tag != m_a) {
            const DeployResult r = await(m_deployer.get(), [this] { m_deployer->rollback(m_a); });
            QVERIFY2(r.ok(), qPrintable(r.message));
        }
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_a), 60000);
    }

    void cleanupTestCase()
    {
        if (!m_session)
            return;
        m_deployer.reset();
        QSignalSpy down(m_session.get(), &StackSession::operationFinished);
        m_session->down();
        down.wait(180000);
        m_session->stopWatching();
    }
};

QTEST_GUILESS_MAIN(TestDeploy)
#include "tst_deploy.moc"
