#pragma once

#include "drivers/docker.h"
#include "engine/servicestate.h"

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QSet>
#include <QTimer>

// The live state of a compose project's containers, from the engine itself:
// seeded from `docker ps -a` + `docker inspect` filtered by the project label,
// then kept current from `docker events` (no polling). If the engine goes away
// (daemon restart, network), it says so and reconnects with backoff.
namespace pilothouse {

class EngineWatcher final : public QObject
{
    Q_OBJECT
public:
    enum class EngineStatus { Unknown, Connected, Disconnected };
    Q_ENUM(EngineStatus)

    explicit EngineWatcher(Environment env, QObject *parent = nullptr);
    ~EngineWatcher() override;

    void start();
    void stop();
    // Inspects everything again (after an operation, or on the user's refresh).
    void refresh();

    EngineStatus engineStatus() const { return m_status; }
    QString engineError() const { return m_error; }
    QList<ServiceState> states() const;
    bool isSeeded() const { return m_seeded; }

signals:
    void statesChanged(const QList<pilothouse::ServiceState> &states);
    void engineStatusChanged(pilothouse::EngineWatcher::EngineStatus status,
                             const QString &message);
    void seeded();

private:
    void startEvents();
    void seed();
    void inspect(const QStringList &ids, bool replaceAll);
    void applyInspect(const QByteArray &json, const QStringList &asked, bool replaceAll,
                      quint64 sequence);
    void resolveDigests(const QStringList &imageIds);
    void onEventLine(const QString &line);
    void scheduleInspect(const QString &id);
    void setStatus(EngineStatus status, const QString &message);
    void disconnected(const QString &message);
    void publish();

    Environment m_env;
    QPointer<Command> m_events;
    QHash<QString, ServiceState> m_states; // by container id
    QHash<QString, QString> m_digests; // image id -> repo digest
    QSet<QString> m_dirty;
    QTimer m_inspectTimer;
    QTimer m_reconnectTimer;
    int m_backoffMs = 0;
    EngineStatus m_status = EngineStatus::Unknown;
    QString m_error;
    bool m_running = false;
    bool m_seeded = false;
    quint64 m_generation = 0; // answers from before a reconnect are dropped
    quint64 m_inspectSequence = 0;
    QHash<QString, quint64> m_appliedSequence; // container id -> newest answer applied
};

} // namespace pilothouse
