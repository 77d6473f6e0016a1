#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>

// What the panel knows about one running unit of a stack: a compose
// container or a native process. Value type; drivers and watchers emit lists.
namespace pilothouse {

enum class RunState {
    Unknown,
    Created,
    Starting,
    Running,
    Restarting,
    Paused,
    Stopping,
    Exited,
    Dead,
    NotCreated, // a compose service the engine has no container for
    Unreachable, // seen before; its engine is out of reach now
};
enum class EngineHealth { None, Starting, Healthy, Unhealthy };

QString toString(RunState state);
QString toString(EngineHealth health);
RunState runStateFromDocker(const QString &state);
EngineHealth healthFromDocker(const QString &status);

struct ServiceState
{
    QString service; // compose service or native process name
    QString container; // container name (compose) or "pid 1234" (native)
    QString containerId;
    QString image; // repository[:tag] as configured
    QString tag;
    QString digest; // sha256:... of the repository digest when known
    QString imageId;
    RunState state = RunState::Unknown;
    EngineHealth health = EngineHealth::None;
    int exitCode = -1;
    QStringList ports; // "127.0.0.1:8000->8000/tcp"
    QStringList addresses; // the container's IP addresses on its networks
    QDateTime startedAt;
    QDateTime finishedAt;
    int restartCount = 0;
    qint64 pid = 0;
    QString detail; // e.g. the last failing healthcheck output or why it stopped
    // Swarm: the node (hostname) its task is on, and the task's id (the
    // unit Swarm schedules; containerId is its container once it has one).
    QString node;
    QString taskId;

    bool isRunning() const { return state == RunState::Running; }
    // A stopped service is not healthy; without a healthcheck, running counts as healthy.
    bool isHealthy() const
    {
        return state == RunState::Running &&
            (health == EngineHealth::Healthy || health == EngineHealth::None);
    }
    friend bool operator==(const ServiceState &, const ServiceState &) = default;
};

// "sha256:0123456789ab…" as people read it: "0123456789ab".
QString shortDigest(const QString &digest);
// "sha-1234 (0123456789ab)", or the tag alone when the digest is not known.
QString tagWithDigest(const QString &tag, const QString &digest);

// The JSON form, shared by pilothousectl's output and the native control socket.
QJsonObject toJson(const ServiceState &state);
ServiceState serviceStateFromJson(const QJsonObject &o);

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::ServiceState)
