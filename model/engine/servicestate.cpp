#include "engine/servicestate.h"

#include <QJsonArray>

namespace pilothouse {

QString toString(RunState state)
{
    switch (state) {
    case RunState::Unknown:
        return QStringLiteral("unknown");
    case RunState::Created:
        return QStringLiteral("created");
    case RunState::Starting:
        return QStringLiteral("starting");
    case RunState::Running:
        return QStringLiteral("running");
    case RunState::Restarting:
        return QStringLiteral("restarting");
    case RunState::Paused:
        return QStringLiteral("paused");
    case RunState::Stopping:
        return QStringLiteral("stopping");
    case RunState::Exited:
        return QStringLiteral("exited");
    case RunState::Dead:
        return QStringLiteral("dead");
    case RunState::NotCreated:
        return QStringLiteral("not created");
    case RunState::Unreachable:
        return QStringLiteral("unreachable");
    }
    return {};
}

QString toString(EngineHealth health)
{
    switch (health) {
    case EngineHealth::None:
        return QStringLiteral("none");
    case EngineHealth::Starting:
        return QStringLiteral("starting");
    case EngineHealth::Healthy:
        return QStringLiteral("healthy");
    case EngineHealth::Unhealthy:
        return QStringLiteral("unhealthy");
    }
    return {};
}

RunState runStateFromDocker(const QString &state)
{
    if (state == QLatin1String("running"))
        return RunState::Running;
    if (state == QLatin1String("created"))
        return RunState::Created;
    if (state == QLatin1String("restarting"))
        return RunState::Restarting;
    if (state == QLatin1String("paused"))
        return RunState::Paused;
    if (state == QLatin1String("exited"))
        return RunState::Exited;
    if (state == QLatin1String("dead"))
        return RunState::Dead;
    if (state == QLatin1String("removing"))
        return RunState::Stopping;
    return RunState::Unknown;
}

EngineHealth healthFromDocker(const QString &status)
{
    if (status == QLatin1String("healthy"))
        return EngineHealth::Healthy;
    if (status == QLatin1String("unhealthy"))
        return EngineHealth::Unhealthy;
    if (status == QLatin1String("starting"))
        return EngineHealth::Starting;
    return EngineHealth::None;
}

static QString iso(const QDateTime &t)
{
    return t.isValid() ? t.toUTC().toString(Qt::ISODateWithMs) : QString();
}

QJsonObject toJson(const ServiceState &s)
{
    QJsonObject o {
        { QStringLiteral("service"), s.service },
        { QStringLiteral("container"), s.container },
        { QStringLiteral("container_id"), s.containerId },
        { QStringLiteral("image"), s.image },
        { QStringLiteral("tag"), s.tag },
        { QStringLiteral("digest"), s.digest },
        { QStringLiteral("state"), toString(s.state) },
        { QStringLiteral("engine_health"), toString(s.health) },
        { QStringLiteral("exit_code"), s.exitCode },
        { QStringLiteral("ports"), QJsonArray::fromStringList(s.ports) },
        { QStringLiteral("started_at"), iso(s.startedAt) },
        { QStringLiteral("finished_at"), iso(s.finishedAt) },
        { QStringLiteral("restart_count"), s.restartCount },
        { QStringLiteral("pid"), s.pid },
        { QStringLiteral("detail"), s.detail },
    };
    if (!s.node.isEmpty())
        o.insert(QStringLiteral("node"), s.node);
    return o;
}

ServiceState serviceStateFromJson(const QJsonObject &o)
{
    ServiceState s;
    s.service = o.value(QStringLiteral("service")).toString();
    s.container = o.value(QStringLiteral("container")).toString();
    s.containerId = o.value(QStringLiteral("container_id")).toString();
    s.image = o.value(QStringLiteral("image")).toString();
    s.tag = o.value(QStringLiteral("tag")).toString();
    s.digest = o.value(QStringLiteral("digest")).toString();
    const QString state = o.value(QStringLiteral("state")).toString();
    for (RunState r :
         { RunState::Unknown, RunState::Created, RunState::Starting, RunState::Running,
           RunState::Restarting, RunState::Paused, RunState::Stopping, RunState::Exited,
           RunState::Dead, RunState::NotCreated, RunState::Unreachable }) {
        if (toString(r) == state)
            s.state = r;
    }
    s.health = healthFromDocker(o.value(QStringLiteral("engine_health")).toString());
    s.exitCode = o.value(QStringLiteral("exit_code")).toInt(-1);
    s.ports = o.value(QStringLiteral("ports")).toVariant().toStringList();
    s.startedAt =
        QDateTime::fromString(o.value(QStringLiteral("started_at")).toString(), Qt::ISODateWithMs);
    s.finishedAt =
        QDateTime::fromString(o.value(QStringLiteral("finished_at")).toString(), Qt::ISODateWithMs);
    s.restartCount = o.value(QStringLiteral("restart_count")).toInt();
    s.pid = o.value(QStringLiteral("pid")).toInteger();
    s.detail = o.value(QStringLiteral("detail")).toString();
    s.node = o.value(QStringLiteral("node")).toString();
    return s;
}

QString shortDigest(const QString &digest)
{
    return digest.startsWith(QLatin1String("sha256:")) ? digest.mid(7, 12) : digest.left(12);
}

QString tagWithDigest(const QString &tag, const QString &digest)
{
    return digest.isEmpty() ? tag : QStringLiteral("%1 (%2)").arg(tag, shortDigest(digest));
}

} // namespace pilothouse
