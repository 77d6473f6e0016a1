#pragma once

#include "db/databaseprobe.h"
#include "deploy/deployer.h"
#include "deploy/history.h"
#include "env/environment.h"
#include "monitor/healthmonitor.h"
#include "swarm/swarmwatcher.h"

#include <QJsonObject>

// Every JSON shape the panel shows (pilothousectl --json, the owner socket,
// the window's memory of the last state) is made here, once, so the faces
// never disagree about a field's name or form. Times are ISO-8601 UTC.
namespace pilothouse {

class StackSession;

QString isoTime(const QDateTime &t);

QJsonObject toJson(const DatabaseFacts &facts);
QJsonObject toJson(const EndpointState &endpoint);
QJsonObject toJson(const Deployment &deployment);
QJsonObject toJson(const ImageTag &tag);
// An environment as `envs` lists it (no secrets: the DSN as displayed).
QJsonObject toJson(const Environment &env);
QJsonObject toJson(const SwarmNode &node);
QJsonObject toJson(const SwarmView &view);
// What a deployment or rollback came to, with what runs now.
QJsonObject toJson(const DeployResult &result, const QString &environment,
                   const QStringList &services, const QString &runningTag);
// An environment's status: health, engine, services and database.
QJsonObject statusJson(const StackSession &session);
// One line of a supervising `up`: the environment, its health and services.
QJsonObject liveJson(const StackSession &session);
// The lists pilothousectl prints, each under its environment or source.
QJsonObject healthJson(const QString &environment, const HealthMonitor &monitor);
QJsonObject tagsJson(const QString &repository, const QList<ImageTag> &tags);
QJsonObject historyJson(const QString &environment, const QList<Deployment> &rows);
QJsonObject environmentsJson(const EnvironmentSet &set);
// A deployment or rollback refused before it started.
QJsonObject refusalJson(const QString &environment, const QString &message);

} // namespace pilothouse
