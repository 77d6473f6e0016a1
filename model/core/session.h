#pragma once

#include "db/databaseprobe.h"
#include "deploy/history.h"
#include "drivers/stackdriver.h"
#include "engine/enginewatcher.h"
#include "env/environment.h"
#include "logs/logstore.h"
#include "monitor/healthmonitor.h"

#include <QObject>
#include <QTimer>
#include <functional>
#include <memory>
#include <optional>

// One environment brought to life: its driver, the engine watcher (compose),
// the health monitor, the database probe and the logs, combined into one view
// of its services. Both front ends (window and pilothousectl) use this.
namespace pilothouse {

class NativeDriver;
class SshConnection;
class ComposeLogFollower;
struct SwarmView;

enum class ServiceHealth { Unknown, Starting, Healthy, Unhealthy, Down };
QString toString(ServiceHealth health);
std::optional<ServiceHealth> serviceHealthFromString(const QString &text);
// The one order of badness (badges, the tray, aggregates): healthy, unknown,
// starting, unhealthy, down.
int severity(ServiceHealth health);

struct ServiceRow
{
    ServiceState state;
    EndpointStatus http = EndpointStatus::Unknown; // worst of its endpoints
    bool hasEndpoints = false;
    bool configured = false; // listed in the environment
    ServiceHealth health = ServiceHealth::Unknown;
    QString detail; // why it is not healthy
    // Its part in a start-first rollout under way ("old, serving", "new,
    // health gate", "old, draining", ...); empty otherwise.
    QString rollout;
    // Swarm: the service's running and desired replicas ("2/2").
    QString replicas;
};

class StackSession final : public QObject
{
    Q_OBJECT
public:
    explicit StackSession(Environment env, QObject *parent = nullptr);
    ~StackSession() override;

    const Environment &environment() const { return m_env; }
    StackDriver *driver() const { return m_driver.get(); }
    NativeDriver *nativeDriver() const;
    EngineWatcher *watcher() const { return m_watcher.get(); }
    HealthMonitor *monitor() const { return m_monitor.get(); }
    DatabaseProbe *databaseProbe() const { return m_probe.get(); }
    LogStore *logs() const { return m_logs.get(); }
    // The SSH connection its docker calls go through (docker.host ssh://…); else null.
    SshConnection *sshConnection() const { return m_ssh; }

    // Starts watching (engine, health, database); no stack operation.
    void startWatching();
    void stopWatching();
    void setDatabaseInterval(int ms) { m_dbTimer.setInterval(ms); }
    // Probes the database now (databaseChanged follows); one in the stack is
    // looked up first: its address from the engine, the stack's own login.
    void probeDatabase();

    void up();
    void down();
    void restart(const QString &service = {});
    void stopService(const QString &service);
    void startService(const QString &service);
    // Swarm: a service's replicas, and a node's availability ("active",
    // "pause", "drain"); refused for other kinds.
    void scale(const QString &service, int replicas);
    void setNodeAvailability(const QString &node, const QString &availability);
    // Swarm: what the engine says of the stack's services and the nodes;
    // null for other kinds.
    const SwarmView *swarmView() const;
    // Swarm: the next down() removes the stack's volumes too.
    void setRemoveVolumes(bool remove);
    // Builds the backend's image from the checkout (compose; see LocalBuild).
    void build();
    bool canBuild() const;
    void cancel();
    bool isBusy() const;
    // Something a person should read before the next operation's progress.
    void note(const QString &message) { emit progress(message); }

    // While set (a deployment runs), stack operations are refused with this reason.
    void setOperationLock(const QString &reason) { m_lockReason = reason; }
    QString operationLock() const { return m_lockReason; }
    // The backend tag a stack start uses when no container runs to say which
    // (compose): the last one deployed. The engine's running tag always wins.
    void setPinnedTag(const QString &tag) { m_pinnedTag = tag; }
    QString pinnedTag() const { return m_pinnedTag; }
    // The compose variables the next operation passes (image repository and tag).
    QMap<QString, QString> composeVariables() const;
    // What each container is in a rollout under way (container id -> role),
    // set by the deployer; empty when none runs. servicesChanged follows a change.
    void setRolloutRoles(const QHash<QString, QString> &roles);
    // The engine's (or supervisor's) state of one service, if it knows it.
    std::optional<ServiceState> stateOf(const QString &service) const;
    // Every container of a service (more than one while a start-first
    // rollout runs, or when it is scaled).
    QList<ServiceState> statesOf(const QString &service) const;

    // Follows a service's logs (compose: `compose logs -f`; native: always captured).
    void followLogs(const QString &service = {}, int tail = 200);
    void stopFollowingLogs();

    // A native environment owned by another process: show the states its
    // owner reports (see NativeControlClient) instead of our own, idle driver's.
    void adoptStates(const QList<ServiceState> &states) { setStates(states); }

    QList<ServiceRow> services() const;
    // The worst service health; Unknown until something is known.
    ServiceHealth aggregate() const;
    static ServiceHealth combine(const ServiceState &state, bool hasEndpoints, EndpointStatus http,
                                 QString *detail = nullptr);

signals:
    void servicesChanged();
    void operationStarted(pilothouse::StackOperation operation, const QString &service);
    void progress(const QString &message);
    void operationFinished(const pilothouse::OperationResult &result);
    void databaseChanged(const pilothouse::DatabaseFacts &facts);
    void engineStatusChanged(pilothouse::EngineWatcher::EngineStatus status,
                             const QString &message);
    void logsEnded(const QString &error);
    // A build of the checkout was made or found (by build(), or by a start
    // of an environment whose tags come from the engine).
    void built(const pilothouse::Build &build);
    // The SSH connection connected, failed or is connecting again.
    void connectionChanged();

public:
    // Runs `fn` once the engine can be reached: at once without an SSH
    // connection or with one up; else once it connects or fails (then the
    // call fails with the connection's reason). For every engine call made
    // on the session's behalf (the deployer's too).
    void whenReachable(std::function<void()> fn);

private:
    void setStates(const QList<ServiceState> &states);
    // Refuses (after the call returns) when locked; else prepares the driver.
    bool admit(StackOperation op, const QString &service);

    Environment m_env;
    std::unique_ptr<StackDriver> m_driver;
    std::unique_ptr<EngineWatcher> m_watcher;
    std::unique_ptr<HealthMonitor> m_monitor;
    std::unique_ptr<DatabaseProbe> m_probe;
    std::unique_ptr<LogStore> m_logs;
    std::unique_ptr<ComposeLogFollower> m_follower;
    QList<ServiceState> m_states;
    QHash<QString, QString> m_rolloutRoles;
    QTimer m_dbTimer;
    QTimer m_changeCoalesce;
    QString m_lockReason;
    QString m_pinnedTag;
    bool m_probeWhenSeeded = false;
    SshConnection *m_ssh = nullptr;
    QString m_sshError; // why there is no connection for an ssh:// host
    QList<std::function<void()>> m_afterConnect;
    QList<int> m_internalPorts; // local ends of internal endpoints' forwards (SSH)
    int m_dbForward = 0; // the local port of the stack database's forward (SSH)
    QString m_dbForwardTo; // the container address it goes to
};

} // namespace pilothouse
