#include "engine/enginewatcher.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>
#include <algorithm>

Q_LOGGING_CATEGORY(lcEngine, "pilothouse.engine", QtWarningMsg)

namespace pilothouse {

namespace {
constexpr int kCallTimeoutMs = 30000;
constexpr int kCoalesceMs = 30;
constexpr int kFirstBackoffMs = 500;
constexpr int kMaxBackoffMs = 5000;
const QString kProjectLabel = QStringLiteral("com.docker.compose.project");
const QString kServiceLabel = QStringLiteral("com.docker.compose.service");

QString splitTag(const QString &image, QString *repository)
{
    const qsizetype at = image.indexOf(QLatin1Char('@'));
    const QString ref = at >= 0 ? image.left(at) : image;
    const qsizetype slash = ref.lastIndexOf(QLatin1Char('/'));
    const qsizetype colon = ref.lastIndexOf(QLatin1Char(':'));
    if (colon > slash) {
        *repository = ref.left(colon);
        return ref.mid(colon + 1);
    }
    *repository = ref;
    return at >= 0 ? QString() : QStringLiteral("latest");
}

QStringList formatPorts(const QJsonObject &ports)
{
    QStringList out;
    for (auto it = ports.begin(); it != ports.end(); ++it) {
        const QJsonArray bindings = it.value().toArray();
        if (bindings.isEmpty()) {
            out << it.key();
            continue;
        }
        for (const QJsonValue &b : bindings) {
            const QJsonObject o = b.toObject();
            const QString ip = o.value(QStringLiteral("HostIp")).toString();
            out << QStringLiteral("%1:%2->%3")
                       .arg(ip.isEmpty() ? QStringLiteral("0.0.0.0") : ip,
                            o.value(QStringLiteral("HostPort")).toString(), it.key());
        }
    }
    out.removeDuplicates();
    std::sort(out.begin(), out.end());
    return out;
}

QDateTime dockerTime(const QString &text)
{
    if (text.startsWith(QLatin1String("0001-")))
        return {};
    return QDateTime::fromString(text, Qt::ISODateWithMs);
}

ServiceState fromInspect(const QJsonObject &c)
{
    ServiceState s;
    const QJsonObject config = c.value(QStringLiteral("Config")).toObject();
    const QJsonObject labels = config.value(QStringLiteral("Labels")).toObject();
    const QJsonObject state = c.value(QStringLiteral("State")).toObject();
    s.containerId = c.value(QStringLiteral("Id")).toString();
    s.container = c.value(QStringLiteral("Name")).toString().mid(1);
    s.service = labels.value(kServiceLabel).toString();
    if (s.service.isEmpty())
        s.service = s.container;
    s.image = config.value(QStringLiteral("Image")).toString();
    QString repo;
    s.tag = splitTag(s.image, &repo);
    s.imageId = c.value(QStringLiteral("Image")).toString();
    s.state = runStateFromDocker(state.value(QStringLiteral("Status")).toString());
    const QJsonObject health = state.value(QStringLiteral("Health")).toObject();
    s.health = healthFromDocker(health.value(QStringLiteral("Status")).toString());
    if (s.health == EngineHealth::Unhealthy) {
        const QJsonArray log = health.value(QStringLiteral("Log")).toArray();
        if (!log.isEmpty())
            s.detail = log.last().toObject().value(QStringLiteral("Output")).toString().trimmed();
    }
    if (!state.value(QStringLiteral("Running")).toBool() && s.state != RunState::Restarting) {
        s.exitCode = state.value(QStringLiteral("ExitCode")).toInt();
        if (state.value(QStringLiteral("OOMKilled")).toBool())
            s.detail = QStringLiteral("killed: out of memory");
        else if (!state.value(QStringLiteral("Error")).toString().isEmpty())
            s.detail = state.value(QStringLiteral("Error")).toString();
        // The engine keeps the last health verdict of a stopped container;
        // a stopped service with a healthcheck is simply not healthy.
        if (!health.isEmpty())
            s.health = EngineHealth::Unhealthy;
    }
    s.pid = state.value(QStringLiteral("Pid")).toInteger();
    s.startedAt = dockerTime(state.value(QStringLiteral("StartedAt")).toString());
    s.finishedAt = dockerTime(state.value(QStringLiteral("FinishedAt")).toString());
    s.restartCount = c.value(QStringLiteral("RestartCount")).toInt();
    const QJsonObject network = c.value(QStringLiteral("NetworkSettings")).toObject();
    s.ports = formatPorts(network.value(QStringLiteral("Ports")).toObject());
    const QJsonObject networks = network.value(QStringLiteral("Networks")).toObject();
    for (auto it = networks.begin(); it != networks.end(); ++it) {
        const QString ip = it.value().toObject().value(QStringLiteral("IPAddress")).toString();
        if (!ip.isEmpty())
            s.addresses << ip;
    }
    return s;
}

} // namespace

EngineWatcher::EngineWatcher(Environment env, QObject *parent)
    : QObject(parent)
    , m_env(std::move(env))
{
    qRegisterMetaType<QList<pilothouse::ServiceState>>();
    m_inspectTimer.setSingleShot(true);
    m_inspectTimer.setInterval(kCoalesceMs);
    connect(&m_inspectTimer, &QTimer::timeout, this, [this] {
        const QStringList ids(m_dirty.cbegin(), m_dirty.cend());
        m_dirty.clear();
        if (!ids.isEmpty())
            inspect(ids, false);
    });
    m_reconnectTimer.setSingleShot(true);
    connect(&m_reconnectTimer, &QTimer::timeout, this, [this] {
        if (m_running) {
            startEvents();
            seed();
        }
    });
}

EngineWatcher::~EngineWatcher()
{
    stop();
}

void EngineWatcher::start()
{
    if (m_running)
        return;
    m_running = true;
    startEvents();
    seed();
}

void EngineWatcher::stop()
{
    m_running = false;
    ++m_generation;
    m_reconnectTimer.stop();
    m_inspectTimer.stop();
    if (m_events) {
        m_events->dismiss();
        m_events = nullptr;
    }
}

void EngineWatcher::refresh()
{
    if (m_running)
        seed();
}

QList<ServiceState> EngineWatcher::states() const
{
    QList<ServiceState> out = m_states.values();
    std::sort(out.begin(), out.end(), [](const ServiceState &a, const ServiceState &b) {
        return std::tie(a.service, a.container) < std::tie(b.service, b.container);
    });
    return out;
}

void EngineWatcher::setStatus(EngineStatus status, const QString &message)
{
    if (status == m_status && message == m_error)
        return;
    m_status = status;
    m_error = message;
    emit engineStatusChanged(status, message);
}

void EngineWatcher::disconnected(const QString &message)
{
    if (!m_running)
        return;
    ++m_generation;
    if (m_events) {
        m_events->dismiss();
        m_events = nullptr;
    }
    setStatus(EngineStatus::Disconnected, message);
    m_backoffMs = m_backoffMs == 0 ? kFirstBackoffMs : std::min(m_backoffMs * 2, kMaxBackoffMs);
    qCDebug(lcEngine) << "engine lost:" << message << "retry in" << m_backoffMs << "ms";
    m_reconnectTimer.start(m_backoffMs);
}

void EngineWatcher::startEvents()
{
    startEventStream({ QStringLiteral("type=container"),
                       QStringLiteral("label=%1=%2").arg(kProjectLabel, m_env.project) });
}

void EngineWatcher::startEventStream(const QStringList &filters)
{
    const quint64 generation = m_generation;
    QStringList args { QStringLiteral("events"), QStringLiteral("--format"),
                       QStringLiteral("{{json .}}") };
    for (const QString &f : filters)
        args << QStringLiteral("--filter") << f;
    CommandSpec spec = dockerCommand(m_env, args, 0, QStringLiteral("docker events"));
    spec.keepOutput = false; // a follower
    auto *cmd = new Command(spec, this);
    m_events = cmd;
    connect(cmd, &Command::outputLine, this, [this](const QString &line, bool isStderr) {
        if (!isStderr)
            onEventLine(line);
    });
    connect(cmd, &Command::finished, this, [this, cmd, generation](const CommandResult &r) {
        cmd->deleteLater();
        if (m_events == cmd)
            m_events = nullptr;
        if (generation != m_generation || !m_running)
            return;
        disconnected(
            explainDockerFailure(r, QStringLiteral("watching the engine (docker events)"), m_env));
    });
    cmd->start();
}

void EngineWatcher::seed()
{
    const quint64 generation = m_generation;
    auto *cmd = new Command(
        dockerCommand(m_env,
                      { QStringLiteral("ps"), QStringLiteral("--all"), QStringLiteral("--quiet"),
                        QStringLiteral("--no-trunc"), QStringLiteral("--filter"),
                        QStringLiteral("label=%1=%2").arg(kProjectLabel, m_env.project) },
                      kCallTimeoutMs, QStringLiteral("docker ps")),
        this);
    connect(cmd, &Command::finished, this, [this, cmd, generation](const CommandResult &r) {
        cmd->deleteLater();
        if (generation != m_generation || !m_running)
            return;
        if (!r.ok()) {
            disconnected(
                explainDockerFailure(r, QStringLiteral("listing containers (docker ps)"), m_env));
            return;
        }
        m_backoffMs = 0;
        setStatus(EngineStatus::Connected, {});
        const QStringList ids = r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        if (ids.isEmpty()) {
            const bool changed = !m_states.isEmpty();
            m_states.clear();
            if (changed || !m_seeded)
                publish();
            m_seeded = true;
            emit seeded();
            return;
        }
        inspect(ids, true);
    });
    cmd->start();
}

void EngineWatcher::inspect(const QStringList &ids, bool replaceAll)
{
    const quint64 generation = m_generation;
    // Answers may come back in any order; each container keeps the newest.
    const quint64 sequence = ++m_inspectSequence;
    auto *cmd = new Command(
        dockerCommand(m_env,
                      QStringList { QStringLiteral("container"), QStringLiteral("inspect") } + ids,
                      kCallTimeoutMs, QStringLiteral("docker inspect")),
        this);
    connect(cmd, &Command::finished, this,
            [this, cmd, generation, ids, replaceAll, sequence](const CommandResult &r) {
                cmd->deleteLater();
                if (generation != m_generation || !m_running)
                    return;
                // Exit 1 with partial output: some containers vanished in between.
                // Exit 1 with nothing but an error that is not "No such": the engine is gone.
                if (r.end != CommandResult::End::Exited ||
                    (r.exitCode != 0 && r.output.trimmed().isEmpty() &&
                     !r.errorOutput.contains(QLatin1String("No such")))) {
                    disconnected(explainDockerFailure(r, QStringLiteral("docker inspect"), m_env));
                    return;
                }
                applyInspect(r.output.toUtf8(), ids, replaceAll, sequence);
            });
    cmd->start();
}

void EngineWatcher::applyInspect(const QByteArray &json, const QStringList &asked, bool replaceAll,
                                 quint64 sequence)
{
    const auto newer = [this, sequence](const QString &id) {
        return m_appliedSequence.value(id, 0) > sequence;
    };
    const QJsonArray list = QJsonDocument::fromJson(json).array();
    QHash<QString, ServiceState> fresh;
    QStringList unknownImages;
    for (const QJsonValue &v : list) {
        ServiceState s = fromInspect(v.toObject());
        if (s.containerId.isEmpty())
            continue;
        if (const auto d = m_digests.constFind(s.imageId); d != m_digests.cend())
            s.digest = *d;
        else if (!unknownImages.contains(s.imageId))
            unknownImages << s.imageId;
        fresh.insert(s.containerId, s);
    }
    if (replaceAll) {
        QHash<QString, ServiceState> next;
        for (auto it = fresh.cbegin(); it != fresh.cend(); ++it)
            next.insert(it.key(), newer(it.key()) ? m_states.value(it.key(), *it) : *it);
        // Containers a newer answer knows about (created after this listing) stay.
        for (auto it = m_states.cbegin(); it != m_states.cend(); ++it) {
            if (!next.contains(it.key()) && newer(it.key()))
                next.insert(it.key(), *it);
        }
        m_states = next;
        for (auto it = fresh.cbegin(); it != fresh.cend(); ++it) {
            if (!newer(it.key()))
                m_appliedSequence.insert(it.key(), sequence);
        }
    } else {
        for (const QString &id : asked) {
            if (newer(id))
                continue;
            m_appliedSequence.insert(id, sequence);
            const auto it =
                std::find_if(fresh.cbegin(), fresh.cend(),
                             [&id](const ServiceState &s) { return s.containerId.startsWith(id); });
            if (it == fresh.cend())
                m_states.remove(id); // gone meanwhile
            else
                m_states.insert(it->containerId, *it);
        }
    }
    publish();
    if (replaceAll && !m_seeded) {
        m_seeded = true;
        emit seeded();
    } else if (replaceAll) {
        emit seeded();
    }
    if (!unknownImages.isEmpty())
        resolveDigests(unknownImages);
}

void EngineWatcher::resolveDigests(const QStringList &imageIds)
{
    const quint64 generation = m_generation;
    auto *cmd = new Command(
        dockerCommand(m_env,
                      QStringList { QStringLiteral("image"), QStringLiteral("inspect") } + imageIds,
                      kCallTimeoutMs, QStringLiteral("docker image inspect")),
        this);
    connect(cmd, &Command::finished, this, [this, cmd, generation](const CommandResult &r) {
        cmd->deleteLater();
        if (generation != m_generation)
            return;
        const QJsonArray list = QJsonDocument::fromJson(r.output.toUtf8()).array();
        bool changed = false;
        for (const QJsonValue &v : list) {
            const QJsonObject o = v.toObject();
            const QString id = o.value(QStringLiteral("Id")).toString();
            const QJsonArray digests = o.value(QStringLiteral("RepoDigests")).toArray();
            QString digest;
            for (auto it = m_states.begin(); it != m_states.end(); ++it) {
                if (it->imageId != id)
                    continue;
                QString repo;
                splitTag(it->image, &repo);
                for (const QJsonValue &d : digests) {
                    const QString text = d.toString();
                    if (digest.isEmpty() || text.startsWith(repo + QLatin1Char('@')))
                        digest = text.mid(text.indexOf(QLatin1Char('@')) + 1);
                }
                if (it->digest != digest) {
                    it->digest = digest;
                    changed = true;
                }
            }
            m_digests.insert(id, digest);
        }
        if (changed)
            publish();
    });
    cmd->start();
}

void EngineWatcher::onEventLine(const QString &line)
{
    const QJsonObject e = QJsonDocument::fromJson(line.toUtf8()).object();
    const QString action =
        e.value(QStringLiteral("Action")).toString(e.value(QStringLiteral("status")).toString());
    const QJsonObject actor = e.value(QStringLiteral("Actor")).toObject();
    const QString id =
        actor.value(QStringLiteral("ID")).toString(e.value(QStringLiteral("id")).toString());
    if (id.isEmpty() || action.isEmpty())
        return;
    if (action.startsWith(QLatin1String("exec_")) || action == QLatin1String("attach") ||
        action == QLatin1String("resize") || action == QLatin1String("top") ||
        action == QLatin1String("copy"))
        return;
    const QJsonObject attrs = actor.value(QStringLiteral("Attributes")).toObject();
    if (action == QLatin1String("destroy")) {
        if (m_states.remove(id) > 0)
            publish();
        m_dirty.remove(id);
        m_appliedSequence.insert(id, ++m_inspectSequence); // later answers about it are stale
        return;
    }
    // Apply what the event itself says at once; the inspect that follows fills in the rest.
    auto it = m_states.find(id);
    if (it == m_states.end()) {
        ServiceState s;
        s.containerId = id;
        s.service = attrs.value(kServiceLabel).toString();
        s.container = attrs.value(QStringLiteral("name")).toString();
        s.image = attrs.value(QStringLiteral("image")).toString();
        QString repo;
        s.tag = splitTag(s.image, &repo);
        it = m_states.insert(id, s);
    }
    ServiceState before = *it;
    if (action == QLatin1String("start") || action == QLatin1String("unpause") ||
        action == QLatin1String("restart")) {
        it->state = RunState::Running;
    } else if (action == QLatin1String("die")) {
        it->state = RunState::Exited;
        it->exitCode = attrs.value(QStringLiteral("exitCode")).toString().toInt();
        it->finishedAt = QDateTime::currentDateTimeUtc();
        if (it->health != EngineHealth::None)
            it->health = EngineHealth::Unhealthy;
    } else if (action == QLatin1String("pause")) {
        it->state = RunState::Paused;
    } else if (action == QLatin1String("create")) {
        it->state = RunState::Created;
    } else if (action.startsWith(QLatin1String("health_status: "))) {
        it->health = healthFromDocker(action.mid(15));
    }
    if (*it != before)
        publish();
    scheduleInspect(id);
}

void EngineWatcher::scheduleInspect(const QString &id)
{
    m_dirty.insert(id);
    if (!m_inspectTimer.isActive())
        m_inspectTimer.start();
}

void EngineWatcher::publish()
{
    emit statesChanged(states());
}

} // namespace pilothouse
