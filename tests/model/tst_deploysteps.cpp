// The deployment's decisions (model/deploy/deploysteps.h), without an engine:
// every refusal, gate verdict, cancel point, conclusion and rollback choice.
#include "deploy/deployer.h"
#include "deploy/deploysteps.h"

#include <QtTest>

using namespace pilothouse;

namespace {

ServiceState running(const QString &service, const QString &tag, const QString &container,
                     const QString &imageId = QStringLiteral("sha256:aaaa"))
{
    ServiceState s;
    s.service = service;
    s.containerId = container;
    s.tag = tag;
    s.image = QStringLiteral("ghcr.io/o/deckhand:") + tag;
    s.imageId = imageId;
    s.digest = QStringLiteral("sha256:d-") + tag;
    s.state = RunState::Running;
    s.health = EngineHealth::Healthy;
    return s;
}

PreflightInput goodInput()
{
    PreflightInput in;
    in.environment = QStringLiteral("staging");
    in.kind = EnvironmentKind::Compose;
    in.repository = QStringLiteral("ghcr.io/o/deckhand");
    in.services = { QStringLiteral("api"), QStringLiteral("worker") };
    in.tag = QStringLiteral("sha-b");
    in.engineKnown = true;
    in.states = { running(QStringLiteral("api"), QStringLiteral("sha-a"), QStringLiteral("c-api")),
                  running(QStringLiteral("worker"), QStringLiteral("sha-a"),
                          QStringLiteral("c-worker")) };
    return in;
}

Deployment row(qint64 id, const QString &service, const QString &from, const QString &to,
               DeploymentOutcome outcome, int toSchema = -1, const QDateTime &at = {})
{
    Deployment d;
    d.id = id;
    d.environment = QStringLiteral("staging");
    d.service = service;
    d.fromTag = from;
    d.fromDigest = QStringLiteral("sha256:d-") + from;
    d.toTag = to;
    d.toDigest = QStringLiteral("sha256:d-") + to;
    d.outcome = outcome;
    d.toSchema = toSchema;
    d.startedAt = at;
    return d;
}

} // namespace

class TestDeploySteps final : public QObject
{
    Q_OBJECT

private:
    GateTarget deployTarget() const
    {
        GateTarget t;
        t.services = { QStringLiteral("api"), QStringLiteral("worker") };
        t.tag = QStringLiteral("sha-b");
        t.imageId = QStringLiteral("sha256:bbbb");
        t.replacedContainers = { { QStringLiteral("api"), QStringLiteral("c-api") },
                                 { QStringLiteral("worker"), QStringLiteral("c-worker") } };
        t.changedAt = m_changedAt;
        return t;
    }
    QList<std::optional<ServiceState>> newStates() const
    {
        return { running(QStringLiteral("api"), QStringLiteral("sha-b"), QStringLiteral("n-api"),
                         QStringLiteral("sha256:bbbb")),
                 running(QStringLiteral("worker"), QStringLiteral("sha-b"),
                         QStringLiteral("n-worker"), QStringLiteral("sha256:bbbb")) };
    }
    EndpointSeen endpoint(EndpointStatus status, const QDateTime &checked) const
    {
        return { QStringLiteral("api"), QStringLiteral("http://127.0.0.1:8000/readyz"), status,
                 status == EndpointStatus::Fail ? QStringLiteral("HTTP 503") : QString(), checked };
    }
    QDateTime m_changedAt = QDateTime::currentDateTimeUtc();

private slots:
    void preflightPlans()
    {
        const auto plan = preflight(goodInput());
        QVERIFY2(plan.ok(), qPrintable(plan ? QString() : plan.error()));
        QCOMPARE(plan->fromTag, QStringLiteral("sha-a"));
        QCOMPARE(plan->fromDigest, QStringLiteral("sha256:d-sha-a"));
        QCOMPARE(plan->previousImageId, QStringLiteral("sha256:aaaa"));
        QCOMPARE(plan->previousContainers.value(QStringLiteral("worker")),
                 QStringLiteral("c-worker"));
    }

    void preflightRefuses_data()
    {
        QTest::addColumn<int>("which");
        QTest::addColumn<QString>("sentence");
        QTest::newRow("busy") << 0
                              << "a deployment of api and worker to sha-x is already running in "
                                 "\"staging\"; wait for it or cancel it";
        QTest::newRow("native") << 1
                                << "\"staging\" runs its processes natively; deployments need a "
                                   "compose environment with an image";
        QTest::newRow("no image") << 2
                                  << "\"staging\" has no image to deploy: add image.repository "
                                     "and image.services to the environment";
        QTest::newRow("bad tag") << 3 << "\"bad tag\" is not a valid image tag";
        QTest::newRow("stack busy")
            << 4 << "a stack operation is running in \"staging\"; wait for it to finish";
        QTest::newRow("engine unknown")
            << 5 << "the engine's state of \"staging\" is not known yet (daemon down); try again";
        QTest::newRow("worker missing")
            << 6 << "worker has no container in \"staging\"; start the stack, then deploy";
        QTest::newRow("untagged primary")
            << 7 << "api runs ghcr.io/o/deckhand, which has no tag to come back to";
    }

    void preflightRefuses()
    {
        QFETCH(int, which);
        QFETCH(QString, sentence);
        PreflightInput in = goodInput();
        switch (which) {
        case 0:
            in.deployerBusy = true;
            in.busyWith = QStringLiteral("sha-x");
            break;
        case 1:
            in.kind = EnvironmentKind::Native;
            break;
        case 2:
            in.services.clear();
            break;
        case 3:
            in.tag = QStringLiteral("bad tag");
            break;
        case 4:
            in.sessionBusy = true;
            break;
        case 5:
            in.engineKnown = false;
            in.engineError = QStringLiteral("daemon down");
            break;
        case 6:
            in.states[1] = std::nullopt;
            break;
        case 7:
            in.states[0]->tag.clear();
            in.states[0]->image = QStringLiteral("ghcr.io/o/deckhand");
            break;
        }
        const auto plan = preflight(in);
        QVERIFY(!plan.ok());
        QVERIFY2(plan.error().contains(sentence), qPrintable(plan.error()));
    }

    // A service of another image cannot move with this one.
    void preflightRefusesAForeignImage()
    {
        PreflightInput in = goodInput();
        in.states[1]->image = QStringLiteral("redis:7");
        const auto plan = preflight(in);
        QVERIFY(!plan.ok());
        QCOMPARE(plan.error(),
                 QStringLiteral("worker runs redis:7, not an image of ghcr.io/o/deckhand as api "
                                "does; take it out of image.services of \"staging\""));
        // Another registry for the same services (a mirror) is not another image.
        in = goodInput();
        in.repository = QStringLiteral("mirror.local:5000/o/deckhand");
        QVERIFY(preflight(in).ok());
    }

    // "Nothing to do" only when every service already runs the tag at that digest.
    void nothingToDoOnlyWhenAllRunIt()
    {
        PreflightInput in = goodInput();
        auto plan = preflight(in);
        QVERIFY(plan.ok());
        QVERIFY(alreadyRunning(*plan, QStringLiteral("sha-a"), QStringLiteral("sha256:d-sha-a")));
        QVERIFY(!alreadyRunning(*plan, QStringLiteral("sha-a"), QStringLiteral("sha256:other")));
        QVERIFY(!alreadyRunning(*plan, QStringLiteral("sha-b"), QStringLiteral("sha256:d-sha-a")));
        // The worker left behind on another build: deploying sha-a moves it.
        in.states[1]->tag = QStringLiteral("sha-0");
        plan = preflight(in);
        QVERIFY(plan.ok());
        QVERIFY(!alreadyRunning(*plan, QStringLiteral("sha-a"), QStringLiteral("sha256:d-sha-a")));
    }

    void lockRefusals()
    {
        QCOMPARE(
            lockRefusal(QStringLiteral("staging"), QStringLiteral("pilothousectl (pid 7)"), {}),
            QStringLiteral("another deployment to \"staging\" is running in pilothousectl "
                           "(pid 7); wait for it to finish"));
        QCOMPARE(lockRefusal(QStringLiteral("staging"), {}, QStringLiteral("cannot write x")),
                 QStringLiteral("cannot write x; nothing was changed"));
    }

    void gateVerdicts_data()
    {
        QTest::addColumn<int>("which");
        QTest::addColumn<int>("verdict");
        QTest::addColumn<QString>("why");
        const int W = int(GateVerdict::Waiting), P = int(GateVerdict::Passed),
                  F = int(GateVerdict::Failed);
        QTest::newRow("all healthy, answered since") << 0 << P << "";
        QTest::newRow("old container still listed")
            << 1 << W << "worker has no container of the new image yet";
        QTest::newRow("another image started")
            << 2 << F << "the engine started api with image sha256:cccc, not the pinned";
        QTest::newRow("exited") << 3 << F << "worker exited (exit code 3)";
        QTest::newRow("restarting")
            << 4 << F << "api is restarting (exit code 1): it keeps crashing";
        QTest::newRow("restarted once") << 5 << F << "api restarted 1 time(s)";
        QTest::newRow("engine unhealthy")
            << 6 << F << "the engine's healthcheck says api is unhealthy: probe failed";
        QTest::newRow("engine check starting")
            << 7 << W << "the engine's healthcheck of worker is still starting";
        QTest::newRow("HTTP fail") << 8 << W << "http://127.0.0.1:8000/readyz: fail (HTTP 503)";
        QTest::newRow("old answer ignored")
            << 9 << W << "http://127.0.0.1:8000/readyz not checked yet";
        QTest::newRow("warn passes") << 10 << P << "";
    }

    void gateVerdicts()
    {
        QFETCH(int, which);
        QFETCH(int, verdict);
        QFETCH(QString, why);
        auto states = newStates();
        QDateTime checked = m_changedAt.addMSecs(100);
        EndpointStatus status = EndpointStatus::Pass;
        switch (which) {
        case 1:
            states[1]->containerId = QStringLiteral("c-worker");
            break;
        case 2:
            states[0]->imageId = QStringLiteral("sha256:cccc");
            break;
        case 3:
            states[1]->state = RunState::Exited;
            states[1]->exitCode = 3;
            break;
        case 4:
            states[0]->state = RunState::Restarting;
            states[0]->exitCode = 1;
            break;
        case 5:
            states[0]->restartCount = 1;
            break;
        case 6:
            states[0]->health = EngineHealth::Unhealthy;
            states[0]->detail = QStringLiteral("probe failed");
            break;
        case 7:
            states[1]->health = EngineHealth::Starting;
            break;
        case 8:
            status = EndpointStatus::Fail;
            break;
        case 9:
            checked = m_changedAt.addMSecs(-1); // the old container's answer
            break;
        case 10:
            status = EndpointStatus::Warn;
            break;
        }
        const GateJudgement j = judgeGate(deployTarget(), states, { endpoint(status, checked) });
        QCOMPARE(int(j.verdict), verdict);
        QVERIFY2(j.why.contains(why), qPrintable(j.why));
    }

    // start-first: two new api containers, each judged on its own direct
    // answers; one that has none yet, or fails, holds the gate.
    void gatePerContainer()
    {
        GateTarget t = deployTarget();
        t.services = { QStringLiteral("api"), QStringLiteral("api"), QStringLiteral("worker") };
        auto states = newStates();
        auto second = *states[0];
        second.containerId = QStringLiteral("n-api-2");
        states.insert(1, second);
        const QDateTime fresh = m_changedAt.addMSecs(100);
        const auto direct = [&](const QString &container, EndpointStatus status) {
            EndpointSeen e = endpoint(status, fresh);
            e.url = QStringLiteral("http://172.18.0.9:8000/readyz (%1)").arg(container);
            e.containerId = container;
            return e;
        };
        // Only the first has answered: the second is waited for.
        GateJudgement j =
            judgeGate(t, states, { direct(QStringLiteral("n-api"), EndpointStatus::Pass) });
        QCOMPARE(int(j.verdict), int(GateVerdict::Passed)); // no endpoint seen for n-api-2 at all
        EndpointSeen pending = direct(QStringLiteral("n-api-2"), EndpointStatus::Unknown);
        pending.lastChecked = {};
        j = judgeGate(t, states,
                      { direct(QStringLiteral("n-api"), EndpointStatus::Pass), pending });
        QCOMPARE(int(j.verdict), int(GateVerdict::Waiting));
        QVERIFY2(j.why.contains(QLatin1String("(n-api-2) not checked yet")), qPrintable(j.why));
        // The second fails its own check: still waiting (not a failure until the timeout).
        j = judgeGate(t, states,
                      { direct(QStringLiteral("n-api"), EndpointStatus::Pass),
                        direct(QStringLiteral("n-api-2"), EndpointStatus::Fail) });
        QCOMPARE(int(j.verdict), int(GateVerdict::Waiting));
        QVERIFY2(j.why.contains(QLatin1String("n-api-2")) &&
                     !j.why.contains(QLatin1String("(n-api)")),
                 qPrintable(j.why));
        // Both pass: through.
        j = judgeGate(t, states,
                      { direct(QStringLiteral("n-api"), EndpointStatus::Pass),
                        direct(QStringLiteral("n-api-2"), EndpointStatus::Pass) });
        QCOMPARE(int(j.verdict), int(GateVerdict::Passed));
        // One of the two crashing fails the gate.
        states[1]->state = RunState::Exited;
        states[1]->exitCode = 2;
        j = judgeGate(t, states,
                      { direct(QStringLiteral("n-api"), EndpointStatus::Pass),
                        direct(QStringLiteral("n-api-2"), EndpointStatus::Pass) });
        QCOMPARE(int(j.verdict), int(GateVerdict::Failed));
        QCOMPARE(toString(DeployStep::Draining), QStringLiteral("draining"));
    }

    // The revert waits for the previous image, in a container that is not
    // the failed new one.
    void revertGate()
    {
        GateTarget t;
        t.services = { QStringLiteral("api") };
        t.tag = QStringLiteral("sha-a");
        t.imageId = QStringLiteral("sha256:aaaa");
        t.reverting = true;
        t.replacedContainers = { { QStringLiteral("api"), QStringLiteral("n-api") } };
        t.changedAt = m_changedAt;
        auto s = running(QStringLiteral("api"), QStringLiteral("sha-a"), QStringLiteral("n-api"));
        QCOMPARE(int(judgeGate(t, { s }, {}).verdict), int(GateVerdict::Waiting));
        s.containerId = QStringLiteral("r-api");
        s.imageId = QStringLiteral("sha256:other");
        QCOMPARE(int(judgeGate(t, { s }, {}).verdict), int(GateVerdict::Waiting));
        s.imageId = QStringLiteral("sha256:aaaa");
        QCOMPARE(int(judgeGate(t, { s }, {}).verdict), int(GateVerdict::Passed));
    }

    void gateOverTime()
    {
        const GateJudgement healthy { GateVerdict::Passed, {} };
        const GateJudgement waiting { GateVerdict::Waiting, QStringLiteral("api is starting") };
        const GateJudgement failed { GateVerdict::Failed, QStringLiteral("api exited") };
        QCOMPARE(int(advanceGate(waiting, 1000, -1, 10000, 120000).action),
                 int(GateAction::KeepWaiting));
        QCOMPARE(int(advanceGate(healthy, 1000, -1, 10000, 120000).action),
                 int(GateAction::StartWindow));
        // The window is held: healthy for 5 of 10 s is not yet a pass.
        QCOMPARE(int(advanceGate(healthy, 6000, 5000, 10000, 120000).action),
                 int(GateAction::Hold));
        QCOMPARE(int(advanceGate(healthy, 11000, 10000, 10000, 120000).action),
                 int(GateAction::Pass));
        const GateDecision broke = advanceGate(waiting, 6000, 5000, 10000, 120000);
        QCOMPARE(int(broke.action), int(GateAction::Fail));
        QCOMPARE(broke.why,
                 QStringLiteral("health failed during the 10 s window: api is starting"));
        const GateDecision late = advanceGate(waiting, 120001, -1, 10000, 120000);
        QCOMPARE(int(late.action), int(GateAction::Fail));
        QCOMPARE(late.why, QStringLiteral("not healthy within 120 s: api is starting"));
        QCOMPARE(advanceGate(failed, 10, -1, 10000, 120000).why, QStringLiteral("api exited"));
        // A zero window passes on the next look.
        QCOMPARE(int(advanceGate(healthy, 10, 0, 0, 120000).action), int(GateAction::Pass));
    }

    void cancelPoints_data()
    {
        QTest::addColumn<int>("phase");
        QTest::addColumn<bool>("again");
        QTest::addColumn<int>("action");
        QTest::newRow("planning") << int(RunPhase::Planning) << false
                                  << int(CancelAction::ConcludeNow);
        QTest::newRow("registry") << int(RunPhase::Resolving) << false
                                  << int(CancelAction::ConcludeNow);
        QTest::newRow("history begin")
            << int(RunPhase::Recording) << false << int(CancelAction::NoteOnly);
        QTest::newRow("pull or recreate")
            << int(RunPhase::Command) << false << int(CancelAction::StopCommand);
        QTest::newRow("tagging") << int(RunPhase::ShortCommand) << false
                                 << int(CancelAction::NoteOnly);
        QTest::newRow("gate") << int(RunPhase::Gating) << false << int(CancelAction::RevertNow);
        QTest::newRow("revert") << int(RunPhase::Reverting) << false
                                << int(CancelAction::FinishRevert);
        QTest::newRow("revert, again")
            << int(RunPhase::Reverting) << true << int(CancelAction::FinishRevert);
        QTest::newRow("gate, again") << int(RunPhase::Gating) << true << int(CancelAction::Ignore);
    }

    void cancelPoints()
    {
        QFETCH(int, phase);
        QFETCH(bool, again);
        QFETCH(int, action);
        QCOMPARE(int(cancelAction(RunPhase(phase), again)), action);
    }

    void conclusions()
    {
        const Deployment d = row(1, QStringLiteral("api,worker"), QStringLiteral("sha-a"),
                                 QStringLiteral("sha-c"), DeploymentOutcome::Running);
        const Conclusion reverted =
            afterRevert(true, false, QStringLiteral("worker exited (exit code 3)"), {}, d);
        QCOMPARE(int(reverted.outcome), int(DeploymentOutcome::Reverted));
        QCOMPARE(reverted.message,
                 QStringLiteral("sha-c failed its health gate: worker exited (exit code 3). "
                                "Reverted: api and worker are back on sha-a and healthy"));
        const Conclusion cancelled =
            afterRevert(true, true, QStringLiteral("cancelled by the user"), {}, d);
        QCOMPARE(int(cancelled.outcome), int(DeploymentOutcome::Cancelled));
        QCOMPARE(cancelled.message,
                 QStringLiteral("cancelled; api and worker are back on sha-a and healthy"));
        const Conclusion failed = afterRevert(false, false, QStringLiteral("api exited"),
                                              QStringLiteral("the engine went away"), d);
        QCOMPARE(int(failed.outcome), int(DeploymentOutcome::Failed));
        QVERIFY2(failed.message.contains(QLatin1String("going back to sha-a failed too: the engine "
                                                       "went away")) &&
                     failed.message.contains(QLatin1String("pilothousectl status --env staging")),
                 qPrintable(failed.message));
        // What a later start keeps.
        QCOMPARE(pinAfter(DeploymentOutcome::Succeeded, true, d), QStringLiteral("sha-c"));
        QCOMPARE(pinAfter(DeploymentOutcome::Reverted, true, d), QStringLiteral("sha-a"));
        QCOMPARE(pinAfter(DeploymentOutcome::Cancelled, true, d), QStringLiteral("sha-a"));
        QCOMPARE(pinAfter(DeploymentOutcome::Cancelled, false, d), QString());
        QCOMPARE(pinAfter(DeploymentOutcome::Failed, true, d), QString());
        QCOMPARE(pinAfter(DeploymentOutcome::Refused, false, d), QString());
    }

    void rollbackPlans()
    {
        const QStringList services { QStringLiteral("api"), QStringLiteral("worker") };
        // Newest first; the oldest row is of the older one-service form.
        const QList<Deployment> rows {
            row(4, QStringLiteral("api,worker"), QStringLiteral("sha-b"), QStringLiteral("sha-c"),
                DeploymentOutcome::Reverted, 3),
            row(3, QStringLiteral("api,worker"), QStringLiteral("sha-a"), QStringLiteral("sha-b"),
                DeploymentOutcome::Succeeded, 2),
            row(2, QStringLiteral("jobs"), QStringLiteral("x-1"), QStringLiteral("x-2"),
                DeploymentOutcome::Succeeded, 9),
            row(1, QStringLiteral("api"), QStringLiteral("sha-0"), QStringLiteral("sha-a"),
                DeploymentOutcome::Succeeded, 1),
        };
        const ServiceState now =
            running(QStringLiteral("api"), QStringLiteral("sha-b"), QStringLiteral("c"));
        // The previous success: sha-a, with its recorded digest.
        auto plan = planRollback(rows, services, now, {}, 2);
        QVERIFY2(plan.ok(), qPrintable(plan ? QString() : plan.error()));
        QCOMPARE(plan->toTag, QStringLiteral("sha-a"));
        QCOMPARE(plan->toDigest, QStringLiteral("sha256:d-sha-a"));
        QCOMPARE(plan->service, QStringLiteral("api,worker"));
        QCOMPARE(plan->targetSchema, 1);
        QVERIFY2(plan->schemaWarning.contains(QLatin1String("schema version 2, newer than sha-a")),
                 qPrintable(plan->schemaWarning));
        // A tag asked for: its digest as recorded, no warning when the schema matches.
        plan = planRollback(rows, services, now, QStringLiteral("sha-b"), 2);
        QVERIFY(plan.ok());
        QCOMPARE(plan->toDigest, QStringLiteral("sha256:d-sha-b"));
        QVERIFY(plan->schemaWarning.isEmpty());
        // Unknown here: resolved from the registry later, schema unknown.
        plan = planRollback(rows, services, now, QStringLiteral("sha-z"), 2);
        QVERIFY(plan.ok());
        QVERIFY(plan->toDigest.isEmpty());
        QCOMPARE(plan->targetSchema, -1);
        // Another service's rows do not count.
        QCOMPARE(rowsFor(rows, services).size(), 3);
        const ServiceState first =
            running(QStringLiteral("api"), QStringLiteral("sha-0"), QStringLiteral("c"));
        const auto none = planRollback({}, services, first, {}, -1);
        QVERIFY(!none.ok());
        QCOMPARE(none.error(),
                 QStringLiteral("no earlier successful deployment of api and worker to roll back "
                                "to; choose a tag (pilothousectl rollback --to TAG)"));
        QVERIFY(!planRollback(rows, services, now, QStringLiteral("no way"), 2).ok());
    }

    // One order for the window and pilothousectl: newest known build first,
    // then the rest by name (not the registry's lexical order).
    void tagOrder()
    {
        const QDateTime t0 = QDateTime::fromSecsSinceEpoch(1700000000, Qt::UTC);
        const QList<Deployment> rows {
            // A rollback to sha-a does not make that old build new.
            row(4, QStringLiteral("api"), QStringLiteral("sha-0"), QStringLiteral("sha-a"),
                DeploymentOutcome::Succeeded, -1, t0.addSecs(400)),
            row(3, QStringLiteral("api"), QStringLiteral("sha-b"), QStringLiteral("sha-0"),
                DeploymentOutcome::Succeeded, -1, t0.addSecs(300)),
            row(2, QStringLiteral("api"), QStringLiteral("sha-a"), QStringLiteral("sha-b"),
                DeploymentOutcome::Succeeded, -1, t0.addSecs(200)),
        };
        const QHash<QString, QDateTime> times = tagTimes(rows);
        QCOMPARE(times.value(QStringLiteral("sha-0")), t0.addSecs(300));
        QCOMPARE(times.value(QStringLiteral("sha-b")), t0.addSecs(200));
        QCOMPARE(times.value(QStringLiteral("sha-a")), t0.addSecs(200).addMSecs(-1));
        QStringList order;
        for (const ImageTag &t :
             orderTags({ QStringLiteral("sha-0"), QStringLiteral("sha-a"), QStringLiteral("sha-b"),
                         QStringLiteral("staging"), QStringLiteral("release-candidate") },
                       times))
            order << t.name;
        QCOMPARE(order,
                 (QStringList { QStringLiteral("sha-0"), QStringLiteral("sha-b"),
                                QStringLiteral("sha-a"), QStringLiteral("release-candidate"),
                                QStringLiteral("staging") }));
        // The engine's images give the time of builds never deployed here.
        const auto local = imageTimes(
            "{\"Repository\":\"r\",\"Tag\":\"sha-new\",\"CreatedAt\":\"2026-12-02 17:00:00 "
            "+0100 CET\"}\n{\"Tag\":\"<none>\",\"CreatedAt\":\"2026-12-02 17:00:00 +0000 UTC\"}\n"
            "not json\n");
        QCOMPARE(local.size(), 1);
        QCOMPARE(local.value(QStringLiteral("sha-new")),
                 QDateTime(QDate(2026, 12, 2), QTime(16, 0), Qt::UTC));
    }
};

QTEST_GUILESS_MAIN(TestDeploySteps)
#include "tst_deploysteps.moc"
