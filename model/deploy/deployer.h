#pragma once

#include "deploy/deploysteps.h"
#include "deploy/history.h"
#include "deploy/rollout.h"
#include "drivers/command.h"
#include "engine/servicestate.h"
#include "monitor/healthmonitor.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QHash>
#include <QLockFile>
#include <QMetaType>
#include <QNetworkAccessManager>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <functional>
#include <memory>

// Deploys an image tag of the backend to a compose environment and rolls it
// back, behind a health gate: pull pinned by digest, move every service that
// runs the image (image.services) through the environment's rollout strategy,
// then the engine's healthcheck and the environment's HTTP endpoints must
// pass for a window; if they do not, the previous image comes back by
// itself. Every step is reported by signals and can be cancelled; the
// services are always left on a known tag, and the history records it all
// in one row. What to do at each step is decided by the pure functions of
// deploysteps.h; this object runs their side effects.
namespace pilothouse {

class StackSession;
class HistoryStore;
class RegistryClient;
struct ComposeCli;

struct DeployResult
{
    using Outcome = DeploymentOutcome; // Running and Interrupted never come here
    Outcome outcome = Outcome::Refused;
    QString message; // for a person: what happened and what to do
    Deployment deployment; // id 0 when refused (nothing recorded)
    QStringList logLines; // the failed containers' last lines
    QString schemaWarning;
    qint64 elapsedMs = 0; // from the call to this answer
    int healthWindowMs = 0; // of that, the time the gate held a healthy service on purpose
    bool ok() const { return outcome == Outcome::Succeeded; }
};

class Deployer final : public QObject
{
    Q_OBJECT
public:
    Deployer(StackSession *session, HistoryStore *history, QObject *parent = nullptr);
    ~Deployer() override;

    // The tag the backend's primary service runs now, read from the engine.
    QString runningTag() const;
    QString service() const; // the primary service
    QStringList services() const; // every service of the image
    // What the rollout strategy says before a confirmation (empty: nothing).
    QString rolloutCaveat() const;
    // "recreate" or "start-first" (deploy.strategy).
    QString strategyName() const { return m_strategy ? m_strategy->name() : QString(); }
    // The old containers serve until the new ones pass the gate.
    bool startsFirst() const { return m_strategy && m_strategy->keepsOld(); }

    // The tags a person can pick (signature tags hidden), in the one order
    // (orderTags): the registry's tags, timed by the history and the engine.
    // signatures: also cosign's signature and attestation tags (sha256-...).
    void listTags(QObject *context, std::function<void(Expected<QList<ImageTag>>)> done,
                  bool signatures = false);

    // Starts a deployment; started() or a Refused finished() follows.
    void deploy(const QString &tag);
    // Back to the previous successful deployment, or to the given tag.
    void rollback(const QString &toTag = {});
    // Exactly what a confirmed plan says (its tag and recorded digest).
    void rollback(const RollbackPlan &plan);
    // Works out a rollback without doing it: the target and any schema warning.
    void planRollback(const QString &toTag, QObject *context,
                      std::function<void(Expected<RollbackPlan>)> done);
    // Stops at the current step; a changed service goes back to the previous tag.
    void cancel();
    bool isBusy() const { return m_step != DeployStep::Idle || m_planning; }
    DeployStep step() const { return m_step; }

    // Takes the tag a stack start should keep from the history (the one
    // deployed last, by any front end); `then` runs once it is known, with a
    // note for the person when the history could not be read. The history
    // must be open or opening.
    void restorePin(std::function<void(const QString &note)> then = {});

    // Registry credentials are read again on next use (a token saved in Settings).
    void resetRegistry();

signals:
    void started(const pilothouse::Deployment &deployment);
    void stepChanged(pilothouse::DeployStep step, const QString &message);
    void finished(const pilothouse::DeployResult &result);

private:
    struct Run;

    void start(const QString &tag, const QString &knownDigest, const QString &schemaWarning = {});
    // Wraps a callback so it runs only if the run it was made for is still the current one.
    template<typename F> auto guarded(F f);
    void resolved(const QString &digest);
    void recorded(qint64 id);
    void pull();
    QString pinnedReference() const; // what the resolved tag is pulled and tagged from
    void tagAndRoll();
    void roll(const QString &tag, bool reverting, std::function<void(Outcome)> done);
    void startGate(bool reverting);
    void evaluateGate();
    void gateFailed(const QString &why, bool byUser = false);
    // Their last log lines, for the record: (service, container id) each.
    void collectLogs(QList<std::pair<QString, QString>> containers, std::function<void()> then);
    // What the gate looks at: every container of the image's services that
    // belongs to the side being gated (the new ones; on a revert, all but
    // the failed new ones), a service listed once per container.
    std::pair<QStringList, QList<std::optional<ServiceState>>> gateUnits() const;
    // start-first: the health endpoints of each new container itself, at its
    // own address (through the SSH connection for an ssh:// engine), not
    // through the proxy, which cannot tell old from new.
    QList<EndpointSeen> directEndpoints(const QStringList &names,
                                        const QList<std::optional<ServiceState>> &states);
    void stopDirectChecks();
    // Tells the session what each container is in a start-first rollout
    // (oldRole for the containers from before, newRole for the others;
    // empty: no rollout).
    void markRoles(const QString &oldRole, const QString &newRole);
    // The gate passed: the old containers go (start-first), then the end.
    void succeed();
    void revert(const QString &why, bool cancelled);
    void reverted(bool ok, const QString &why);
    void conclude(DeployResult::Outcome outcome, const QString &message);
    void refuse(const QString &message);
    void setStep(DeployStep step, const QString &message);
    RunPhase phase() const;
    // cancellable: false for short steps that must finish (tagging, logs).
    void startWhenReachable(Command *cmd);
    void runCommand(const CommandSpec &spec, std::function<void(const CommandResult &)> done,
                    bool cancellable = true);
    CommandSpec docker(const QStringList &args, int timeoutMs, const QString &what) const;
    void withRegistry(std::function<void(Expected<RegistryClient *>)> then);
    void fetchSchema(std::function<void(int)> done);
    int databaseSchema() const;
    QList<std::optional<ServiceState>> states(const QStringList &services) const;

    QPointer<StackSession> m_session;
    QPointer<HistoryStore> m_history;
    std::shared_ptr<RegistryClient> m_registry; // made on first use
    bool m_registryCredentialsStale = false;
    quint64 m_generation = 0; // of the current run
    bool m_planning = false; // a rollback is being worked out before it starts
    bool m_cancelWhilePlanning = false;
    bool m_pinReading = false;
    QList<std::function<void(const QString &)>> m_pinWaiters; // restorePin() callers while it reads
    bool m_commandCancellable = true;
    QNetworkAccessManager m_network;
    std::unique_ptr<Run> m_run;
    std::unique_ptr<QLockFile> m_lock;
    std::unique_ptr<RolloutStrategy> m_strategy;
    QPointer<Command> m_command;
    QTimer m_gateTimer;
    // start-first's checks of the new containers (see directEndpoints).
    std::unique_ptr<HealthMonitor> m_direct;
    QHash<QString, QList<int>> m_directIds; // container id -> its endpoints in m_direct
    QList<int> m_directForwards; // SSH forwards made for them
    bool m_directNoted = false;
    bool m_evaluating = false; // inside evaluateGate
    DeployStep m_step = DeployStep::Idle;
    int m_windowMs = 10000;
    int m_timeoutMs = 120000;
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::DeployResult)
Q_DECLARE_METATYPE(pilothouse::DeployStep)
Q_DECLARE_METATYPE(pilothouse::Deployment)
