#pragma once

#include "deploy/history.h"
#include "drivers/command.h"
#include "engine/servicestate.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QLockFile>
#include <QMetaType>
#include <QNetworkAccessManager>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <functional>
#include <memory>

// Deploys an image tag of the backend to a compose environment and rolls it
// back, behind a health gate: pull pinned by digest, recreate only the backend
// service, then the engine's healthcheck and the environment's HTTP endpoints
// must pass for a window; if they do not, the previous image comes back by
// itself. Every step is reported by signals and can be cancelled; the
// service is always left on a known tag, and the history records it all.
namespace pilothouse {

class StackSession;
class HistoryStore;
class RegistryClient;
struct ComposeCli;

enum class DeployStep { Idle, Preparing, Pulling, Recreating, WaitingForHealth, Reverting };
QString toString(DeployStep step);

struct DeployResult
{
    enum class Outcome {
        Succeeded, // the new tag runs and passed the gate
        Refused, // nothing was changed (bad tag, busy, registry unreachable, ...)
        Reverted, // the new tag failed the gate; the previous one runs again
        Cancelled, // stopped on request; the previous tag runs
        Failed // the new tag failed and so did the revert: look at the service
    };
    Outcome outcome = Outcome::Refused;
    QString message; // for a person: what happened and what to do
    Deployment deployment; // id 0 when refused (nothing recorded)
    QStringList logLines; // the failed container's last lines
    QString schemaWarning;
    qint64 elapsedMs = 0; // from the call to this answer
    int healthWindowMs = 0; // of that, the time the gate held a healthy service on purpose
    bool ok() const { return outcome == Outcome::Succeeded; }
};
QString toString(DeployResult::Outcome outcome);

// What a rollback would do, for a confirmation before it starts.
struct RollbackPlan
{
    QString service;
    QString fromTag;
    QString fromDigest;
    QString toTag;
    QString toDigest; // as recorded when it last ran; empty: resolved from the registry
    int targetSchema = -1; // the schema version the target build expects; -1 unknown
    int databaseSchema = -1; // the database's migration version; -1 unknown
    // Set when the database is newer than the target build expects.
    QString schemaWarning;
};

class Deployer final : public QObject
{
    Q_OBJECT
public:
    Deployer(StackSession *session, HistoryStore *history, QObject *parent = nullptr);
    ~Deployer() override;

    // The tag the backend service runs now, read from the engine.
    QString runningTag() const;
    QString service() const;

    // Registry access for the tags a person can pick (credentials applied).
    void listTags(QObject *context, std::function<void(Expected<QStringList>)> done);

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

    // Takes the tag a stack start should keep from the history (the last
    // deployed one) after the panel restarts; the history must be open.
    void restorePin();

    // Registry credentials are read again on next use (a token saved in Settings).
    void resetRegistry();

signals:
    void started(const pilothouse::Deployment &deployment);
    void stepChanged(pilothouse::DeployStep step, const QString &message);
    void finished(const pilothouse::DeployResult &result);

private:
    struct Run;
    enum class GateVerdict { Waiting, Passed, Failed };

    void start(const QString &tag, const QString &knownDigest, const QString &schemaWarning = {});
    // Wraps a callback so it runs only if the run it was made for is still the current one.
    template<typename F> auto guarded(F f);
    void resolved(const QString &digest);
    void recorded(qint64 id);
    void pull();
    void recreate(const QString &tag, std::function<void(const CommandResult &)> done);
    void startGate(bool reverting);
    void evaluateGate();
    GateVerdict judge(QString *why) const;
    void gateFailed(const QString &why, bool byUser = false);
    void revert(const QString &why, bool cancelled);
    void reverted(bool ok, const QString &why);
    void conclude(DeployResult::Outcome outcome, const QString &message);
    void refuse(const QString &message);
    void setStep(DeployStep step, const QString &message);
    // cancellable: false for short steps that must finish (tagging, logs).
    void runCommand(const CommandSpec &spec, std::function<void(const CommandResult &)> done,
                    bool cancellable = true);
    CommandSpec docker(const QStringList &args, int timeoutMs, const QString &what) const;
    void withCompose(std::function<void(const ComposeCli &)> then);
    void withRegistry(std::function<void(Expected<RegistryClient *>)> then);
    void fetchSchema(std::function<void(int)> done);
    int databaseSchema() const;

    QPointer<StackSession> m_session;
    QPointer<HistoryStore> m_history;
    std::shared_ptr<RegistryClient> m_registry; // made on first use
    bool m_registryCredentialsStale = false;
    quint64 m_generation = 0; // of the current run
    bool m_planning = false; // a rollback is being worked out before it starts
    bool m_cancelWhilePlanning = false;
    bool m_commandCancellable = true;
    QNetworkAccessManager m_network;
    std::unique_ptr<Run> m_run;
    std::unique_ptr<QLockFile> m_lock;
    QPointer<Command> m_command;
    QTimer m_gateTimer;
    DeployStep m_step = DeployStep::Idle;
    int m_windowMs = 10000;
    int m_timeoutMs = 120000;
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::DeployResult)
Q_DECLARE_METATYPE(pilothouse::DeployStep)
Q_DECLARE_METATYPE(pilothouse::Deployment)
