#pragma once

#include "drivers/command.h"
#include "drivers/stackdriver.h"
#include "env/environment.h"

#include <QMap>
#include <QPointer>
#include <functional>

// Runs a stack on a Docker Swarm through a manager: `docker stack deploy`
// of the environment's stack files (checked first, and the secrets they
// need made from the stack's variables when the engine lacks them), `stack
// rm`, a service's restart (a forced update), stop and start (scaled to 0 and
// back), scale, and a node's availability. Calls return at once; outcomes
// come as StackDriver's signals.
namespace pilothouse {

class SwarmDriver final : public StackDriver
{
    Q_OBJECT
public:
    explicit SwarmDriver(Environment env, QObject *parent = nullptr);
    ~SwarmDriver() override;

    void up() override;
    void down() override;
    void restart(const QString &service = {}) override;
    void stopService(const QString &service) override;
    void startService(const QString &service) override;
    void pull() override;
    void cancel() override;
    bool isBusy() const override { return m_busy; }

    void scale(const QString &service, int replicas);
    // availability: "active", "pause" or "drain".
    void setNodeAvailability(const QString &node, const QString &availability);
    // The next down() removes the stack's volumes too (on this engine's node).
    void setRemoveVolumes(bool remove) { m_removeVolumes = remove; }
    // Variables for the stack files (the backend's image and tag), over the
    // process environment and the stack's .env.
    void setVariables(const QMap<QString, QString> &variables) { m_variables = variables; }
    void setTimeoutMs(int ms) { m_timeoutMs = ms; }

    // Every variable the stack files see: the process environment, then the
    // stack folder's .env (or swarm.envFile), then `variables`, and
    // STACK_NAME (the stack's name).
    static QMap<QString, QString> stackVariables(const Environment &env,
                                                 const QMap<QString, QString> &variables);

private:
    using Step = std::function<void(const CommandResult &)>;
    bool begin(StackOperation op, const QString &service);
    void finish(const OperationResult &result);
    void fail(const QString &message, const QString &details = {});
    // One docker call of the operation under way (cancel stops it).
    void call(const QStringList &args, const QString &what, Step done, const QByteArray &input = {},
              bool secretInput = false);
    void deploy();
    void createSecrets(QList<std::pair<QString, QByteArray>> missing, QStringList made,
                       std::function<void(QStringList)> then);
    void removeSecrets(const QStringList &names);
    void removeVolumes(int attempt);
    // Until the stack's networks are gone (or a minute has passed).
    void waitForNetworks(int attempt, std::function<void()> then);
    QString fullName(const QString &service) const;
    void updateService(StackOperation op, const QString &service, const QStringList &updateArgs,
                       const QString &doneMessage);

    Environment m_env;
    QPointer<Command> m_command;
    QMap<QString, QString> m_variables;
    QString m_lastDetails; // the last failed call's command line and output
    QStringList m_madeSecrets; // by this deploy, removed again if it fails
    StackOperation m_op = StackOperation::Up;
    QString m_service;
    bool m_busy = false;
    bool m_cancelled = false;
    bool m_removeVolumes = false;
    int m_timeoutMs = 300000;
};

} // namespace pilothouse
