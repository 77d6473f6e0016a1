#pragma once

#include "deploy/history.h"
#include "drivers/docker.h"
#include "drivers/stackdriver.h"

#include <QMap>
#include <QPointer>

namespace pilothouse {

struct Build;
class LocalBuild;

// Before a compose call: when something the compose files require is set
// nowhere and mayCreate, makes the project's .env from its .env.example
// (created: the sentence that says so); then the sentence naming a variable
// still missing and where to set it, or empty.
QString prepareComposeEnv(const Environment &env, const QMap<QString, QString> &variables,
                          bool mayCreate, QString *created);

// Drives `docker compose` / `docker-compose` for one environment.
class ComposeDriver final : public StackDriver
{
    Q_OBJECT
public:
    explicit ComposeDriver(Environment env, QObject *parent = nullptr);
    ~ComposeDriver() override;

    void up() override;
    void down() override;
    void restart(const QString &service = {}) override;
    void stopService(const QString &service) override;
    void startService(const QString &service) override;
    void pull() override;
    // Builds the backend image from the checkout (LocalBuild); built() follows a success.
    void build();
    void cancel() override;
    bool isBusy() const override { return m_busy; }

    // Per-call timeouts (tests shorten them).
    void setTimeoutMs(int ms) { m_timeoutMs = ms; }
    // Variables for compose's interpolation (the backend's image and tag),
    // passed in the process environment, where they win over the env file.
    void setVariables(const QMap<QString, QString> &variables) { m_variables = variables; }
    // Services the engine has paused: the next up() resumes them first
    // (`compose up` leaves a paused container paused).
    void setPaused(const QStringList &services) { m_paused = services; }

signals:
    // A build was made or found for the checkout (startsIt: as part of a start).
    void built(const pilothouse::Build &build, bool startsIt);

private:
    void run(StackOperation op, const QString &service, const QStringList &args);
    // The project's .env made from its example on a start; empty, or the
    // sentence for a variable the compose file requires that nothing sets.
    QString prepareEnvFile(StackOperation op);

    Environment m_env;
    QPointer<Command> m_command;
    QPointer<LocalBuild> m_build;
    bool m_busy = false;
    bool m_cancelled = false;
    int m_timeoutMs = 300000;
    QMap<QString, QString> m_variables;
    QStringList m_paused;
};

} // namespace pilothouse
