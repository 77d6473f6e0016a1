// The deployment's steps that change things (pull, tag, roll, gate, logs,
// revert, record), each with its cancel check and its hand-over to the next
// step, so the state machine's edges read top to bottom. Over 500 lines for
// that reason alone: every decision is a pure function in deploysteps.cpp,
// and the read-only questions (registry, schema, plans) are in
// deployerlookups.cpp.
#include "deploy/deployer.h"

#include "core/ownerlock.h"
#include "core/session.h"
#include "deploy/historystore.h"
#include "drivers/docker.h"
#include "engine/sshconnection.h"
#include "registry/registryclient.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>
#include <QNetworkReply>
#include <QScopedValueRollback>
#include <QStandardPaths>
#include <algorithm>
#include <utility>

Q_LOGGING_CATEGORY(lcDeploy, "pilothouse.deploy")

namespace pilothouse {

// One deployment in progress.
struct Deployer::Run
{
    quint64 generation = 0;
    Deployment record; // record.service: the services, "api,worker"
    QStringList services;
    QString previousImageId; // the primary's image before: a revert brings back exactly this
    QMap<QString, QString> previousContainers; // service -> container before the change
    QMap<QString, QString> newContainers; // service -> the new container, once the gate failed
    QStringList newIds; // every new container, once the gate failed
    // service -> every container it had before the change (start-first
    // keeps them through the gate and removes exactly these after it).
    QHash<QString, QStringList> oldContainers;
    bool finishing = false; // start-first: the gate passed, the old ones drain
    QString oldRole, newRole; // what the window shows for each side (start-first)
    PreflightPlan plan; // what ran before, per service
    QString targetImageId; // the image id of the pinned digest, once known
    QString schemaWarning;
    QDateTime changedAt; // health answers must be newer than the last change
    QElapsedTimer gateClock;
    QElapsedTimer windowClock; // running while the services are healthy
    bool gating = false;
    bool reverting = false;
    bool rolling = false; // the rollout strategy is changing the services
    bool changed = false; // the services were touched: cancelling means reverting
    bool cancelRequested = false;
    bool cancelled = false; // the revert running is the user's cancel
    bool beginPending = false; // the history has not answered begin() yet
    QString failure; // why the gate failed, kept for the record
    QStringList logLines;
    QElapsedTimer clock; // since the call
};

namespace {

constexpr int kPullTimeoutMs = 900000;
constexpr int kGateTickMs = 250;
constexpr int kLogLines = 30;

QString seconds(int ms)
{
    return QString::number(ms / 1000.0, 'g', 3) + QStringLiteral(" s");
}

QStringList lastLines(const QString &text, int n)
{
    QStringList lines = text.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    if (lines.size() > n)
        lines = lines.mid(lines.size() - n);
    return lines;
}

// "api" or "api and worker", for messages.
QString named(const QStringList &services)
{
    if (services.size() <= 1)
        return services.value(0);
    return QStringList(services.mid(0, services.size() - 1)).join(QStringLiteral(", ")) +
        QStringLiteral(" and ") + services.last();
}

} // namespace

Deployer::Deployer(StackSession *session, HistoryStore *history, QObject *parent)
    : QObject(parent)
    , m_session(session)
    , m_history(history)
{
    qRegisterMetaType<pilothouse::DeployResult>();
    qRegisterMetaType<pilothouse::Deployment>();
    qRegisterMetaType<pilothouse::DeployStep>();
    if (session) {
        m_windowMs = session->environment().healthWindowMs;
        m_timeoutMs = session->environment().deployTimeoutMs;
        m_strategy = makeRolloutStrategy(session, this);
        connect(session, &StackSession::servicesChanged, this, &Deployer::evaluateGate);
    }
    m_gateTimer.setInterval(kGateTickMs);
    connect(&m_gateTimer, &QTimer::timeout, this, &Deployer::evaluateGate);
}

Deployer::~Deployer()
{
    if (m_session)
        m_session->setOperationLock({});
}

template<typename F> auto Deployer::guarded(F f)
{
    const quint64 gen = m_generation;
    return [this, gen, f = std::move(f)](auto &&...args) {
        if (!m_run || m_run->generation != gen)
            return; // an answer for a run that is over
        f(std::forward<decltype(args)>(args)...);
    };
}

void Deployer::resetRegistry()
{
    m_registryCredentialsStale = true;
}

void Deployer::setStep(DeployStep step, const QString &message)
{
    m_step = step;
    qCInfo(lcDeploy, "%s: %s", qPrintable(toString(step)), qPrintable(message));
    emit stepChanged(step, message);
}

CommandSpec Deployer::docker(const QStringList &args, int timeoutMs, const QString &what) const
{
    return dockerCommand(m_session->environment(), args, timeoutMs, what);
}

void Deployer::runCommand(const CommandSpec &spec, std::function<void(const CommandResult &)> done,
                          bool cancellable)
{
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    m_commandCancellable = cancellable;
    connect(cmd, &Command::finished, this, [this, cmd, done](const CommandResult &r) {
        cmd->deleteLater();
        if (m_command == cmd)
            m_command = nullptr;
        done(r);
    });
    // Over SSH, once the connection is up (or has failed, which the command
    // then reports).
    startWhenReachable(cmd);
}

void Deployer::startWhenReachable(Command *cmd)
{
    if (!m_session) {
        cmd->start();
        return;
    }
    QPointer<Command> guard(cmd);
    m_session->whenReachable([guard] {
        if (guard)
            guard->start();
    });
}

void Deployer::refuse(const QString &message)
{
    qCInfo(lcDeploy, "refused: %s", qPrintable(message));
    DeployResult r;
    r.outcome = DeployResult::Outcome::Refused;
    r.message = message;
    QMetaObject::invokeMethod(
        this, [this, r] { emit finished(r); }, Qt::QueuedConnection);
}

void Deployer::deploy(const QString &tag)
{
    start(tag, {});
}

void Deployer::rollback(const QString &toTag)
{
    if (isBusy()) {
        start(toTag, {}); // refused with the reason
        return;
    }
    m_planning = true;
    m_cancelWhilePlanning = false;
    planRollback(toTag, this, [this](Expected<RollbackPlan> plan) {
        m_planning = false;
        if (m_cancelWhilePlanning) {
            m_cancelWhilePlanning = false;
            DeployResult r;
            r.outcome = DeployResult::Outcome::Cancelled;
            r.message = QStringLiteral("cancelled; nothing was changed");
            emit finished(r);
            return;
        }
        if (!plan) {
            refuse(plan.error());
            return;
        }
        rollback(*plan);
    });
}

void Deployer::rollback(const RollbackPlan &plan)
{
    start(plan.toTag, plan.toDigest, plan.schemaWarning);
}

void Deployer::start(const QString &tag, const QString &knownDigest, const QString &schemaWarning)
{
    if (!m_session) {
        refuse(QStringLiteral("no environment"));
        return;
    }
    const Environment &env = m_session->environment();
    PreflightInput in;
    in.environment = env.name;
    in.kind = env.kind;
    in.repository = env.imageRepository;
    in.services = env.imageServices;
    in.tag = tag;
    in.deployerBusy = isBusy();
    in.busyWith = m_run ? m_run->record.toTag : QString();
    in.sessionBusy = m_session->isBusy();
    EngineWatcher *watcher = m_session->watcher();
    in.engineKnown = watcher && watcher->isSeeded();
    in.engineError = watcher ? watcher->engineError() : QString();
    in.states = states(env.imageServices);
    in.byImageId = env.tagsFromEngine();
    const Expected<PreflightPlan> plan = preflight(in);
    if (!plan) {
        refuse(plan.error());
        return;
    }
    // One deployment per environment, across processes (the window and pilothousectl).
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    LockHolder holder;
    QString problem;
    auto lock = takeLock(dir + QStringLiteral("/deploy-%1.lock").arg(env.name), &holder, &problem);
    if (!lock) {
        refuse(lockRefusal(env.name, holder.describe(), problem));
        return;
    }
    m_lock = std::move(lock);

    m_run = std::make_unique<Run>();
    m_run->generation = ++m_generation;
    m_run->clock.start();
    m_run->schemaWarning = schemaWarning;
    m_run->services = env.imageServices;
    m_run->previousImageId = plan->previousImageId;
    m_run->previousContainers = plan->previousContainers;
    for (const QString &svc : env.imageServices) {
        QStringList ids;
        for (const ServiceState &s : m_session->statesOf(svc)) {
            if (!s.containerId.isEmpty())
                ids << s.containerId;
        }
        m_run->oldContainers.insert(svc, ids);
    }
    m_run->plan = *plan;
    Deployment &d = m_run->record;
    d.strategy = m_strategy ? m_strategy->name() : QString();
    d.environment = env.name;
    d.service = env.imageServices.join(u',');
    d.fromTag = plan->fromTag;
    d.fromDigest = plan->fromDigest;
    d.toTag = tag;
    d.who = DeploymentHistory::currentUser();
    d.startedAt = QDateTime::currentDateTimeUtc();
    const QString svc = named(m_run->services);
    m_session->setOperationLock(
        QStringLiteral("a deployment of %1 is running in \"%2\"; wait for it or cancel it")
            .arg(svc, env.name));

    if (!knownDigest.isEmpty()) {
        // A rollback to a digest recorded here: immutable, no registry needed.
        setStep(
            DeployStep::Preparing,
            QStringLiteral("Rolling back %1 to %2 (%3)").arg(svc, tag, shortDigest(knownDigest)));
        QMetaObject::invokeMethod(this, guarded([this, knownDigest] { resolved(knownDigest); }),
                                  Qt::QueuedConnection);
        return;
    }
    if (env.tagsFromEngine()) {
        // A local build: the engine's image of that tag, pinned by its id.
        const QString ref = env.imageRepository + QLatin1Char(':') + tag;
        setStep(DeployStep::Preparing, QStringLiteral("Looking up %1 on the engine").arg(ref));
        runCommand(docker({ QStringLiteral("image"), QStringLiteral("inspect"),
                            QStringLiteral("--format"), QStringLiteral("{{.Id}}"), ref },
                          60000, QStringLiteral("docker image inspect")),
                   guarded([this, ref](const CommandResult &r) {
                       if (m_run->cancelRequested) {
                           conclude(DeployResult::Outcome::Cancelled,
                                    QStringLiteral("cancelled; nothing was changed"));
                           return;
                       }
                       const QString id = r.output.trimmed();
                       if (!r.ok() || !id.startsWith(QLatin1String("sha256:"))) {
                           conclude(
                               DeployResult::Outcome::Refused,
                               QStringLiteral("%1 is not on the engine; build it (pilothousectl "
                                              "build, or Build in the window) or choose one of "
                                              "pilothousectl tags; nothing was changed")
                                   .arg(ref));
                           return;
                       }
                       resolved(id);
                   }));
        return;
    }
    setStep(DeployStep::Preparing, QStringLiteral("Looking up %1 in the registry").arg(tag));
    withRegistry(guarded([this, tag](Expected<RegistryClient *> client) {
        if (!client) {
            conclude(DeployResult::Outcome::Refused, client.error());
            return;
        }
        (*client)->resolveDigest(
            tag, guarded([this](Expected<QString> digest) {
                if (m_run->cancelRequested) {
                    conclude(DeployResult::Outcome::Cancelled,
                             QStringLiteral("cancelled; nothing was changed"));
                    return;
                }
                if (!digest) {
                    conclude(DeployResult::Outcome::Refused,
                             QStringLiteral("%1; nothing was changed").arg(digest.error()));
                    return;
                }
                resolved(*digest);
            }));
    }));
}

void Deployer::resolved(const QString &digest)
{
    Deployment &d = m_run->record;
    d.toDigest = digest;
    if (alreadyRunning(m_run->plan, d.toTag, digest)) {
        conclude(DeployResult::Outcome::Refused,
                 QStringLiteral("%1 already runs %2 (%3); nothing to do")
                     .arg(named(m_run->services), d.toTag, shortDigest(digest)));
        return;
    }
    fetchSchema(guarded([this](int schema) {
        m_run->record.fromSchema = schema;
        if (m_run->cancelRequested) {
            conclude(DeployResult::Outcome::Cancelled,
                     QStringLiteral("cancelled; nothing was changed"));
            return;
        }
        if (!m_history) {
            recorded(0);
            return;
        }
        m_run->beginPending = true;
        m_history->begin(m_run->record, this, guarded([this](Expected<qint64> id) {
                             m_run->beginPending = false;
                             if (!id) {
                                 conclude(
                                     DeployResult::Outcome::Refused,
                                     QStringLiteral("%1; nothing was changed").arg(id.error()));
                                 return;
                             }
                             recorded(*id);
                         }));
    }));
}

void Deployer::recorded(qint64 id)
{
    m_run->record.id = id;
    emit started(m_run->record);
    if (m_run->cancelRequested) {
        conclude(DeployResult::Outcome::Cancelled,
                 QStringLiteral("cancelled; nothing was changed"));
        return;
    }
    pull();
}

QString Deployer::pinnedReference() const
{
    const Environment &env = m_session->environment();
    // A registry digest pins repository@digest; a local build's image id is
    // a reference by itself.
    return env.tagsFromEngine() ? m_run->record.toDigest
                                : env.imageRepository + QLatin1Char('@') + m_run->record.toDigest;
}

void Deployer::pull()
{
    const QString pinned = pinnedReference();
    const auto inspect = [this, pinned](std::function<void(const CommandResult &)> then) {
        runCommand(docker({ QStringLiteral("image"), QStringLiteral("inspect"),
                            QStringLiteral("--format"), QStringLiteral("{{.Id}}"), pinned },
                          60000, QStringLiteral("docker image inspect")),
                   guarded(std::move(then)));
    };
    const auto tagLocally = [this] { tagAndRoll(); };
    setStep(DeployStep::Pulling,
            m_session->environment().tagsFromEngine()
                ? QStringLiteral("Checking %1 on the engine").arg(pinned)
                : QStringLiteral("Pulling %1").arg(pinned));
    // Already here (a rollback, or pulled before): no registry round trip.
    inspect([this, pinned, tagLocally, inspect](const CommandResult &present) {
        if (present.ok()) {
            m_run->targetImageId = present.output.trimmed();
            emit stepChanged(DeployStep::Pulling,
                             QStringLiteral("%1 is already on the engine").arg(pinned));
            tagLocally();
            return;
        }
        if (m_run->cancelRequested) {
            tagLocally(); // concludes as cancelled
            return;
        }
        if (m_session->environment().tagsFromEngine()) {
            conclude(DeployResult::Outcome::Failed,
                     QStringLiteral("the build %1 (image %2) is no longer on the engine; build it "
                                    "again (pilothousectl build); nothing was changed")
                         .arg(m_run->record.toTag, shortDigest(m_run->record.toDigest)));
            return;
        }
        CommandSpec spec = docker({ QStringLiteral("pull"), pinned }, kPullTimeoutMs,
                                  QStringLiteral("docker pull"));
        spec.keepOutput = true;
        runCommand(spec, guarded([this, pinned, tagLocally, inspect](const CommandResult &r) {
                       if (r.end == CommandResult::End::Cancelled || m_run->cancelRequested) {
                           tagLocally();
                           return;
                       }
                       if (!r.ok()) {
                           conclude(
                               DeployResult::Outcome::Failed,
                               QStringLiteral("%1; nothing was changed, %2 still runs %3")
                                   .arg(explainDockerFailure(r, QStringLiteral("pulling ") + pinned,
                                                             m_session->environment()),
                                        named(m_run->services), m_run->record.fromTag));
                           return;
                       }
                       inspect([this, tagLocally](const CommandResult &id) {
                           if (id.ok())
                               m_run->targetImageId = id.output.trimmed();
                           tagLocally();
                       });
                   }));
    });
}

void Deployer::tagAndRoll()
{
    const Environment &env = m_session->environment();
    const Deployment &d = m_run->record;
    const QString pinned = pinnedReference();
    const QString tagged = env.imageRepository + QLatin1Char(':') + d.toTag;
    const QString svc = named(m_run->services);
    if (m_run->cancelRequested) {
        conclude(
            DeployResult::Outcome::Cancelled,
            QStringLiteral("cancelled; nothing was changed, %1 still runs %2").arg(svc, d.fromTag));
        return;
    }
    // Re-pointing the running tag itself (a moving tag such as "staging")
    // changes what a restart would run: from here on, a failure reverts.
    if (d.toTag == d.fromTag)
        m_run->changed = true;
    // The compose file names the image by tag: make the tag point at exactly
    // the digest that was resolved. Short, so never cut off.
    runCommand(
        docker({ QStringLiteral("tag"), pinned, tagged }, 60000, QStringLiteral("docker tag")),
        guarded([this, tagged, svc](const CommandResult &r) {
            if (!r.ok()) {
                const QString why = explainDockerFailure(r, QStringLiteral("tagging ") + tagged,
                                                         m_session->environment());
                if (m_run->changed)
                    gateFailed(why);
                else
                    conclude(DeployResult::Outcome::Failed,
                             why + QStringLiteral("; nothing was changed"));
                return;
            }
            if (m_run->cancelRequested) {
                if (m_run->changed)
                    revert(QStringLiteral("cancelled by the user"), true);
                else
                    conclude(DeployResult::Outcome::Cancelled,
                             QStringLiteral("cancelled; nothing was changed, %1 still runs %2")
                                 .arg(svc, m_run->record.fromTag));
                return;
            }
            if (m_strategy && m_strategy->keepsOld())
                setStep(DeployStep::Recreating,
                        QStringLiteral("Starting %1 on %2 next to %3 (start-first: %3 keeps "
                                       "serving until %2 passes the gate)")
                            .arg(svc, m_run->record.toTag, m_run->record.fromTag));
            else
                setStep(DeployStep::Recreating,
                        QStringLiteral("Moving %1 to %2 (%3)")
                            .arg(svc, m_run->record.toTag,
                                 m_strategy ? m_strategy->name() : QStringLiteral("recreate")));
            m_run->changed = true;
            roll(m_run->record.toTag, false, guarded([this, svc](Outcome rolled) {
                     if (m_run->cancelRequested) {
                         revert(QStringLiteral("cancelled by the user"), true);
                         return;
                     }
                     if (!rolled) {
                         gateFailed(rolled.error());
                         return;
                     }
                     startGate(false);
                 }));
        }),
        false);
}

void Deployer::roll(const QString &tag, bool reverting, std::function<void(Outcome)> done)
{
    if (!m_strategy) {
        done(Error { QStringLiteral("no rollout strategy for this environment") });
        return;
    }
    m_run->rolling = true;
    m_strategy->roll({ m_run->services, tag, reverting, m_run->oldContainers },
                     guarded([this, done](Outcome result) {
                         m_run->rolling = false;
                         done(result);
                     }));
}

void Deployer::startGate(bool reverting)
{
    Run &run = *m_run;
    if (reverting)
        markRoles(QStringLiteral("old, health gate again"), {});
    else
        markRoles(QStringLiteral("old, serving"), QStringLiteral("new, health gate"));
    run.gating = true;
    run.changedAt = QDateTime::currentDateTimeUtc();
    run.gateClock.start();
    run.windowClock.invalidate();
    const QString tag = reverting ? run.record.fromTag : run.record.toTag;
    setStep(reverting ? DeployStep::Reverting : DeployStep::WaitingForHealth,
            QStringLiteral("Waiting for %1 on %2 to pass their health checks for %3")
                .arg(named(run.services), tag, seconds(m_windowMs)));
    m_session->monitor()->checkNow();
    if (m_session->watcher())
        m_session->watcher()->refresh();
    m_gateTimer.start();
}

void Deployer::evaluateGate()
{
    // servicesChanged calls it, and marking roles emits that signal: one
    // look at a time.
    if (!m_run || !m_run->gating || m_evaluating)
        return;
    const QScopedValueRollback<bool> once(m_evaluating, true);
    Run &run = *m_run;
    // New containers show up while it waits: give them their role.
    markRoles(run.oldRole, run.newRole);
    GateTarget target;
    const auto [names, units] = gateUnits();
    target.services = names;
    target.reverting = run.reverting;
    target.tag = run.reverting ? run.record.fromTag : run.record.toTag;
    target.imageId = run.reverting ? run.previousImageId : run.targetImageId;
    target.replacedContainers = run.reverting ? run.newContainers : run.previousContainers;
    target.changedAt = run.changedAt;
    QList<EndpointSeen> endpoints;
    HealthMonitor *monitor = m_session->monitor();
    if (!run.reverting && m_strategy && m_strategy->keepsOld()) {
        endpoints = directEndpoints(names, units);
    } else {
        for (int id : monitor->ids()) {
            const EndpointState *e = monitor->endpoint(id);
            if (run.services.contains(e->service))
                endpoints.append({ e->service, e->endpoint.url.toString(), e->status, e->detail,
                                   e->lastChecked });
        }
    }
    const GateJudgement judgement = judgeGate(target, units, endpoints);
    const GateDecision decision = advanceGate(
        judgement, run.gateClock.elapsed(),
        run.windowClock.isValid() ? run.windowClock.elapsed() : -1, m_windowMs, m_timeoutMs);
    switch (decision.action) {
    case GateAction::KeepWaiting:
        // Answers while it starts should come every tick, not after the monitor's backoff.
        monitor->checkNow();
        if (m_direct)
            m_direct->checkNow();
        return;
    case GateAction::StartWindow:
        run.windowClock.start();
        emit stepChanged(m_step,
                         QStringLiteral("%1 healthy; holding for %2")
                             .arg(named(run.services), seconds(m_windowMs)));
        return;
    case GateAction::Hold:
        return;
    case GateAction::Fail:
        gateFailed(decision.why);
        return;
    case GateAction::Pass:
        break;
    }
    run.gating = false;
    m_gateTimer.stop();
    stopDirectChecks();
    if (run.reverting) {
        reverted(true, {});
        return;
    }
    succeed();
}

void Deployer::succeed()
{
    const QString passed =
        QStringLiteral("%1 %2 %3 and passed the health checks for %4")
            .arg(named(m_run->services),
                 m_run->services.size() > 1 ? QStringLiteral("run") : QStringLiteral("runs"),
                 m_run->record.toTag, seconds(m_windowMs));
    const auto end = [this, passed](const QString &note, bool drained) {
        fetchSchema(guarded([this, passed, note, drained](int schema) {
            m_run->record.toSchema = schema;
            // Asked while the gate was closing: back to the previous tag,
            // unless the old containers are gone already.
            if (m_run->cancelRequested && !drained) {
                revert(QStringLiteral("cancelled by the user"), true);
                return;
            }
            conclude(DeployResult::Outcome::Succeeded,
                     passed + note +
                         (m_run->cancelRequested
                              ? QStringLiteral(" (the cancel came after the old containers "
                                               "were drained, so it stays)")
                              : QString()));
        }));
    };
    if (!m_strategy || !m_strategy->keepsOld()) {
        end({}, false);
        return;
    }
    m_run->finishing = true;
    markRoles(QStringLiteral("old, draining"), QStringLiteral("new, serving"));
    setStep(DeployStep::Draining,
            QStringLiteral("%1 on %2 passed the gate; draining %3 (SIGTERM: what it is doing "
                           "finishes, then it is removed)")
                .arg(named(m_run->services), m_run->record.toTag, m_run->record.fromTag));
    m_strategy->finish(guarded([this, end](Outcome drained) {
        m_run->finishing = false;
        end(drained ? QString()
                    : QStringLiteral("; the old containers were not all removed (%1): remove "
                                     "them with docker rm -f")
                          .arg(drained.error()),
            true);
    }));
}

std::pair<QStringList, QList<std::optional<ServiceState>>> Deployer::gateUnits() const
{
    QStringList names;
    QList<std::optional<ServiceState>> units;
    const Run &run = *m_run;
    for (const QString &svc : run.services) {
        bool any = false;
        for (const ServiceState &s : m_session->statesOf(svc)) {
            // The new side: not a container from before the change. On a
            // revert: not one of the new ones that failed.
            const bool other = run.reverting ? run.newIds.contains(s.containerId)
                                             : run.oldContainers.value(svc).contains(s.containerId);
            if (other)
                continue;
            names << svc;
            units << s;
            any = true;
        }
        if (!any) {
            names << svc;
            units << std::nullopt;
        }
    }
    return { names, units };
}

QList<EndpointSeen> Deployer::directEndpoints(const QStringList &names,
                                              const QList<std::optional<ServiceState>> &states)
{
    const Environment &env = m_session->environment();
    SshConnection *ssh = m_session->sshConnection();
    if (!ssh && env.isRemote()) {
        // tcp:// or a named context: container addresses are the remote
        // host's, and no connection of ours reaches them.
        if (!std::exchange(m_directNoted, true))
            emit stepChanged(
                m_step,
                QStringLiteral("The new containers' addresses cannot be reached from "
                               "here (docker.host %1); the gate checks them through "
                               "the engine's healthcheck only")
                    .arg(env.dockerHost.isEmpty() ? env.dockerContext : env.dockerHost));
        return {};
    }
    if (!m_direct) {
        m_direct = std::make_unique<HealthMonitor>();
        m_direct->start();
    }
    QList<EndpointSeen> out;
    for (qsizetype i = 0; i < names.size(); ++i) {
        const std::optional<ServiceState> &s = states.at(i);
        if (!s)
            continue;
        QList<HealthEndpoint> configured;
        for (const WatchedService &w : env.services) {
            if (w.name == names.at(i))
                configured = w.endpoints;
        }
        if (configured.isEmpty())
            continue;
        if (!m_directIds.contains(s->containerId)) {
            if (!s->isRunning() || s->addresses.isEmpty()) {
                for (const HealthEndpoint &e : configured)
                    out.append({ names.at(i),
                                 QStringLiteral("%1 of the new container").arg(e.url.path()),
                                 EndpointStatus::Unknown,
                                 QStringLiteral("no address yet"),
                                 {},
                                 s->containerId });
                continue;
            }
            QList<int> ids;
            for (const HealthEndpoint &e : configured) {
                const int port = env.containerPort > 0
                    ? env.containerPort
                    : e.url.port(e.url.scheme() == QLatin1String("https") ? 443 : 80);
                HealthEndpoint direct = e;
                direct.internal = false;
                direct.intervalMs = std::min(e.intervalMs, 500);
                QUrl url;
                url.setScheme(QStringLiteral("http"));
                url.setPath(e.url.path());
                url.setQuery(e.url.query());
                if (ssh) {
                    const int local = ssh->forwardTcp(s->addresses.first(), port);
                    m_directForwards << local;
                    url.setHost(QStringLiteral("127.0.0.1"));
                    url.setPort(local);
                } else {
                    url.setHost(s->addresses.first());
                    url.setPort(port);
                }
                direct.url = url;
                ids << m_direct->addEndpoint(names.at(i), direct);
            }
            m_directIds.insert(s->containerId, ids);
            m_direct->checkNow();
        }
        for (int id : m_directIds.value(s->containerId)) {
            const EndpointState *e = m_direct->endpoint(id);
            if (e)
                out.append(
                    { e->service,
                      QStringLiteral("%1 (%2)").arg(e->endpoint.url.toString(), s->container),
                      e->status, e->detail, e->lastChecked, s->containerId });
        }
    }
    return out;
}

void Deployer::markRoles(const QString &oldRole, const QString &newRole)
{
    if (!m_session)
        return;
    QHash<QString, QString> roles;
    if (m_run && m_strategy && m_strategy->keepsOld() &&
        !(oldRole.isEmpty() && newRole.isEmpty())) {
        m_run->oldRole = oldRole;
        m_run->newRole = newRole;
        for (const QString &svc : std::as_const(m_run->services)) {
            for (const ServiceState &s : m_session->statesOf(svc)) {
                const bool old = m_run->oldContainers.value(svc).contains(s.containerId);
                const QString role = old ? oldRole : newRole;
                if (!role.isEmpty())
                    roles.insert(s.containerId, role);
            }
        }
    }
    m_session->setRolloutRoles(roles);
}

void Deployer::stopDirectChecks()
{
    m_direct.reset();
    m_directIds.clear();
    m_directNoted = false;
    if (SshConnection *ssh = m_session ? m_session->sshConnection() : nullptr) {
        for (int port : std::as_const(m_directForwards))
            ssh->cancelTcp(port);
    }
    m_directForwards.clear();
}

void Deployer::gateFailed(const QString &why, bool byUser)
{
    Run &run = *m_run;
    run.gating = false;
    m_gateTimer.stop();
    stopDirectChecks();
    if (run.reverting) {
        reverted(false, why);
        return;
    }
    run.failure = why;
    QList<std::pair<QString, QString>> containers;
    for (const QString &svc : run.services) {
        for (const ServiceState &s : m_session->statesOf(svc)) {
            if (s.containerId.isEmpty() || run.oldContainers.value(svc).contains(s.containerId) ||
                s.tag != run.record.toTag)
                continue;
            run.newContainers.insert(svc, s.containerId);
            run.newIds << s.containerId;
            containers.append({ svc, s.containerId });
        }
    }
    // Their last words, before the revert removes the containers (never cut short).
    collectLogs(containers, guarded([this, why, byUser] { revert(why, byUser); }));
}

void Deployer::collectLogs(QList<std::pair<QString, QString>> services, std::function<void()> then)
{
    if (services.isEmpty()) {
        then();
        return;
    }
    const auto [svc, id] = services.takeFirst();
    const bool several = m_run->newIds.size() > 1;
    runCommand(
        docker({ QStringLiteral("logs"), QStringLiteral("--tail"), QString::number(kLogLines), id },
               30000, QStringLiteral("docker logs")),
        guarded([this, svc, several, services, then](const CommandResult &r) {
            for (const QString &line :
                 lastLines(r.output + QLatin1Char('\n') + r.errorOutput, kLogLines))
                m_run->logLines << (several ? svc + QStringLiteral(" | ") + line : line);
            collectLogs(services, then);
        }),
        false);
}

void Deployer::revert(const QString &why, bool cancelled)
{
    Run &run = *m_run;
    run.reverting = true;
    run.failure = why;
    run.cancelled = cancelled;
    const Environment &env = m_session->environment();
    const QString previous = env.imageRepository + QLatin1Char(':') + run.record.fromTag;
    setStep(DeployStep::Reverting,
            QStringLiteral("%1; going back to %2").arg(why, run.record.fromTag));
    // The tag may have moved since; point it at exactly the image that ran.
    runCommand(docker({ QStringLiteral("tag"), run.previousImageId, previous }, 60000,
                      QStringLiteral("docker tag")),
               guarded([this, previous](const CommandResult &r) {
                   if (!r.ok()) {
                       reverted(false,
                                explainDockerFailure(r, QStringLiteral("tagging ") + previous,
                                                     m_session->environment()));
                       return;
                   }
                   const auto rolled = guarded([this](Outcome result) {
                       m_run->rolling = false;
                       if (!result) {
                           reverted(false, result.error());
                           return;
                       }
                       startGate(true);
                   });
                   if (m_strategy && m_strategy->keepsOld()) {
                       // The old containers never stopped: only the new ones go.
                       emit stepChanged(DeployStep::Reverting,
                                        QStringLiteral("Removing the new containers, going "
                                                       "back to %2 (%1 on %2 kept serving "
                                                       "throughout)")
                                            .arg(named(m_run->services), m_run->record.fromTag));
                       m_run->rolling = true;
                       markRoles(QStringLiteral("old, serving"),
                                 QStringLiteral("new, being removed"));
                       m_strategy->abandon(rolled);
                       return;
                   }
                   roll(m_run->record.fromTag, true, rolled);
               }),
               false);
}

void Deployer::reverted(bool ok, const QString &why)
{
    const Conclusion c = afterRevert(ok, m_run->cancelled, m_run->failure, why, m_run->record);
    conclude(c.outcome, c.message);
}

RunPhase Deployer::phase() const
{
    const Run &run = *m_run;
    if (run.reverting)
        return RunPhase::Reverting;
    if (run.gating)
        return RunPhase::Gating;
    if (run.finishing)
        return RunPhase::ShortCommand; // the old containers drain; the new ones stay
    if (run.rolling || (m_command && m_commandCancellable))
        return RunPhase::Command;
    if (m_command)
        return RunPhase::ShortCommand;
    if (run.beginPending)
        return RunPhase::Recording;
    if (!run.changed)
        return RunPhase::Resolving;
    return RunPhase::ShortCommand; // between two steps: the next one looks
}

void Deployer::cancel()
{
    if (m_planning && !m_run) {
        m_cancelWhilePlanning = true;
        return;
    }
    if (!m_run)
        return;
    Run &run = *m_run;
    const RunPhase now = phase();
    const CancelAction action = cancelAction(now, run.cancelRequested);
    if (action == CancelAction::Ignore)
        return;
    if (action == CancelAction::FinishRevert) {
        emit stepChanged(m_step,
                         QStringLiteral("Finishing the revert, so %1 stays on a known tag")
                             .arg(named(run.services)));
        return;
    }
    run.cancelRequested = true;
    emit stepChanged(m_step, QStringLiteral("Cancelling"));
    switch (action) {
    case CancelAction::ConcludeNow:
        // Waiting on the registry or /version: nothing has changed, so stop
        // now (their late answers are dropped).
        conclude(DeployResult::Outcome::Cancelled,
                 QStringLiteral("cancelled; nothing was changed"));
        return;
    case CancelAction::StopCommand:
        // The running step notices when its command comes back.
        if (run.rolling && m_strategy)
            m_strategy->cancel();
        else if (m_command)
            m_command->cancel();
        return;
    case CancelAction::RevertNow:
        gateFailed(QStringLiteral("cancelled by the user"), true);
        return;
    case CancelAction::NoteOnly: // the history's answer or a short step is awaited
    case CancelAction::Ignore:
    case CancelAction::FinishRevert:
        return;
    }
}

void Deployer::conclude(DeployResult::Outcome outcome, const QString &message)
{
    m_gateTimer.stop();
    stopDirectChecks();
    markRoles({}, {});
    std::unique_ptr<Run> run = std::move(m_run);
    DeployResult result;
    result.outcome = outcome;
    result.message = message;
    result.deployment = run->record;
    result.logLines = run->logLines;
    result.schemaWarning = run->schemaWarning;
    result.elapsedMs = run->clock.elapsed();
    result.healthWindowMs = m_windowMs;
    // A refusal after the row was written is recorded as failed.
    const Deployment::Outcome recorded =
        outcome == DeployResult::Outcome::Refused ? Deployment::Outcome::Failed : outcome;
    result.deployment.outcome = recorded;
    result.deployment.reason = message;
    result.deployment.logLines = run->logLines;
    result.deployment.finishedAt = QDateTime::currentDateTimeUtc();
    if (m_session) {
        // What a later stack start should keep running.
        if (const QString pin = pinAfter(outcome, run->changed, run->record); !pin.isEmpty())
            m_session->setPinnedTag(pin);
        m_session->setOperationLock({});
    }
    m_lock.reset();
    m_step = DeployStep::Idle;
    qCInfo(lcDeploy, "%s: %s", qPrintable(toString(outcome)), qPrintable(message));
    if (run->record.id > 0 && m_history) {
        // finished() after the row is written: whoever reads the history next sees it.
        m_history->finish(run->record.id, recorded, message, run->logLines, run->record.toSchema,
                          this, [this, result](Outcome written) {
                              DeployResult r = result;
                              if (!written)
                                  r.message += QStringLiteral(" (%1)").arg(written.error());
                              emit finished(r);
                          });
        return;
    }
    QMetaObject::invokeMethod(
        this, [this, result] { emit finished(result); }, Qt::QueuedConnection);
}

} // namespace pilothouse
