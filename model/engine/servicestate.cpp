#include "engine/servicestate.h"

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

} // namespace pilothouse
