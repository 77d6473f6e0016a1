#pragma once

#include "db/databaseprobe.h"
#include "deploy/deployer.h"
#include "deploy/history.h"
#include "env/environment.h"
#include "monitor/healthmonitor.h"

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
// What a deployment or rollback came to, with what runs now.
QJsonObject toJson(const DeployResult &result, const QString &environment,
                   const QStringList &services, const QString &runningTag);
// An environment's status: health, engine, services and database.
QJsonObject statusJson(const StackSession &session);

} // namespace pilothouse
