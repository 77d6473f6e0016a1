#pragma once

#include "engine/enginewatcher.h"

#include <QList>
#include <QMetaType>

// The live state of a Swarm stack, from a manager of the swarm: its services
// (desired and running replicas, the update's state), their tasks (node,
// state, error, image digest, health) and the swarm's nodes. Seeded with
// `docker service inspect`, `docker inspect --type task`, `docker node ls`,
// then kept current from `docker events` for services, nodes and the stack's
// containers: no polling loop. Tasks are the states() (one per task that
// runs or is meant to), so everything that reads a compose container's
// state reads a task the same way.
namespace pilothouse {

struct SwarmService
{
    QString name; // as the stack file names it ("api")
    QString fullName; // as the engine does ("deckhand_api")
    QString id;
    bool global = false;
    int desired = 0; // replicas wanted (global: one per eligible node, as counted)
    int running = 0; // tasks running now
    QString image; // repository:tag as the spec names it (no digest)
    QString digest; // the spec's pinned digest, when it has one
    QString updateState; // "updating", "completed", "rollback_completed", ... or empty
    QString updateMessage;
    // Replicas this service had when Stop scaled it to 0 (its label); 0: none.
    int stoppedReplicas = 0;
    QString replicasText() const;
};

struct SwarmNode
{
    QString id;
    QString hostname;
    QString role; // "manager" or "worker"
    QString availability; // "active", "pause", "drain"
    QString status; // "ready", "down", "unknown"
    QString managerStatus; // "Leader", "Reachable", "Unreachable" or empty
    QString engineVersion;
    QString address;
    bool self = false; // the engine the panel talks to
};

struct SwarmView
{
    // Empty when the engine is a manager the panel can drive; else the
    // sentence that says why not and what makes it one.
    QString problem;
    QList<SwarmService> services;
    QList<SwarmNode> nodes;
    const SwarmService *service(const QString &name) const;
};

// The sentence for an engine that cannot run a stack, from `docker info`'s
// Swarm.LocalNodeState and Swarm.ControlAvailable; empty for a manager.
QString swarmProblem(const QString &localNodeState, bool controlAvailable);

class SwarmWatcher final : public EngineWatcher
{
    Q_OBJECT
public:
    explicit SwarmWatcher(Environment env, QObject *parent = nullptr);
    ~SwarmWatcher() override;

    void stop() override;
    void refresh() override;

    const SwarmView &view() const { return m_view; }

signals:
    void viewChanged();

protected:
    void startEvents() override;
    void seed() override;
    void onEventLine(const QString &line) override;

private:
    struct Seed;
    void seedStep(const std::shared_ptr<Seed> &s);
    void finishSeed(const std::shared_ptr<Seed> &s);
    void scheduleSeed();
    // Runs docker with the environment's engine; `done` gets the result
    // unless the watcher stopped or reconnected meanwhile.
    void call(const QStringList &args, const QString &what,
              std::function<void(const CommandResult &)> done);

    SwarmView m_view;
    QTimer m_seedTimer;
    bool m_seeding = false;
    quint64 m_seedGeneration = 0; // a seed cut off by a reconnect does not count
    bool m_seedAgain = false;
};

} // namespace pilothouse
