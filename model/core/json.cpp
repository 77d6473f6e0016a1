#include "core/json.h"

#include "core/session.h"
#include "core/workspace.h"
#include "engine/sshconnection.h"

#include <QJsonArray>

namespace pilothouse {

QString isoTime(const QDateTime &t)
{
    return t.isValid() ? t.toUTC().toString(Qt::ISODate) : QString();
}

QJsonObject toJson(const DatabaseFacts &f)
{
    QJsonObject o;
    o[u"dsn"] = f.dsn;
    o[u"engine"] = f.engine;
    o[u"reachable"] = f.reachable();
    o[u"reachability"] = toString(f.reachability);
    o[u"error"] = f.error;
    o[u"version"] = f.serverVersion;
    o[u"latency_ms"] = f.latencyMs;
    o[u"size_bytes"] = f.sizeBytes;
    o[u"connections_used"] = f.connectionsUsed;
    o[u"connections_max"] = f.connectionsMax;
    o[u"migration_version"] = f.migrationVersion;
    QJsonArray tables;
    for (const TableSize &t : f.largestTables)
        tables.append(QJsonObject { { QStringLiteral("name"), t.name },
                                    { QStringLiteral("bytes"), t.bytes },
                                    { QStringLiteral("rows"), t.rows } });
    o[u"largest_tables"] = tables;
    o[u"checked_at"] = isoTime(f.checkedAt);
    return o;
}

QJsonObject toJson(const EndpointState &e)
{
    QJsonObject o;
    o[u"service"] = e.service;
    o[u"url"] = e.endpoint.url.toString();
    o[u"status"] = toString(e.status);
    o[u"http_status"] = e.httpStatus;
    o[u"latency_ms"] = e.lastLatencyMs;
    o[u"detail"] = e.detail;
    o[u"version"] = e.version;
    o[u"checked_at"] = isoTime(e.lastChecked);
    QJsonArray checks;
    for (const health::Check &c : e.checks) {
        QJsonObject co { { QStringLiteral("name"), c.name },
                         { QStringLiteral("status"), health::toString(c.status) } };
        if (c.observedValue)
            co[u"observed_value"] = *c.observedValue;
        if (!c.output.isEmpty())
            co[u"output"] = c.output;
        checks.append(co);
    }
    o[u"checks"] = checks;
    return o;
}

QJsonObject toJson(const Deployment &d)
{
    return QJsonObject { { QStringLiteral("id"), d.id },
                         { QStringLiteral("service"), d.service },
                         { QStringLiteral("services"),
                           QJsonArray::fromStringList(d.service.split(u',', Qt::SkipEmptyParts)) },
                         { QStringLiteral("from_tag"), d.fromTag },
                         { QStringLiteral("from_digest"), d.fromDigest },
                         { QStringLiteral("to_tag"), d.toTag },
                         { QStringLiteral("to_digest"), d.toDigest },
                         { QStringLiteral("who"), d.who },
                         { QStringLiteral("started_at"), isoTime(d.startedAt) },
                         { QStringLiteral("finished_at"), isoTime(d.finishedAt) },
                         { QStringLiteral("outcome"), toString(d.outcome) },
                         { QStringLiteral("reason"), d.reason },
                         { QStringLiteral("strategy"), d.strategy },
                         { QStringLiteral("log_lines"), QJsonArray::fromStringList(d.logLines) } };
}

QJsonObject toJson(const ImageTag &t)
{
    return QJsonObject { { QStringLiteral("tag"), t.name },
                         { QStringLiteral("built_at"), isoTime(t.builtAt) } };
}

QJsonObject toJson(const Environment &e)
{
    QJsonObject o { { QStringLiteral("name"), e.name },
                    { QStringLiteral("kind"), toString(e.kind) },
                    { QStringLiteral("description"), e.description },
                    { QStringLiteral("valid"), true } };
    if (e.kind == EnvironmentKind::Compose) {
        o[u"project"] = e.project;
        o[u"compose_files"] = QJsonArray::fromStringList(e.composeFiles);
        o[u"docker_host"] = e.dockerHost;
        o[u"docker_context"] = e.dockerContext;
    }
    QJsonArray services;
    for (const WatchedService &s : e.services)
        services.append(s.name);
    o[u"services"] = services;
    if (e.database)
        o[u"database"] = e.database->displayDsn();
    if (!e.imageRepository.isEmpty())
        o[u"image"] = QJsonObject {
            { QStringLiteral("repository"), e.imageRepository },
            { QStringLiteral("service"), e.backendService() }, // the older form, kept for scripts
            { QStringLiteral("services"), QJsonArray::fromStringList(e.imageServices) }
        };
    return o;
}

QJsonObject toJson(const DeployResult &r, const QString &environment, const QStringList &services,
                   const QString &runningTag)
{
    const Deployment &d = r.deployment;
    return QJsonObject { { QStringLiteral("environment"), environment },
                         { QStringLiteral("service"), services.value(0) },
                         { QStringLiteral("services"), QJsonArray::fromStringList(services) },
                         { QStringLiteral("outcome"), toString(r.outcome) },
                         { QStringLiteral("message"), r.message },
                         { QStringLiteral("deployment_id"), d.id },
                         { QStringLiteral("from_tag"), d.fromTag },
                         { QStringLiteral("from_digest"), d.fromDigest },
                         { QStringLiteral("to_tag"), d.toTag },
                         { QStringLiteral("to_digest"), d.toDigest },
                         { QStringLiteral("running_tag"), runningTag },
                         { QStringLiteral("schema_warning"), r.schemaWarning },
                         { QStringLiteral("elapsed_ms"), r.elapsedMs },
                         { QStringLiteral("health_window_ms"), r.healthWindowMs },
                         { QStringLiteral("log_lines"), QJsonArray::fromStringList(r.logLines) } };
}

QJsonObject statusJson(const StackSession &session)
{
    const Environment &env = session.environment();
    QJsonObject o;
    o[u"environment"] = env.name;
    o[u"kind"] = toString(env.kind);
    o[u"health"] = toString(session.aggregate());
    if (const EngineWatcher *w = session.watcher()) {
        const bool down = w->engineStatus() == EngineWatcher::EngineStatus::Disconnected;
        o[u"engine"] =
            QJsonObject { { QStringLiteral("status"),
                            down ? QStringLiteral("disconnected") : QStringLiteral("connected") },
                          { QStringLiteral("error"), w->engineError() } };
    }
    if (const SshConnection *c = session.sshConnection()) {
        o[u"connection"] = QJsonObject { { QStringLiteral("via"), QStringLiteral("ssh") },
                                         { QStringLiteral("target"), c->target().display() },
                                         { QStringLiteral("state"), toString(c->state()) },
                                         { QStringLiteral("reason"), c->reason() } };
    }
    QJsonArray services;
    for (const ServiceRow &r : session.services())
        services.append(toJson(r));
    o[u"services"] = services;
    if (const SwarmView *view = session.swarmView())
        o[u"swarm"] = toJson(*view);
    if (session.databaseProbe())
        o[u"database"] = toJson(session.databaseProbe()->facts());
    return o;
}

QJsonObject toJson(const SwarmNode &n)
{
    return QJsonObject { { QStringLiteral("id"), n.id },
                         { QStringLiteral("hostname"), n.hostname },
                         { QStringLiteral("role"), n.role },
                         { QStringLiteral("availability"), n.availability },
                         { QStringLiteral("status"), n.status },
                         { QStringLiteral("manager_status"), n.managerStatus },
                         { QStringLiteral("engine_version"), n.engineVersion },
                         { QStringLiteral("self"), n.self } };
}

QJsonObject toJson(const SwarmView &view)
{
    QJsonArray services;
    for (const SwarmService &s : view.services)
        services.append(
            QJsonObject { { QStringLiteral("name"), s.name },
                          { QStringLiteral("engine_name"), s.fullName },
                          { QStringLiteral("mode"),
                            s.global ? QStringLiteral("global") : QStringLiteral("replicated") },
                          { QStringLiteral("desired"), s.desired },
                          { QStringLiteral("running"), s.running },
                          { QStringLiteral("image"), s.image },
                          { QStringLiteral("digest"), s.digest },
                          { QStringLiteral("update_state"), s.updateState },
                          { QStringLiteral("update_message"), s.updateMessage } });
    QJsonArray nodes;
    for (const SwarmNode &n : view.nodes)
        nodes.append(toJson(n));
    QJsonObject o { { QStringLiteral("services"), services }, { QStringLiteral("nodes"), nodes } };
    if (!view.problem.isEmpty())
        o[u"problem"] = view.problem;
    return o;
}

QJsonObject liveJson(const StackSession &session)
{
    QJsonArray services;
    for (const ServiceRow &r : session.services())
        services.append(toJson(r));
    return QJsonObject { { QStringLiteral("environment"), session.environment().name },
                         { QStringLiteral("health"), toString(session.aggregate()) },
                         { QStringLiteral("services"), services } };
}

QJsonObject healthJson(const QString &environment, const HealthMonitor &monitor)
{
    QJsonArray list;
    for (int id : monitor.ids())
        list.append(toJson(*monitor.endpoint(id)));
    return QJsonObject { { QStringLiteral("environment"), environment },
                         { QStringLiteral("endpoints"), list } };
}

QJsonObject tagsJson(const QString &repository, const QList<ImageTag> &tags)
{
    QJsonArray names;
    QJsonArray builds;
    for (const ImageTag &t : tags) {
        names.append(t.name);
        builds.append(toJson(t));
    }
    return QJsonObject { { QStringLiteral("repository"), repository },
                         { QStringLiteral("tags"), names },
                         { QStringLiteral("builds"), builds } };
}

QJsonObject historyJson(const QString &environment, const QList<Deployment> &rows)
{
    QJsonArray list;
    for (const Deployment &d : rows)
        list.append(toJson(d));
    return QJsonObject { { QStringLiteral("environment"), environment },
                         { QStringLiteral("deployments"), list } };
}

QJsonObject environmentsJson(const EnvironmentSet &set)
{
    QJsonArray list;
    for (const Environment &e : set.environments)
        list.append(toJson(e));
    // Listed too, so that a script sees why one is missing.
    for (const InvalidEnvironment &e : set.invalid) {
        QJsonObject o { { QStringLiteral("name"), e.name },
                        { QStringLiteral("kind"), e.kind },
                        { QStringLiteral("valid"), false },
                        { QStringLiteral("reason"), e.reason },
                        { QStringLiteral("needs_stack_folder"), e.needsStackFolder } };
        if (!e.description.isEmpty())
            o.insert(QStringLiteral("description"), e.description);
        list.append(o);
    }
    const StackFolder stack = stackFolder();
    return QJsonObject { { QStringLiteral("source"), set.source },
                         { QStringLiteral("stack_folder"),
                           stack.path.isEmpty() ? QJsonValue() : QJsonValue(stack.path) },
                         { QStringLiteral("environments"), list } };
}

QJsonObject refusalJson(const QString &environment, const QString &message)
{
    return QJsonObject { { QStringLiteral("environment"), environment },
                         { QStringLiteral("outcome"), toString(DeploymentOutcome::Refused) },
                         { QStringLiteral("message"), message } };
}

} // namespace pilothouse
