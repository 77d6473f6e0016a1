#pragma once

#include "drivers/docker.h"
#include "drivers/stackdriver.h"

#include <QMap>
#include <QPointer>

namespace pilothouse {

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
    void cancel() override;
    bool isBusy() const override { return m_busy; }

    // Per-call timeouts (tests shorten them).
    void setTimeoutMs(int ms) { m_timeoutMs = ms; }
    // Variables for compose's interpolation (the backend's image and tag),
    // passed in the process environment, where they win over the env file.
    void setVariables(const QMap<QString, QString> &variables) { m_variables = variables; }

private:
    void run(StackOperation op, const QString &service, const QStringList &args);
    // The project's .env made from its example on a start; empty, or the
    // sentence for a variable the compose file requires that nothing sets.
    QString prepareEnvFile(StackOperation op);

    Environment m_env;
    QPointer<Command> m_command;
    bool m_busy = false;
    bool m_cancelled = false;
    int m_timeoutMs = 300000;
    QMap<QString, QString> m_variables;
};

} // namespace pilothouse
