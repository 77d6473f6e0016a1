#include "swarm/swarmwatcher.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>

namespace pilothouse {

namespace {
constexpr int kCallTimeoutMs = 30000;
constexpr int kCoalesceMs = 40;
const QString kStackLabel = QStringLiteral("com.docker.stack.namespace");
const QString kStoppedLabel = QStringLiteral("pilothouse.stopped-replicas");

QString str(const QJsonObject &o, const char *key)
{
    return o.value(QLatin1String(key)).toString();
}

QJsonObject obj(const QJsonObject &o, const char *key)
{
    return o.value(QLatin1String(key)).toObject();
}

QDateTime swarmTime(const QString &text)
{
    if (text.isEmpty() || text.startsWith(QLatin1String("0001-")))
        return {};
    return QDateTime::fromString(text, Qt::ISODateWithMs);
}

// "repo:tag@sha256:..." -> ("repo:tag", "sha256:...")
std::pair<QString, QString> splitDigest(const QString &image)
{
    const qsizetype at = image.indexOf(QLatin1Char('@'));
    if (at < 0)
        return { image, {} };
    return { image.left(at), image.mid(at + 1) };
}

QString tagOf(const QString &reference)
{
    const qsizetype slash = reference.lastIndexOf(QLatin1Char('/'));
    const qsizetype colon = reference.lastIndexOf(QLatin1Char(':'));
    return colon > slash ? reference.mid(colon + 1) : QStringLiteral("latest");
}

RunState taskRunState(const QString &state, const QString &desired)
{
    if (state == QLatin1String("running"))
        return desired == QLatin1String("running") ? RunState::Running : RunState::Stopping;
    if (state == QLatin1String("new") || state == QLatin1String("pending") ||
        state == QLatin1String("assigned") || state == QLatin1String("accepted") ||
        state == QLatin1String("preparing") || state == QLatin1String("ready") ||
        state == QLatin1String("starting"))
        return desired == QLatin1String("running") || desired == QLatin1String("ready")
            ? RunState::Starting
            : RunState::Stopping;
    if (state == QLatin1String("complete") || state == QLatin1String("shutdown") ||
        state == QLatin1String("failed"))
        return RunState::Exited;
    if (state == QLatin1String("rejected"))
        return RunState::Dead;
    if (state == QLatin1String("remove"))
        return RunState::Stopping;
    return RunState::Unknown;
}

bool terminal(const QString &state)
{
    return state == QLatin1String("complete") || state == QLatin1String("shutdown") ||
        state == QLatin1String("failed") || state == QLatin1String("rejected") ||
        state == QLatin1String("orphaned") || state == QLatin1String("remove");
}

} // namespace

QString SwarmService::replicasText() const
{
    return QStringLiteral("%1/%2").arg(running).arg(desired);
}

const SwarmService *SwarmView::service(const QString &name) const
{
    for (const SwarmService &s : services) {
        if (s.name == name)
            return &s;
    }
    return nullptr;
}

QString swarmProblem(const QString &localNodeState, bool controlAvailable)
{
    if (localNodeState == QLatin1String("active"))
        return controlAvailable
            ? QString()
            : QStringLiteral("This engine is a swarm worker, and only a manager runs stacks: "
                             "point the environment at a manager (`docker node ls` on one "
                             "lists them), or promote this node there with `docker node "
                             "promote NODE`.");
    if (localNodeState == QLatin1String("locked"))
        return QStringLiteral("The swarm on this engine is locked: unlock it with `docker swarm "
                              "unlock` and its unlock key.");
    if (localNodeState == QLatin1String("pending"))
        return QStringLiteral("This engine is still joining its swarm: wait for `docker info` "
                              "to say \"Swarm: active\".");
    if (localNodeState == QLatin1String("error"))
        return QStringLiteral("The engine's swarm is in error (`docker info` says why): "
                              "repair it, or leave it with `docker swarm leave --force` and "
                              "init again.");
    return QStringLiteral("This engine is not in a swarm: make it a manager with `docker swarm "
                          "init` (on a single host: `docker swarm init --advertise-addr "
                          "127.0.0.1`), or point the environment at a manager of yours.");
}

struct SwarmWatcher::Seed
{
    quint64 generation = 0;
    int step = 0;
    QString selfId;
    QString problem;
    QList<SwarmService> services;
    QHash<QString, QString> serviceNames; // service id -> short name
    QJsonArray tasks;
    QList<SwarmNode> nodes;
    QHash<QString, QJsonObject> containers; // container id -> inspect (this node's)
};

SwarmWatcher::SwarmWatcher(Environment env, QObject *parent)
    : EngineWatcher(std::move(env), parent)
{
    m_seedTimer.setSingleShot(true);
    m_seedTimer.setInterval(kCoalesceMs);
    connect(&m_seedTimer, &QTimer::timeout, this, &SwarmWatcher::seed);
}

SwarmWatcher::~SwarmWatcher()
{
    stop();
}

void SwarmWatcher::stop()
{
    EngineWatcher::stop();
    m_seeding = false;
    m_seedAgain = false;
    m_seedTimer.stop();
}

void SwarmWatcher::refresh()
{
    if (m_running)
        scheduleSeed();
}

void SwarmWatcher::call(const QStringList &args, const QString &what,
                        std::function<void(const CommandResult &)> done)
{
    const quint64 generation = m_generation;
    auto *cmd = new Command(dockerCommand(m_env, args, kCallTimeoutMs, what), this);
    connect(cmd, &Command::finished, this,
            [this, cmd, generation, done = std::move(done)](const CommandResult &r) {
                cmd->deleteLater();
                if (generation != m_generation || !m_running)
                    return;
                done(r);
            });
    cmd->start();
}

void SwarmWatcher::startEvents()
{
    // Services and nodes (a manager's events), and the stack's containers on
    // this node; filtered by stack below (a label filter would drop nodes).
    startEventStream({ QStringLiteral("type=service"), QStringLiteral("type=container"),
                       QStringLiteral("type=node") });
}

void SwarmWatcher::scheduleSeed()
{
    if (!m_seedTimer.isActive())
        m_seedTimer.start();
}

void SwarmWatcher::seed()
{
    if (!m_running)
        return;
    if (m_seeding && m_seedGeneration == m_generation) {
        m_seedAgain = true; // once this one is done, with what changed meanwhile
        return;
    }
    m_seeding = true;
    m_seedGeneration = m_generation;
    auto s = std::make_shared<Seed>();
    s->generation = m_generation;
    seedStep(s);
}

// One call after the other: swarm membership, the stack's services, their
// tasks, the nodes, then this node's containers of those tasks (health).
void SwarmWatcher::seedStep(const std::shared_ptr<Seed> &s)
{
    switch (s->step++) {
    case 0:
        call({ QStringLiteral("info"), QStringLiteral("--format"),
               QStringLiteral("{{json .Swarm}}") },
             QStringLiteral("docker info"), [this, s](const CommandResult &r) {
                 if (!r.ok()) {
                     disconnected(explainDockerFailure(
                         r, QStringLiteral("asking the engine (docker info)"), m_env));
                     return;
                 }
                 const QJsonObject swarm =
                     QJsonDocument::fromJson(r.output.trimmed().toUtf8()).object();
                 s->selfId = str(swarm, "NodeID");
                 s->problem =
                     swarmProblem(str(swarm, "LocalNodeState"),
                                  swarm.value(QStringLiteral("ControlAvailable")).toBool());
                 if (!s->problem.isEmpty()) {
                     finishSeed(s);
                     return;
                 }
                 seedStep(s);
             });
        return;
    case 1:
        call({ QStringLiteral("service"), QStringLiteral("ls"), QStringLiteral("--quiet"),
               QStringLiteral("--filter"),
               QStringLiteral("label=%1=%2").arg(kStackLabel, m_env.stackName()) },
             QStringLiteral("docker service ls"), [this, s](const CommandResult &r) {
                 if (!r.ok()) {
                     disconnected(
                         explainDockerFailure(r, QStringLiteral("docker service ls"), m_env));
                     return;
                 }
                 const QStringList ids = r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
                 if (ids.isEmpty()) {
                     s->step = 4; // no services, so no tasks: the nodes next
                     seedStep(s);
                     return;
                 }
                 call(QStringList { QStringLiteral("service"), QStringLiteral("inspect") } + ids,
                      QStringLiteral("docker service inspect"), [this, s](const CommandResult &i) {
                          // Exit 1 with output: a service removed in between.
                          if (i.end != CommandResult::End::Exited || i.output.trimmed().isEmpty()) {
                              if (i.errorOutput.contains(QLatin1String("No such"))) {
                                  seedStep(s);
                                  return;
                              }
                              disconnected(explainDockerFailure(
                                  i, QStringLiteral("docker service inspect"), m_env));
                              return;
                          }
                          const QString prefix = m_env.stackName() + QLatin1Char('_');
                          for (const QJsonValue &v :
                               QJsonDocument::fromJson(i.output.toUtf8()).array()) {
                              const QJsonObject o = v.toObject();
                              const QJsonObject spec = obj(o, "Spec");
                              SwarmService svc;
                              svc.id = str(o, "ID");
                              svc.fullName = str(spec, "Name");
                              svc.name = svc.fullName.startsWith(prefix)
                                  ? svc.fullName.mid(prefix.size())
                                  : svc.fullName;
                              const QJsonObject mode = obj(spec, "Mode");
                              svc.global = mode.contains(QStringLiteral("Global"));
                              svc.desired =
                                  obj(mode, "Replicated").value(QStringLiteral("Replicas")).toInt();
                              const auto [image, digest] = splitDigest(
                                  str(obj(obj(spec, "TaskTemplate"), "ContainerSpec"), "Image"));
                              svc.image = image;
                              svc.digest = digest;
                              const QJsonObject update = obj(o, "UpdateStatus");
                              svc.updateState = str(update, "State");
                              svc.updateMessage = str(update, "Message");
                              svc.stoppedReplicas =
                                  obj(spec, "Labels").value(kStoppedLabel).toString().toInt();
                              s->serviceNames.insert(svc.id, svc.name);
                              s->services << svc;
                          }
                          seedStep(s);
                      });
             });
        return;
    case 2: {
        QStringList ids;
        for (const SwarmService &svc : std::as_const(s->services))
            ids << svc.id;
        if (ids.isEmpty()) {
            seedStep(s);
            return;
        }
        call(QStringList { QStringLiteral("service"), QStringLiteral("ps"),
                           QStringLiteral("--quiet"), QStringLiteral("--no-trunc") } +
                 ids,
             QStringLiteral("docker service ps"), [this, s](const CommandResult &r) {
                 const QStringList tasks = r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
                 if (tasks.isEmpty()) {
                     if (r.end != CommandResult::End::Exited) {
                         disconnected(
                             explainDockerFailure(r, QStringLiteral("docker service ps"), m_env));
                         return;
                     }
                     s->step = 4;
                     seedStep(s);
                     return;
                 }
                 call(QStringList { QStringLiteral("inspect"), QStringLiteral("--type"),
                                    QStringLiteral("task") } +
                          tasks,
                      QStringLiteral("docker inspect (tasks)"), [this, s](const CommandResult &i) {
                          if (i.end != CommandResult::End::Exited) {
                              disconnected(
                                  explainDockerFailure(i, QStringLiteral("docker inspect"), m_env));
                              return;
                          }
                          s->tasks = QJsonDocument::fromJson(i.output.toUtf8()).array();
                          seedStep(s);
                      });
             });
        return;
    }
    case 3:
        seedStep(s); // (the tasks' step ends here; kept apart for the skip above)
        return;
    case 4:
        call({ QStringLiteral("node"), QStringLiteral("ls"), QStringLiteral("--format"),
               QStringLiteral("{{json .}}") },
             QStringLiteral("docker node ls"), [this, s](const CommandResult &r) {
                 if (!r.ok()) {
                     disconnected(explainDockerFailure(r, QStringLiteral("docker node ls"), m_env));
                     return;
                 }
                 for (const QString &line : r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
                     const QJsonObject o = QJsonDocument::fromJson(line.toUtf8()).object();
                     SwarmNode n;
                     n.id = str(o, "ID");
                     n.hostname = str(o, "Hostname");
                     n.availability = str(o, "Availability").toLower();
                     n.status = str(o, "Status").toLower();
                     n.managerStatus = str(o, "ManagerStatus");
                     n.role = n.managerStatus.isEmpty() ? QStringLiteral("worker")
                                                        : QStringLiteral("manager");
                     n.engineVersion = str(o, "EngineVersion");
                     const QJsonValue self = o.value(QStringLiteral("Self"));
                     n.self =
                         self.isBool() ? self.toBool() : self.toString() == QLatin1String("true");
                     if (n.id.endsWith(QLatin1Char('*')))
                         n.id.chop(1);
                     n.id = n.id.trimmed();
                     s->nodes << n;
                 }
                 seedStep(s);
             });
        return;
    case 5: {
        // Health is the engine's verdict on the container, which only the
        // node that runs it knows: asked of this engine for its own tasks.
        QStringList ids;
        for (const QJsonValue &v : std::as_const(s->tasks)) {
            const QJsonObject t = v.toObject();
            const QString container = str(obj(obj(t, "Status"), "ContainerStatus"), "ContainerID");
            if (!container.isEmpty() && str(t, "NodeID") == s->selfId &&
                !terminal(str(obj(t, "Status"), "State")))
                ids << container;
        }
        if (ids.isEmpty()) {
            finishSeed(s);
            return;
        }
        call(QStringList { QStringLiteral("container"), QStringLiteral("inspect") } + ids,
             QStringLiteral("docker container inspect"), [this, s](const CommandResult &r) {
                 for (const QJsonValue &v : QJsonDocument::fromJson(r.output.toUtf8()).array()) {
                     const QJsonObject c = v.toObject();
                     s->containers.insert(str(c, "Id"), c);
                 }
                 finishSeed(s);
             });
        return;
    }
    default:
        finishSeed(s);
    }
}

void SwarmWatcher::finishSeed(const std::shared_ptr<Seed> &s)
{
    m_seeding = false;
    m_backoffMs = 0;
    setStatus(EngineStatus::Connected, {});

    QHash<QString, QString> hostnames;
    for (const SwarmNode &n : std::as_const(s->nodes))
        hostnames.insert(n.id, n.hostname);

    // Per slot (or per node for a global service), the newest task that
    // runs or is meant to; the failed ones before it count as restarts.
    struct Slot
    {
        QList<QJsonObject> tasks;
    };
    QHash<QString, Slot> bySlot;
    for (const QJsonValue &v : std::as_const(s->tasks)) {
        const QJsonObject t = v.toObject();
        const QString service = s->serviceNames.value(str(t, "ServiceID"));
        if (service.isEmpty())
            continue;
        const int slot = t.value(QStringLiteral("Slot")).toInt();
        const QString key =
            service + QLatin1Char('/') + (slot > 0 ? QString::number(slot) : str(t, "NodeID"));
        bySlot[key].tasks << t;
    }
    QHash<QString, ServiceState> states;
    QHash<QString, int> running;
    for (auto it = bySlot.begin(); it != bySlot.end(); ++it) {
        auto &tasks = it->tasks;
        std::sort(tasks.begin(), tasks.end(), [](const QJsonObject &a, const QJsonObject &b) {
            return str(a, "CreatedAt") > str(b, "CreatedAt");
        });
        int failures = 0;
        QString lastFailure;
        for (const QJsonObject &t : std::as_const(tasks)) {
            const QJsonObject status = obj(t, "Status");
            if (str(status, "State") == QLatin1String("failed") ||
                str(status, "State") == QLatin1String("rejected")) {
                ++failures;
                if (lastFailure.isEmpty())
                    lastFailure = str(status, "Err");
            }
        }
        for (const QJsonObject &t : std::as_const(tasks)) {
            const QJsonObject status = obj(t, "Status");
            const QString state = str(status, "State");
            const QString desired = str(t, "DesiredState");
            // Shown: a task meant to run, or one still running on its way out.
            if (desired != QLatin1String("running") && desired != QLatin1String("ready") &&
                terminal(state))
                continue;
            ServiceState st;
            st.service = s->serviceNames.value(str(t, "ServiceID"));
            const int slot = t.value(QStringLiteral("Slot")).toInt();
            st.taskId = str(t, "ID");
            st.node = hostnames.value(str(t, "NodeID"), str(t, "NodeID").left(12));
            st.container = slot > 0 ? QStringLiteral("%1.%2").arg(st.service).arg(slot)
                                    : QStringLiteral("%1.%2").arg(st.service, st.node);
            const QJsonObject cs = obj(status, "ContainerStatus");
            st.containerId = str(cs, "ContainerID");
            st.pid = cs.value(QStringLiteral("PID")).toInteger();
            const auto [image, digest] =
                splitDigest(str(obj(obj(t, "Spec"), "ContainerSpec"), "Image"));
            st.image = image;
            st.tag = tagOf(image);
            st.digest = digest;
            st.state = taskRunState(state, desired);
            if (st.state == RunState::Running)
                st.startedAt = swarmTime(str(status, "Timestamp"));
            st.restartCount = failures;
            st.detail = str(status, "Err");
            if (st.detail.isEmpty() && st.state == RunState::Starting)
                st.detail = QStringLiteral("%1: %2").arg(state, str(status, "Message"));
            if (st.state == RunState::Stopping)
                st.detail = QStringLiteral("being replaced (%1)").arg(state);
            if (st.detail.isEmpty() && !lastFailure.isEmpty() && st.state != RunState::Running)
                st.detail = QStringLiteral("replaces a task that failed: %1").arg(lastFailure);
            for (const QJsonValue &p :
                 obj(status, "PortStatus").value(QStringLiteral("Ports")).toArray()) {
                const QJsonObject port = p.toObject();
                st.ports << QStringLiteral("0.0.0.0:%1->%2/%3 (%4)")
                                .arg(port.value(QStringLiteral("PublishedPort")).toInt())
                                .arg(port.value(QStringLiteral("TargetPort")).toInt())
                                .arg(str(port, "Protocol"), str(port, "PublishMode"));
            }
            for (const QJsonValue &a : t.value(QStringLiteral("NetworksAttachments")).toArray()) {
                for (const QJsonValue &addr :
                     a.toObject().value(QStringLiteral("Addresses")).toArray())
                    st.addresses << addr.toString().section(QLatin1Char('/'), 0, 0);
            }
            if (const auto c = s->containers.constFind(st.containerId); c != s->containers.cend()) {
                const QJsonObject health = obj(obj(*c, "State"), "Health");
                st.health = healthFromDocker(str(health, "Status"));
                if (st.health == EngineHealth::Unhealthy) {
                    const QJsonArray log = health.value(QStringLiteral("Log")).toArray();
                    if (!log.isEmpty())
                        st.detail = log.last()
                                        .toObject()
                                        .value(QStringLiteral("Output"))
                                        .toString()
                                        .trimmed();
                }
                st.startedAt = swarmTime(str(obj(*c, "State"), "StartedAt"));
            }
            if (st.state == RunState::Exited)
                st.exitCode = cs.value(QStringLiteral("ExitCode")).toInt();
            if (st.state == RunState::Running)
                running[st.service] += 1;
            states.insert(st.taskId, st);
        }
    }
    for (SwarmService &svc : s->services) {
        svc.running = running.value(svc.name);
        if (svc.global) {
            int eligible = 0;
            for (const SwarmNode &n : std::as_const(s->nodes))
                eligible +=
                    n.availability == QLatin1String("active") && n.status == QLatin1String("ready");
            svc.desired = eligible;
        }
    }
    std::sort(s->services.begin(), s->services.end(),
              [](const SwarmService &a, const SwarmService &b) { return a.name < b.name; });

    const bool changedStates = states != m_states;
    m_states = states;
    m_view.problem = s->problem;
    m_view.services = s->services;
    m_view.nodes = s->nodes;
    if (changedStates || !m_seeded)
        publish();
    emit viewChanged();
    m_seeded = true;
    emit seeded();
    if (std::exchange(m_seedAgain, false))
        scheduleSeed();
}

void SwarmWatcher::onEventLine(const QString &line)
{
    const QJsonObject e = QJsonDocument::fromJson(line.toUtf8()).object();
    const QString type = str(e, "Type");
    const QString action = str(e, "Action");
    const QJsonObject actor = obj(e, "Actor");
    const QJsonObject attrs = obj(actor, "Attributes");
    if (type == QLatin1String("container")) {
        if (attrs.value(kStackLabel).toString() != m_env.stackName())
            return;
        if (action.startsWith(QLatin1String("exec_")) || action == QLatin1String("attach") ||
            action == QLatin1String("resize") || action == QLatin1String("top"))
            return;
        // What the event itself says, at once; the seed that follows has the rest.
        const QString id = str(actor, "ID");
        for (auto it = m_states.begin(); it != m_states.end(); ++it) {
            if (it->containerId != id)
                continue;
            const ServiceState before = *it;
            if (action == QLatin1String("die")) {
                it->state = RunState::Exited;
                it->exitCode = attrs.value(QStringLiteral("exitCode")).toString().toInt();
                it->finishedAt = QDateTime::currentDateTimeUtc();
                if (it->health != EngineHealth::None)
                    it->health = EngineHealth::Unhealthy;
            } else if (action.startsWith(QLatin1String("health_status: "))) {
                it->health = healthFromDocker(action.mid(15));
            } else if (action == QLatin1String("start")) {
                it->state = RunState::Running;
            }
            if (*it != before)
                publish();
            break;
        }
    } else if (type == QLatin1String("service")) {
        if (!attrs.value(QStringLiteral("name"))
                 .toString()
                 .startsWith(m_env.stackName() + QLatin1Char('_')))
            return;
    } else if (type != QLatin1String("node")) {
        return;
    }
    scheduleSeed();
}

} // namespace pilothouse
