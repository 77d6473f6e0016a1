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

class EngineWatcher : public QObject
{
    Q_OBJECT
public:
    enum class EngineStatus { Unknown, Connected, Disconnected };
    Q_ENUM(EngineStatus)

    explicit EngineWatcher(Environment env, QObject *parent = nullptr);
    ~EngineWatcher() override;

    // A swarm environment's watcher (SwarmWatcher) overrides these three.
    virtual void start();
    virtual void stop();
    // Inspects everything again (after an operation, or on the user's refresh).
    virtual void refresh();

    EngineStatus engineStatus() const { return m_status; }
    QString engineError() const { return m_error; }
    QList<ServiceState> states() const;
    bool isSeeded() const { return m_seeded; }

signals:
    void statesChanged(const QList<pilothouse::ServiceState> &states);
    void engineStatusChanged(pilothouse::EngineWatcher::EngineStatus status,
                             const QString &message);
    void seeded();

protected:
    // What a kind of engine view does (the compose one here; SwarmWatcher's):
    // follow the events, and look at everything once.
    virtual void startEvents();
    virtual void seed();
    virtual void onEventLine(const QString &line);
    // `docker events --format {{json .}}` with these filters; its lines go
    // to onEventLine, its end to disconnected().
    void startEventStream(const QStringList &filters);
    // The engine is gone: said, and everything started again with backoff
    // (0.5 s doubling to 5 s); answers from before are dropped.
    void disconnected(const QString &message);
    void setStatus(EngineStatus status, const QString &message);
    void publish();

    Environment m_env;
    QHash<QString, ServiceState> m_states; // by container (swarm: task) id
    EngineStatus m_status = EngineStatus::Unknown;
    QString m_error;
    bool m_running = false;
    bool m_seeded = false;
    int m_backoffMs = 0; // reset by a successful seed
    quint64 m_generation = 0; // answers from before a reconnect are dropped

private:
    void inspect(const QStringList &ids, bool replaceAll);
    void applyInspect(const QByteArray &json, const QStringList &asked, bool replaceAll,
                      quint64 sequence);
    void resolveDigests(const QStringList &imageIds);
    void scheduleInspect(const QString &id);

    QPointer<Command> m_events;
    QHash<QString, QString> m_digests; // image id -> repo digest
    QSet<QString> m_dirty;
    QTimer m_inspectTimer;
    QTimer m_reconnectTimer;
    quint64 m_inspectSequence = 0;
    QHash<QString, quint64> m_appliedSequence; // container id -> newest answer applied
};

} // namespace pilothouse
