#include "core/session.h"

#include "drivers/composedriver.h"
#include "drivers/docker.h"
#include "drivers/nativedriver.h"
#include "engine/sshconnection.h"
#include "env/dotenv.h"
#include "swarm/swarmdriver.h"
#include "swarm/swarmwatcher.h"

#include <QDir>
#include <QFileInfo>

namespace pilothouse {

int severity(ServiceHealth health)
{
    switch (health) {
    case ServiceHealth::Healthy:
        return 0;
    case ServiceHealth::Unknown:
        return 1;
    case ServiceHealth::Starting:
        return 2;
    case ServiceHealth::Unhealthy:
        return 3;
    case ServiceHealth::Down:
        return 4;
    }
    return 0;
}

QString toString(ServiceHealth health)
{
    switch (health) {
    case ServiceHealth::Unknown:
        return QStringLiteral("unknown");
    case ServiceHealth::Starting:
        return QStringLiteral("starting");
    case ServiceHealth::Healthy:
        return QStringLiteral("healthy");
    case ServiceHealth::Unhealthy:
        return QStringLiteral("unhealthy");
    case ServiceHealth::Down:
        return QStringLiteral("down");
    }
    return {};
}

std::optional<ServiceHealth> serviceHealthFromString(const QString &text)
{
    for (auto h : { ServiceHealth::Unknown, ServiceHealth::Starting, ServiceHealth::Healthy,
                    ServiceHealth::Unhealthy, ServiceHealth::Down }) {
        if (toString(h) == text)
            return h;
    }
    return std::nullopt;
}

StackSession::StackSession(Environment env, QObject *parent)
    : QObject(parent)
    , m_env(std::move(env))
    , m_monitor(std::make_unique<HealthMonitor>())
    , m_logs(std::make_unique<LogStore>())
{
    if (m_env.kind == EnvironmentKind::Native) {
        auto native = std::make_unique<NativeDriver>(m_env);
        connect(native.get(), &NativeDriver::statesChanged, this, &StackSession::setStates);
        m_states = native->states();
        m_driver = std::move(native);
    } else {
        if (m_env.dockerHost.startsWith(QLatin1String("ssh://"))) {
            m_ssh = SshConnections::instance().acquire(m_env, &m_sshError);
            if (m_ssh) {
                connect(m_ssh, &SshConnection::stateChanged, this,
                        [this](SshConnection::State state) {
                            if (state == SshConnection::State::Connected ||
                                state == SshConnection::State::Failed) {
                                const auto queued = std::exchange(m_afterConnect, {});
                                for (const auto &fn : queued)
                                    fn();
                            }
                            // Back after a drop: look at the engine again now.
                            if (state == SshConnection::State::Connected && m_watcher)
                                m_watcher->refresh();
                            emit connectionChanged();
                        });
            }
        }
        if (m_env.kind == EnvironmentKind::Swarm) {
            m_driver = std::make_unique<SwarmDriver>(m_env);
            auto swarm = std::make_unique<SwarmWatcher>(m_env);
            connect(swarm.get(), &SwarmWatcher::viewChanged, this,
                    [this] { m_changeCoalesce.start(); });
            m_watcher = std::move(swarm);
        } else {
            m_driver = std::make_unique<ComposeDriver>(m_env);
            m_watcher = std::make_unique<EngineWatcher>(m_env);
        }
        m_follower = std::make_unique<ComposeLogFollower>(m_env, m_logs.get());
        connect(m_watcher.get(), &EngineWatcher::statesChanged, this, &StackSession::setStates);
        connect(m_watcher.get(), &EngineWatcher::engineStatusChanged, this,
                &StackSession::engineStatusChanged);
        connect(m_follower.get(), &ComposeLogFollower::ended, this, &StackSession::logsEnded);
    }
    connect(m_driver.get(), &StackDriver::outputLine, this,
            [this](const QString &service, const QString &line) {
                if (!service.isEmpty())
                    m_logs->append(service, line);
            });
    connect(m_driver.get(), &StackDriver::operationStarted, this, &StackSession::operationStarted);
    if (auto *compose = qobject_cast<ComposeDriver *>(m_driver.get())) {
        connect(compose, &ComposeDriver::built, this, [this](const Build &b, bool startsIt) {
            if (startsIt)
                m_pinnedTag = b.tag; // what runs now, until a deployment moves it
            emit built(b);
        });
    }
    connect(m_driver.get(), &StackDriver::progress, this, &StackSession::progress);
    connect(m_driver.get(), &StackDriver::operationFinished, this,
            [this](const OperationResult &r) {
                // Look again right away instead of waiting for the next round.
                m_monitor->checkNow();
                if (m_watcher)
                    m_watcher->refresh();
                if (m_probe && m_dbTimer.isActive())
                    probeDatabase();
                emit operationFinished(r);
            });

    for (const WatchedService &s : m_env.services) {
        for (const HealthEndpoint &e : s.endpoints) {
            if (e.internal && m_ssh) {
                // As the remote host sees it, through the SSH connection.
                HealthEndpoint local = e;
                QUrl url = e.url;
                url.setHost(QStringLiteral("127.0.0.1"));
                const int port = m_ssh->forwardTcp(e.url.host(), e.url.port(80));
                m_internalPorts << port;
                url.setPort(port);
                local.url = url;
                m_monitor->addEndpoint(s.name, local);
                continue;
            }
            m_monitor->addEndpoint(s.name, e);
        }
    }
    // Many endpoint answers in a burst make one change notification.
    m_changeCoalesce.setSingleShot(true);
    m_changeCoalesce.setInterval(20);
    connect(&m_changeCoalesce, &QTimer::timeout, this, &StackSession::servicesChanged);
    connect(m_monitor.get(), &HealthMonitor::endpointChecked, this,
            [this] { m_changeCoalesce.start(); });
    connect(m_monitor.get(), &HealthMonitor::statusChanged, this, &StackSession::servicesChanged);

    if (m_env.database) {
        m_probe = std::make_unique<DatabaseProbe>(*m_env.database);
        connect(m_probe.get(), &DatabaseProbe::finished, this, &StackSession::databaseChanged);
        m_dbTimer.setInterval(10000);
        connect(&m_dbTimer, &QTimer::timeout, this, &StackSession::probeDatabase);
    }
}

StackSession::~StackSession()
{
    stopWatching();
    if (m_ssh)
        SshConnections::instance().release(m_ssh);
}

void StackSession::whenReachable(std::function<void()> fn)
{
    if (!m_ssh) {
        fn();
        return;
    }
    m_ssh->open();
    if (m_ssh->state() == SshConnection::State::Connected ||
        m_ssh->state() == SshConnection::State::Failed) {
        fn();
        return;
    }
    m_afterConnect << std::move(fn);
}

NativeDriver *StackSession::nativeDriver() const
{
    return qobject_cast<NativeDriver *>(m_driver.get());
}

void StackSession::startWatching()
{
    if (!m_ssh) {
        if (m_watcher)
            m_watcher->start();
        m_monitor->start();
        if (m_probe) {
            probeDatabase();
            m_dbTimer.start();
        }
        return;
    }
    // Over SSH, once connected: the watcher, then the checks of internal
    // endpoints once their forwards are there (a first answer of "refused"
    // would be the panel's own doing, not the service's).
    whenReachable([this] {
        m_watcher->start();
        const auto startChecks = [this] {
            m_monitor->start();
            if (m_probe) {
                probeDatabase();
                m_dbTimer.start();
            }
        };
        QSet<int> waiting;
        for (int port : std::as_const(m_internalPorts)) {
            if (m_ssh->state() == SshConnection::State::Connected && !m_ssh->isForwarded(port))
                waiting.insert(port);
        }
        if (waiting.isEmpty()) {
            startChecks();
            return;
        }
        auto pending = std::make_shared<QSet<int>>(waiting);
        auto link = std::make_shared<QMetaObject::Connection>();
        *link = connect(m_ssh, &SshConnection::forwardChanged, this,
                        [pending, link, startChecks](int port) {
                            pending->remove(port);
                            if (!pending->isEmpty())
                                return;
                            disconnect(*link);
                            startChecks();
                        });
    });
}

void StackSession::stopWatching()
{
    if (m_watcher)
        m_watcher->stop();
    m_monitor->stop();
    m_dbTimer.stop();
    if (m_follower)
        m_follower->stop();
}

std::optional<ServiceState> StackSession::stateOf(const QString &service) const
{
    for (const ServiceState &s : m_states) {
        if (s.service == service)
            return s;
    }
    return std::nullopt;
}

void StackSession::setRolloutRoles(const QHash<QString, QString> &roles)
{
    if (roles == m_rolloutRoles)
        return;
    m_rolloutRoles = roles;
    emit servicesChanged();
}

QList<ServiceState> StackSession::statesOf(const QString &service) const
{
    QList<ServiceState> all;
    for (const ServiceState &s : m_states) {
        if (s.service == service)
            all << s;
    }
    return all;
}

void StackSession::probeDatabase()
{
    if (!m_probe)
        return;
    if (const auto &in = m_env.database->inStack) {
        // Its address comes from the engine: wait for the engine's first word.
        if (m_watcher && !m_watcher->isSeeded() &&
            m_watcher->engineStatus() != EngineWatcher::EngineStatus::Disconnected) {
            if (!std::exchange(m_probeWhenSeeded, true))
                connect(m_watcher.get(), &EngineWatcher::seeded, this, &StackSession::probeDatabase,
                        Qt::SingleShotConnection);
            return;
        }
        m_probeWhenSeeded = false;
        // Where the stack's database is now, and the stack's own login.
        DatabaseProbe::StackConnection c;
        const auto state = stateOf(in->service);
        if (!state || state->containerId.isEmpty())
            c.unavailable = QStringLiteral("%1 has no container in \"%2\"; start the stack")
                                .arg(in->service, m_env.name);
        else if (!state->isRunning())
            c.unavailable = QStringLiteral("%1 is %2; start the stack")
                                .arg(in->service, toString(state->state));
        else if (m_env.kind == EnvironmentKind::Swarm) {
            // Its address is on an overlay network, which this machine does
            // not reach: asked through the engine, with the container's own
            // psql over its local socket (the same for a local engine and
            // over SSH), when its task runs on the node the engine is.
            c.host = state->containerId;
            c.execThroughEngine = true;
        } else if (state->addresses.isEmpty())
            c.unavailable = QStringLiteral("%1 has no address on a network this machine reaches")
                                .arg(in->service);
        else if (m_ssh) {
            // Its address is the remote host's view: reached through the SSH
            // connection, the forward moved when a recreate moves it.
            const QString remote = state->addresses.first();
            if (m_dbForward && m_dbForwardTo != remote) {
                m_ssh->cancelTcp(m_dbForward);
                m_dbForward = 0;
            }
            if (!m_dbForward) {
                m_dbForward = m_ssh->forwardTcp(remote, in->port);
                m_dbForwardTo = remote;
            }
            if (!m_ssh->isForwarded(m_dbForward) &&
                m_ssh->state() == SshConnection::State::Connected) {
                // Probe once the forward is there (or say why it is not).
                auto link = std::make_shared<QMetaObject::Connection>();
                *link = connect(m_ssh, &SshConnection::forwardChanged, this,
                                [this, link](int port, bool ok, const QString &error) {
                                    if (port != m_dbForward)
                                        return;
                                    disconnect(*link);
                                    if (ok)
                                        probeDatabase();
                                    else {
                                        DatabaseProbe::StackConnection failed;
                                        failed.unavailable = error;
                                        m_probe->setStackConnection(failed);
                                    }
                                    if (!ok)
                                        m_probe->probe();
                                });
                return;
            }
            if (!m_ssh->isForwarded(m_dbForward)) {
                c.unavailable = QStringLiteral("the SSH connection to %1 is %2; the database "
                                               "is reached through it")
                                    .arg(m_ssh->target().display(), toString(m_ssh->state()));
            } else {
                c.host = QStringLiteral("127.0.0.1");
                c.port = m_dbForward;
            }
        } else
            c.host = state->addresses.first();
        const QString folder = m_env.composeFiles.isEmpty()
            ? QString()
            : QFileInfo(m_env.composeFiles.first()).absolutePath();
        const QString envFile =
            m_env.envFile.isEmpty() ? QDir(folder).filePath(QStringLiteral(".env")) : m_env.envFile;
        c.user = stackVariable(in->userVariable, m_env.composeFiles, envFile);
        c.database = stackVariable(in->databaseVariable, m_env.composeFiles, envFile);
        c.password = stackVariable(in->passwordVariable, m_env.composeFiles, envFile);
        if (c.user.isEmpty())
            c.user = QStringLiteral("postgres"); // the official image's own default
        if (c.database.isEmpty())
            c.database = c.user;
        if (c.execThroughEngine) {
            c.exec = dockerCommand(
                m_env,
                { QStringLiteral("exec"), c.host, QStringLiteral("psql"), QStringLiteral("-X"),
                  QStringLiteral("-A"), QStringLiteral("-t"), QStringLiteral("-U"), c.user,
                  QStringLiteral("-d"), c.database, QStringLiteral("-c"),
                  QStringLiteral("\\timing on"), QStringLiteral("-c"), QStringLiteral("SELECT 1"),
                  QStringLiteral("-c"), DatabaseProbe::factsQuery(), QStringLiteral("-c"),
                  QStringLiteral("SELECT 'migration=' || COALESCE(MAX(version), 0) FROM "
                                 "schema_migrations") },
                m_probe->timeoutMs(), QStringLiteral("psql in the database's container"));
            c.password.clear(); // the container's local socket needs none
        }
        m_probe->setStackConnection(c);
    }
    m_probe->probe();
}

QMap<QString, QString> StackSession::composeVariables() const
{
    QMap<QString, QString> vars;
    if (m_env.imageRepository.isEmpty())
        return vars;
    vars.insert(m_env.repositoryVariable, m_env.imageRepository);
    QString tag;
    if (const auto s = stateOf(m_env.backendService()); s && !s->tag.isEmpty())
        tag = s->tag;
    else
        tag = m_pinnedTag;
    if (!tag.isEmpty())
        vars.insert(m_env.tagVariable, tag);
    return vars;
}

bool StackSession::admit(StackOperation op, const QString &service)
{
    if (!m_lockReason.isEmpty()) {
        const OperationResult r { op, service, OperationResult::Outcome::Failed, m_lockReason };
        QMetaObject::invokeMethod(
            this, [this, r] { emit operationFinished(r); }, Qt::QueuedConnection);
        return false;
    }
    if (auto *compose = qobject_cast<ComposeDriver *>(m_driver.get()))
        compose->setVariables(composeVariables());
    if (auto *swarm = qobject_cast<SwarmDriver *>(m_driver.get()))
        swarm->setVariables(composeVariables());
    return true;
}

void StackSession::up()
{
    whenReachable([this] {
        if (!admit(StackOperation::Up, {}))
            return;
        if (auto *compose = qobject_cast<ComposeDriver *>(m_driver.get())) {
            QStringList paused;
            for (const ServiceState &s : std::as_const(m_states)) {
                if (s.state == RunState::Paused && !paused.contains(s.service))
                    paused << s.service;
            }
            compose->setPaused(paused);
        }
        m_driver->up();
    });
}

void StackSession::down()
{
    whenReachable([this] {
        if (admit(StackOperation::Down, {}))
            m_driver->down();
    });
}

void StackSession::restart(const QString &service)
{
    whenReachable([this, service] {
        if (admit(StackOperation::Restart, service))
            m_driver->restart(service);
    });
}

void StackSession::stopService(const QString &service)
{
    whenReachable([this, service] {
        if (admit(StackOperation::StopService, service))
            m_driver->stopService(service);
    });
}

void StackSession::startService(const QString &service)
{
    whenReachable([this, service] {
        if (admit(StackOperation::StartService, service))
            m_driver->startService(service);
    });
}

void StackSession::scale(const QString &service, int replicas)
{
    auto *swarm = qobject_cast<SwarmDriver *>(m_driver.get());
    if (!swarm) {
        const OperationResult r { StackOperation::Scale, service, OperationResult::Outcome::Failed,
                                  QStringLiteral("\"%1\" is a %2 environment; scale is for "
                                                 "swarm stacks")
                                      .arg(m_env.name, toString(m_env.kind)) };
        QMetaObject::invokeMethod(
            this, [this, r] { emit operationFinished(r); }, Qt::QueuedConnection);
        return;
    }
    whenReachable([this, swarm, service, replicas] {
        if (admit(StackOperation::Scale, service))
            swarm->scale(service, replicas);
    });
}

void StackSession::setNodeAvailability(const QString &node, const QString &availability)
{
    auto *swarm = qobject_cast<SwarmDriver *>(m_driver.get());
    if (!swarm) {
        const OperationResult r { StackOperation::Node, node, OperationResult::Outcome::Failed,
                                  QStringLiteral("\"%1\" is a %2 environment; nodes are a "
                                                 "swarm's")
                                      .arg(m_env.name, toString(m_env.kind)) };
        QMetaObject::invokeMethod(
            this, [this, r] { emit operationFinished(r); }, Qt::QueuedConnection);
        return;
    }
    whenReachable([this, swarm, node, availability] {
        if (admit(StackOperation::Node, node))
            swarm->setNodeAvailability(node, availability);
    });
}

void StackSession::setRemoveVolumes(bool remove)
{
    if (auto *swarm = qobject_cast<SwarmDriver *>(m_driver.get()))
        swarm->setRemoveVolumes(remove);
}

const SwarmView *StackSession::swarmView() const
{
    const auto *w = qobject_cast<const SwarmWatcher *>(m_watcher.get());
    return w ? &w->view() : nullptr;
}

void StackSession::build()
{
    auto *compose = qobject_cast<ComposeDriver *>(m_driver.get());
    if (!compose) {
        const OperationResult r { StackOperation::Build,
                                  {},
                                  OperationResult::Outcome::Failed,
                                  QStringLiteral("\"%1\" runs no containers; builds are for "
                                                 "compose environments")
                                      .arg(m_env.name) };
        QMetaObject::invokeMethod(
            this, [this, r] { emit operationFinished(r); }, Qt::QueuedConnection);
        return;
    }
    whenReachable([this, compose] {
        if (admit(StackOperation::Build, {}))
            compose->build();
    });
}

bool StackSession::canBuild() const
{
    return m_env.kind == EnvironmentKind::Compose && !m_env.imageRepository.isEmpty() &&
        !m_env.imageServices.isEmpty();
}

void StackSession::cancel()
{
    m_driver->cancel();
}

bool StackSession::isBusy() const
{
    return m_driver->isBusy();
}

void StackSession::followLogs(const QString &service, int tail)
{
    if (m_follower)
        whenReachable([this, service, tail] { m_follower->follow(service, tail); });
}

void StackSession::stopFollowingLogs()
{
    if (m_follower)
        m_follower->stop();
}

void StackSession::setStates(const QList<ServiceState> &states)
{
    m_states = states;
    emit servicesChanged();
}

ServiceHealth StackSession::combine(const ServiceState &state, bool hasEndpoints,
                                    EndpointStatus http, QString *detail)
{
    const auto say = [detail](const QString &text) {
        if (detail && detail->isEmpty())
            *detail = text;
    };
    switch (state.state) {
    case RunState::Running:
        break;
    case RunState::Starting:
    case RunState::Created:
        return ServiceHealth::Starting;
    case RunState::Restarting:
        say(state.detail.isEmpty() ? QStringLiteral("restarting") : state.detail);
        return ServiceHealth::Unhealthy;
    case RunState::Paused:
        // Frozen by the engine: it answers nothing until resumed.
        say(QStringLiteral("paused: it answers nothing until resumed (Start resumes it)"));
        return ServiceHealth::Down;
    case RunState::Unknown:
        // Not supervised or watched here: the endpoints are all we know.
        if (!hasEndpoints || http == EndpointStatus::Unknown)
            return ServiceHealth::Unknown;
        return http == EndpointStatus::Fail ? ServiceHealth::Down : ServiceHealth::Healthy;
    default:
        say(state.exitCode >= 0
                ? QStringLiteral("%1 (exit code %2)").arg(toString(state.state)).arg(state.exitCode)
                : toString(state.state));
        return ServiceHealth::Down;
    }
    // Like a healthcheck's start period: a service that just started may not
    // answer yet; that is starting, not unhealthy.
    constexpr qint64 kStartPeriodMs = 15000;
    if (hasEndpoints && http == EndpointStatus::Fail && state.health != EngineHealth::Unhealthy &&
        state.startedAt.isValid() &&
        state.startedAt.msecsTo(QDateTime::currentDateTimeUtc()) < kStartPeriodMs)
        return ServiceHealth::Starting;
    if (state.health == EngineHealth::Unhealthy || (hasEndpoints && http == EndpointStatus::Fail)) {
        say(state.detail);
        return ServiceHealth::Unhealthy;
    }
    if (state.health == EngineHealth::Starting || (hasEndpoints && http == EndpointStatus::Unknown))
        return ServiceHealth::Starting;
    // warn is healthy with a remark (draft-inadarei: "healthy, with some
    // concerns"); the remark stays in the row's detail.
    return ServiceHealth::Healthy;
}

QList<ServiceRow> StackSession::services() const
{
    QList<ServiceRow> rows;
    QSet<QString> seen;
    const auto endpointsOf = [this](const QString &service) {
        const QList<int> ids = m_monitor->idsOf(service);
        QString detail;
        for (int id : ids) {
            const EndpointState *e = m_monitor->endpoint(id);
            if (e->status != EndpointStatus::Pass) {
                detail = e->detail;
                break;
            }
        }
        return std::pair { !ids.isEmpty(), detail };
    };
    const auto configured = [this](const QString &service) {
        for (const WatchedService &s : m_env.services) {
            if (s.name == service)
                return true;
        }
        for (const NativeProcess &p : m_env.processes) {
            if (p.name == service)
                return true;
        }
        return false;
    };
    // The engine out of reach (or the SSH connection to it down): what was
    // seen before is not what runs now, and not down either.
    QString outOfReach;
    if (m_env.usesDocker()) {
        if (m_ssh && m_ssh->state() != SshConnection::State::Connected)
            outOfReach = m_ssh->reason().isEmpty()
                ? QStringLiteral("the SSH connection to %1 is %2")
                      .arg(m_ssh->target().display(), toString(m_ssh->state()))
                : m_ssh->reason();
        else if (m_watcher &&
                 m_watcher->engineStatus() == EngineWatcher::EngineStatus::Disconnected)
            outOfReach = m_watcher->engineError().isEmpty()
                ? QStringLiteral("the engine does not answer")
                : m_watcher->engineError();
    }
    for (const ServiceState &s : m_states) {
        ServiceRow row;
        row.state = s;
        const auto [any, httpDetail] = endpointsOf(s.service);
        row.hasEndpoints = any;
        row.http = m_monitor->serviceStatus(s.service);
        row.configured = configured(s.service);
        row.rollout = m_rolloutRoles.value(s.containerId);
        if (const auto *swarm = qobject_cast<const SwarmWatcher *>(m_watcher.get())) {
            if (const SwarmService *svc = swarm->view().service(s.service))
                row.replicas = svc->replicasText();
        }
        if (!outOfReach.isEmpty()) {
            row.state.state = RunState::Unreachable;
            row.health = ServiceHealth::Unknown;
            row.detail = QStringLiteral("last seen %1; %2").arg(toString(s.state), outOfReach);
            seen.insert(s.service);
            rows << row;
            continue;
        }
        row.health = combine(s, any, row.http, &row.detail);
        if (row.detail.isEmpty())
            row.detail = httpDetail;
        seen.insert(s.service);
        rows << row;
    }
    // Watched services the engine does not know (yet): not created.
    for (const WatchedService &ws : m_env.services) {
        if (seen.contains(ws.name))
            continue;
        ServiceRow row;
        row.state.service = ws.name;
        // A native environment's service may be something we do not supervise.
        // A compose one has no container, as far as an engine that answers
        // says; with the engine out of reach nobody knows.
        const bool engineKnows = m_watcher && m_watcher->isSeeded() &&
            m_watcher->engineStatus() != EngineWatcher::EngineStatus::Disconnected;
        row.state.state = m_env.kind == EnvironmentKind::Native ? RunState::Unknown
            : engineKnows                                       ? RunState::NotCreated
                                                                : RunState::Unknown;
        const auto [any, httpDetail] = endpointsOf(ws.name);
        row.hasEndpoints = any;
        row.http = m_monitor->serviceStatus(ws.name);
        row.configured = true;
        const auto *swarm = qobject_cast<const SwarmWatcher *>(m_watcher.get());
        const SwarmService *known = swarm ? swarm->view().service(ws.name) : nullptr;
        if (swarm && engineKnows && !swarm->view().problem.isEmpty()) {
            row.health = ServiceHealth::Down;
            row.detail = swarm->view().problem;
        } else if (known && engineKnows) {
            row.replicas = known->replicasText();
            if (known->desired == 0) {
                row.state.state = RunState::Exited;
                row.health = ServiceHealth::Down;
                row.detail = QStringLiteral("scaled to 0 replicas: Start service brings it back");
            } else {
                row.state.state = RunState::Starting;
                row.health = ServiceHealth::Starting;
                row.detail = QStringLiteral("%1 tasks: the swarm is placing them")
                                 .arg(known->replicasText());
            }
        } else if (swarm && engineKnows) {
            row.health = ServiceHealth::Down;
            row.detail =
                QStringLiteral("not deployed: Start deploys the stack %1").arg(m_env.stackName());
        } else if (m_env.kind == EnvironmentKind::Compose && engineKnows) {
            row.health = ServiceHealth::Down;
            row.detail = QStringLiteral("no container yet: Start creates it");
        } else if (m_env.usesDocker()) {
            row.health = ServiceHealth::Unknown;
            row.detail = m_watcher && !m_watcher->engineError().isEmpty()
                ? QStringLiteral("the engine is out of reach: %1").arg(m_watcher->engineError())
                : QStringLiteral("waiting for the engine");
        } else {
            row.health = combine(row.state, any, row.http, &row.detail);
            row.detail = httpDetail;
        }
        rows << row;
    }
    return rows;
}

ServiceHealth StackSession::aggregate() const
{
    const QList<ServiceRow> rows = services();
    if (rows.isEmpty())
        return ServiceHealth::Unknown;
    ServiceHealth worst = rows.first().health;
    for (const ServiceRow &r : rows) {
        if (severity(r.health) > severity(worst))
            worst = r.health;
    }
    return worst;
}

} // namespace pilothouse
