// The workspace of every environment. Over 500 lines because it ties each
// environment's session, deployer, native ownership (owner socket, polling
// and forwarding), last known state and notices together; each part is short.
#include "core/workspace.h"

#include "core/ownerlock.h"
#include "db/backup.h"
#include "deploy/historystore.h"
#include "drivers/nativecontrol.h"
#include "drivers/nativedriver.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>
#include <QStandardPaths>
#include <utility>

namespace pilothouse {

QJsonObject toJson(const ServiceRow &r)
{
    QJsonObject o = toJson(r.state); // what the engine or the supervisor says
    o[u"health"] = toString(r.health); // combined with the health endpoints
    o[u"http"] = r.hasEndpoints ? toString(r.http) : QString();
    o[u"detail"] = r.detail;
    if (!r.rollout.isEmpty())
        o[u"rollout"] = r.rollout;
    if (!r.replicas.isEmpty())
        o[u"replicas"] = r.replicas;
    return o;
}

ServiceRow serviceRowFromJson(const QJsonObject &o)
{
    ServiceRow r;
    r.state = serviceStateFromJson(o);
    r.rollout = o.value(u"rollout").toString();
    r.replicas = o.value(u"replicas").toString();
    const QString health = o.value(u"health").toString();
    r.health = serviceHealthFromString(health).value_or(ServiceHealth::Unknown);
    const QString http = o.value(u"http").toString();
    r.hasEndpoints = !http.isEmpty();
    for (auto s : { EndpointStatus::Unknown, EndpointStatus::Pass, EndpointStatus::Warn,
                    EndpointStatus::Fail }) {
        if (toString(s) == http)
            r.http = s;
    }
    r.detail = o.value(u"detail").toString();
    r.configured = true;
    return r;
}

struct Workspace::Entry
{
    std::unique_ptr<StackSession> session;
    std::unique_ptr<Deployer> deployer;
    std::unique_ptr<NativeControlServer> control; // while this window owns native processes
    bool releasing = false; // down: the owner socket goes once it has answered
    QList<std::function<void()>> ownerWaiters; // refreshOwner() callers while it asks
    QJsonObject raw; // the environment as written, to see whether a reload changed it
    bool watching = false;
    bool live = false; // the session answered since watching began
    ServiceHealth health = ServiceHealth::Unknown;
    QHash<QString, ServiceHealth> serviceHealth; // last seen, for notices
    QHash<QString, int> restarts; // restart counts last seen
    bool stopping = false; // a user's down, stop or restart is running
    QElapsedTimer quietSince; // just after one, Down is expected
    bool pollBusy = false;
};

namespace {

QHash<QString, QJsonObject> rawEnvironments(const QByteArray &text)
{
    QHash<QString, QJsonObject> out;
    const QJsonArray list = QJsonDocument::fromJson(text).object().value(u"environments").toArray();
    for (const QJsonValue &v : list)
        out.insert(v.toObject().value(u"name").toString(), v.toObject());
    return out;
}

constexpr qint64 kQuietMs = 2000;

} // namespace

Workspace::Workspace(Face face, QObject *parent)
    : QObject(parent)
    , m_face(face)
    , m_history(std::make_unique<HistoryStore>())
{
    qRegisterMetaType<pilothouse::Notice>();
    m_ownerPoll.setInterval(2000);
    connect(&m_ownerPoll, &QTimer::timeout, this, [this] {
        for (const Environment &e : m_set.environments) {
            if (e.kind == EnvironmentKind::Native)
                pollOwner(e.name);
        }
    });
    m_snapshotTimer.setSingleShot(true);
    m_snapshotTimer.setInterval(2000);
    connect(&m_snapshotTimer, &QTimer::timeout, this, &Workspace::saveSnapshots);
    if (m_face == Face::Window)
        loadSnapshots();
}

Workspace::~Workspace()
{
    saveSnapshots();
    // Deployers before their sessions.
    for (auto &e : m_entries)
        e->deployer.reset();
}

QString Workspace::snapshotPath()
{
    return QStandardPaths::writableLocation(QStandardPaths::CacheLocation) +
        QStringLiteral("/last-state.json");
}

void Workspace::loadSnapshots()
{
    QFile f(snapshotPath());
    if (!f.open(QIODevice::ReadOnly))
        return;
    const QJsonObject root = QJsonDocument::fromJson(f.readAll()).object();
    for (auto it = root.begin(); it != root.end(); ++it) {
        const QJsonObject o = it.value().toObject();
        Snapshot s;
        s.at = QDateTime::fromString(o.value(u"at").toString(), Qt::ISODate);
        s.health =
            serviceHealthFromString(o.value(u"health").toString()).value_or(ServiceHealth::Unknown);
        for (const QJsonValue &v : o.value(u"services").toArray())
            s.rows << serviceRowFromJson(v.toObject());
        m_snapshots.insert(it.key(), s);
    }
}

void Workspace::saveSnapshots() const
{
    if (m_face != Face::Window)
        return; // the window's memory of what it showed last; a command changes none
    QJsonObject root;
    for (auto it = m_snapshots.cbegin(); it != m_snapshots.cend(); ++it) {
        QJsonArray rows;
        for (const ServiceRow &r : it->rows)
            rows.append(toJson(r));
        root.insert(it.key(),
                    QJsonObject { { QStringLiteral("at"), it->at.toUTC().toString(Qt::ISODate) },
                                  { QStringLiteral("health"), toString(it->health) },
                                  { QStringLiteral("services"), rows } });
    }
    const QString path = snapshotPath();
    QDir().mkpath(QFileInfo(path).absolutePath());
    QSaveFile f(path);
    if (f.open(QIODevice::WriteOnly)) {
        f.write(QJsonDocument(root).toJson(QJsonDocument::Compact));
        f.commit();
    }
}

QString Workspace::editablePath() const
{
    return m_explicitPath.isEmpty() || m_explicitPath.startsWith(QLatin1Char(':'))
        ? userEnvironmentsPath()
        : m_explicitPath;
}

Outcome Workspace::loadBuiltInInstead()
{
    const QString asked = m_explicitPath;
    const Outcome r = load(defaultEnvironmentsResource());
    m_explicitPath = asked;
    m_fallback = r.ok();
    return r;
}

Outcome Workspace::load(const QString &explicitPath)
{
    m_explicitPath = explicitPath;
    const QString path = resolveEnvironmentsPath(explicitPath);
    auto set = loadEnvironments(path);
    if (!set)
        return Error { set.error() };
    m_fallback = false;
    QFile f(path);
    if (f.open(QIODevice::ReadOnly))
        m_text = f.readAll();
    m_path = path;
    m_set = *set;
    const auto raw = rawEnvironments(m_text);
    for (auto it = m_entries.begin(); it != m_entries.end();) {
        // Gone or changed: made again on next use, unless it is busy or owns processes.
        Entry &e = **it;
        const bool keep = raw.value(it.key()) == e.raw ||
            (e.session && (e.session->isBusy() || e.control)) ||
            (e.deployer && e.deployer->isBusy());
        if (!keep) {
            e.deployer.reset();
            it = m_entries.erase(it);
        } else {
            // A token saved in Settings changes no JSON: take it on next use.
            if (e.deployer)
                e.deployer->resetRegistry();
            ++it;
        }
    }
    emit environmentsChanged();
    if (m_live) {
        for (const Environment &e : m_set.environments) {
            if (!e.isRemote() || e.name == m_shown)
                watch(e.name);
        }
    }
    return success();
}

Outcome Workspace::reload()
{
    return load(m_explicitPath);
}

Workspace::Entry *Workspace::entry(const QString &environment)
{
    const Environment *env = m_set.find(environment);
    if (!env)
        return nullptr;
    auto it = m_entries.find(environment);
    if (it != m_entries.end())
        return it->get();
    auto e = std::make_shared<Entry>();
    e->raw = rawEnvironments(m_text).value(environment);
    e->session = std::make_unique<StackSession>(*env);
    StackSession *s = e->session.get();
    connect(s, &StackSession::servicesChanged, this,
            [this, environment] { evaluate(environment); });
    connect(s, &StackSession::operationStarted, this,
            [this, environment](StackOperation op, const QString &service) {
                if (Entry *en = entry(environment))
                    en->stopping = op != StackOperation::Up && op != StackOperation::StartService &&
                        op != StackOperation::Pull && op != StackOperation::Build;
                emit operationStarted(environment, op, service);
            });
    connect(s, &StackSession::progress, this, [this, environment](const QString &message) {
        emit operationProgress(environment, message);
    });
    // Every build is a rollback point: the history keeps what it was made from.
    connect(s, &StackSession::built, this, [this, environment](const Build &b) {
        openHistory();
        m_history->recordBuild(b, this, [this, environment](Expected<qint64> id) {
            if (!id)
                emit operationProgress(
                    environment,
                    tr("The build could not be recorded in the history: %1").arg(id.error()));
        });
    });
    connect(s, &StackSession::operationFinished, this,
            [this, environment](const OperationResult &r) {
                if (Entry *en = entry(environment)) {
                    if (en->stopping)
                        en->quietSince.start();
                    en->stopping = false;
                    // Down and nothing left running: let others own it again,
                    // once the owner socket has answered whoever asked for it
                    // (its handler runs after this one).
                    if (en->control && r.operation == StackOperation::Down && r.ok()) {
                        en->releasing = true;
                        QMetaObject::invokeMethod(
                            this,
                            [this, environment] {
                                Entry *again = entry(environment);
                                if (again && again->control && again->releasing) {
                                    again->control.reset();
                                    again->releasing = false;
                                }
                            },
                            Qt::QueuedConnection);
                    }
                }
                // A start after a restore that did not finish finishes it.
                if (r.ok() && r.operation == StackOperation::Up)
                    clearRestoreMarker(environment);
                emit operationFinished(environment, r);
                if (const auto n = noticeOf(environment, r))
                    emit notice(*n);
            });
    if (env->kind == EnvironmentKind::Compose && !env->imageRepository.isEmpty() &&
        !env->imageServices.isEmpty()) {
        e->deployer = std::make_unique<Deployer>(s, m_history.get());
        if (m_live)
            e->deployer->restorePin();
        connect(e->deployer.get(), &Deployer::finished, this,
                [this, environment](const DeployResult &r) {
                    if (r.outcome == DeployResult::Outcome::Refused)
                        return;
                    Notice n;
                    n.environment = environment;
                    n.kind =
                        r.ok() ? Notice::Kind::DeploymentSucceeded : Notice::Kind::DeploymentFailed;
                    n.title = r.ok()
                        ? tr("Deployed %1 to %2").arg(r.deployment.toTag, environment)
                        : tr("Deployment to %1 %2").arg(environment, toString(r.outcome));
                    n.text = r.message;
                    emit notice(n);
                });
    }
    Entry *raw = e.get();
    m_entries.insert(environment, std::move(e));
    return raw;
}

StackSession *Workspace::session(const QString &environment)
{
    Entry *e = entry(environment);
    return e ? e->session.get() : nullptr;
}

Deployer *Workspace::deployer(const QString &environment)
{
    Entry *e = entry(environment);
    return e ? e->deployer.get() : nullptr;
}

void Workspace::startLive(const QString &shown)
{
    if (m_live)
        return;
    m_live = true;
    m_shown = shown;
    openHistory();
    for (auto &e : m_entries) {
        if (e->deployer)
            e->deployer->restorePin(); // queued after the open
    }
    for (const Environment &e : m_set.environments) {
        if (!e.isRemote() || e.name == shown)
            watch(e.name);
    }
    m_ownerPoll.start();
    for (const Environment &e : m_set.environments) {
        if (e.kind == EnvironmentKind::Native)
            pollOwner(e.name);
    }
}

void Workspace::followOwners()
{
    if (m_ownerPoll.isActive())
        return;
    m_ownerPoll.start();
    for (const Environment &e : m_set.environments) {
        if (e.kind == EnvironmentKind::Native)
            pollOwner(e.name);
    }
}

void Workspace::openHistory()
{
    if (m_historyOpening)
        return;
    m_historyOpening = true;
    // A failure is kept by the store: every later call (the Deployments
    // page's list, a deployment's first write) answers with it.
    m_history->open(DeploymentHistory::defaultPath(), DeploymentHistory::Mode::Writer, this,
                    [this](Expected<int> opened) {
                        if (!opened && m_face == Face::Window)
                            qWarning("pilothouse: %s", qUtf8Printable(opened.error()));
                    });
}

void Workspace::show(const QString &environment)
{
    m_shown = environment;
    if (m_live)
        watch(environment);
}

void Workspace::watch(const QString &environment)
{
    Entry *e = entry(environment);
    if (!e || e->watching)
        return;
    e->watching = true;
    e->session->startWatching();
}

bool Workspace::hasLiveData(const QString &environment) const
{
    const auto it = m_entries.constFind(environment);
    return it != m_entries.cend() && (*it)->live;
}

ServiceHealth Workspace::health(const QString &environment) const
{
    const auto it = m_entries.constFind(environment);
    if (it != m_entries.cend() && (*it)->live)
        return (*it)->health;
    return m_snapshots.value(environment).health;
}

ServiceHealth Workspace::overallHealth() const
{
    ServiceHealth worst = ServiceHealth::Unknown;
    bool any = false;
    for (const Environment &e : m_set.environments) {
        const auto it = m_entries.constFind(e.name);
        if (it == m_entries.cend() || !(*it)->watching)
            continue;
        const ServiceHealth h = health(e.name);
        // A stopped environment is a choice, not a problem: it does not redden the tray.
        if (h == ServiceHealth::Down || (h == ServiceHealth::Unknown && !(*it)->live))
            continue;
        if (!any || severity(h) > severity(worst))
            worst = h;
        any = true;
    }
    return any ? worst : ServiceHealth::Unknown;
}

std::optional<Notice> Workspace::noticeOf(const QString &environment, const OperationResult &r)
{
    if (r.outcome == OperationResult::Outcome::Cancelled)
        return std::nullopt;
    const QString what =
        r.service.isEmpty() ? environment : tr("%1 in %2").arg(r.service, environment);
    Notice n;
    n.environment = environment;
    if (!r.ok()) {
        if (r.operation == StackOperation::Pull || r.operation == StackOperation::Build)
            return std::nullopt; // said where it was asked, not news
        n.kind = Notice::Kind::ActionFailed;
        n.title = tr("%1 of %2 failed").arg(toString(r.operation), what);
        n.text = r.message;
        return n;
    }
    switch (r.operation) {
    case StackOperation::Up:
    case StackOperation::StartService:
        n.kind = Notice::Kind::Started;
        break;
    case StackOperation::Down:
    case StackOperation::StopService:
        n.kind = Notice::Kind::Stopped;
        break;
    case StackOperation::Restart:
        n.kind = Notice::Kind::Restarted;
        break;
    case StackOperation::Pull:
    case StackOperation::Build:
    case StackOperation::Scale:
    case StackOperation::Node:
        return std::nullopt;
    }
    n.title = tr("%1 %2").arg(what, toString(n.kind));
    return n;
}

void Workspace::evaluate(const QString &environment)
{
    Entry *e = entry(environment);
    if (!e)
        return;
    StackSession *s = e->session.get();
    e->live = true;
    const QList<ServiceRow> rows = s->services();
    const ServiceHealth h = s->aggregate();
    // A user's stop or restart (or a deployment) takes services down on purpose.
    const bool deploying = e->deployer && e->deployer->isBusy();
    const bool quiet =
        deploying || e->stopping || (e->quietSince.isValid() && e->quietSince.elapsed() < kQuietMs);
    for (const ServiceRow &r : rows) {
        const QString name = r.state.service;
        // A crash the supervisor or the engine restarted from: news even when
        // it comes back before any check saw it down.
        const int restarts = r.state.restartCount;
        const bool crashed = e->restarts.contains(name) && restarts > e->restarts.value(name);
        e->restarts.insert(name, restarts);
        if (crashed && !deploying) {
            emit notice({ Notice::Kind::Crashed, environment,
                          tr("%1 in %2 crashed and is restarting").arg(name, environment),
                          r.state.detail.isEmpty() ? r.detail : r.state.detail });
            e->serviceHealth.insert(name, ServiceHealth::Down);
            continue;
        }
        const auto before = e->serviceHealth.constFind(name);
        if (before != e->serviceHealth.cend() && !quiet) {
            const ServiceHealth was = *before;
            const bool bad =
                r.health == ServiceHealth::Unhealthy || r.health == ServiceHealth::Down;
            const bool wasBad = was == ServiceHealth::Unhealthy || was == ServiceHealth::Down;
            if (was == ServiceHealth::Healthy && bad) {
                emit notice({ Notice::Kind::Unhealthy, environment,
                              tr("%1 in %2 is %3").arg(name, environment, toString(r.health)),
                              r.detail });
            } else if (wasBad && r.health == ServiceHealth::Healthy) {
                emit notice({ Notice::Kind::Recovered, environment,
                              tr("%1 in %2 recovered").arg(name, environment),
                              tr("healthy again") });
            }
        }
        // Starting and unknown are passing phases, not news.
        if (r.health != ServiceHealth::Starting && r.health != ServiceHealth::Unknown)
            e->serviceHealth.insert(name, r.health);
    }
    Snapshot &snap = m_snapshots[environment];
    snap.at = QDateTime::currentDateTimeUtc();
    snap.health = h;
    snap.rows = rows;
    if (!m_snapshotTimer.isActive())
        m_snapshotTimer.start();
    if (h != e->health) {
        e->health = h;
        emit healthChanged(environment, h);
    }
}

void Workspace::refreshOwner(const QString &environment, std::function<void()> then)
{
    pollOwner(environment, std::move(then));
}

void Workspace::pollOwner(const QString &environment, std::function<void()> then)
{
    const auto answered = [this, then] {
        if (then)
            QMetaObject::invokeMethod(this, then, Qt::QueuedConnection);
    };
    Entry *e = entry(environment);
    if (!e || e->control || e->session->isBusy() ||
        e->session->environment().kind != EnvironmentKind::Native) {
        answered();
        return;
    }
    if (e->pollBusy) {
        if (then)
            e->ownerWaiters << then;
        return;
    }
    // Ours (we supervise something): nothing to ask.
    if (NativeDriver *d = e->session->nativeDriver()) {
        for (const ServiceState &st : d->states()) {
            if (st.pid > 0) {
                answered();
                return;
            }
        }
    }
    e->pollBusy = true;
    if (then)
        e->ownerWaiters << then;
    auto *client = new NativeControlClient(environment, this);
    auto adopted = std::make_shared<bool>(false);
    connect(client, &NativeControlClient::reply, this,
            [this, environment, adopted](const QJsonObject &answer) {
                Entry *en = entry(environment);
                if (!en)
                    return;
                QList<ServiceState> states;
                for (const QJsonValue &v : answer.value(u"states").toArray())
                    states << serviceStateFromJson(v.toObject());
                *adopted = true;
                if (const auto path = nativeControlPath(environment))
                    m_owners.insert(environment,
                                    lockHolder(*path + QStringLiteral(".lock")).describe());
                en->session->adoptStates(states);
            });
    connect(client, &NativeControlClient::done, this,
            [this, environment, client, adopted](const QString &) {
                client->deleteLater();
                Entry *en = entry(environment);
                if (!en)
                    return;
                en->pollBusy = false;
                if (!*adopted && m_owners.remove(environment) > 0) {
                    // The other owner is gone: back to what we know ourselves.
                    if (NativeDriver *d = en->session->nativeDriver())
                        en->session->adoptStates(d->states());
                }
                for (const auto &waiter : std::exchange(en->ownerWaiters, {}))
                    waiter();
            });
    client->send({ { QStringLiteral("op"), QStringLiteral("status") } });
}

void Workspace::forward(const QString &environment, StackOperation op, const QString &service,
                        const std::function<void(StackSession *)> &local)
{
    Entry *e = entry(environment);
    if (!e)
        return;
    const QString owner = m_owners.value(environment);
    if (e->session->environment().kind == EnvironmentKind::Native && !e->control &&
        owner.isEmpty() && !e->session->isBusy()) {
        // Native processes nobody runs (not this process, no owner answers):
        // nothing to stop, and a restart must not start them unowned.
        const bool down = op == StackOperation::Down || op == StackOperation::StopService;
        const OperationResult r {
            op, service,
            down ? OperationResult::Outcome::Succeeded : OperationResult::Outcome::Failed,
            down ? tr("\"%1\" is not running").arg(environment)
                 : tr("\"%1\" is not running; start it first (Start, or pilothousectl up --env %1)")
                       .arg(environment)
        };
        QMetaObject::invokeMethod(
            this, [this, environment, r] { emit operationFinished(environment, r); },
            Qt::QueuedConnection);
        return;
    }
    if (owner.isEmpty() || e->control) {
        local(e->session.get());
        return;
    }
    // Native processes that another front end owns: ask it.
    const QString name = toString(op); // the control socket's names: down, restart, stop, start
    emit operationStarted(environment, op, service);
    emit operationProgress(environment, tr("Asking %1, which runs %2").arg(owner, environment));
    auto *client = new NativeControlClient(environment, this);
    auto answered = std::make_shared<std::optional<OperationResult>>();
    connect(client, &NativeControlClient::reply, this,
            [answered, op, service](const QJsonObject &a) {
                *answered =
                    OperationResult { op, service,
                                      a.value(u"ok").toBool() ? OperationResult::Outcome::Succeeded
                                                              : OperationResult::Outcome::Failed,
                                      a.value(u"message").toString() };
            });
    connect(client, &NativeControlClient::done, this,
            [this, environment, client, answered, op, service](const QString &error) {
                client->deleteLater();
                OperationResult r = answered->value_or(OperationResult {
                    op, service, OperationResult::Outcome::Failed,
                    error.isEmpty() ? tr("the owner went away without an answer")
                                    : tr("\"%1\" is %2").arg(environment, error) });
                if (Entry *en = entry(environment); en && op != StackOperation::StartService)
                    en->quietSince.start();
                pollOwner(environment);
                emit operationFinished(environment, r);
            });
    QJsonObject request { { QStringLiteral("op"), name } };
    if (!service.isEmpty())
        request.insert(QStringLiteral("service"), service);
    client->send(request);
}

void Workspace::up(const QString &environment)
{
    Entry *e = entry(environment);
    if (!e)
        return;
    if (e->session->environment().kind == EnvironmentKind::Native && !e->control) {
        // Whoever starts native processes owns them, and says so on its socket.
        auto control = std::make_unique<NativeControlServer>(e->session.get());
        const Outcome listening = control->listen();
        if (!listening) {
            const OperationResult r {
                StackOperation::Up, {}, OperationResult::Outcome::Failed, listening.error()
            };
            QMetaObject::invokeMethod(
                this, [this, environment, r] { emit operationFinished(environment, r); },
                Qt::QueuedConnection);
            return;
        }
        e->control = std::move(control);
        m_owners.remove(environment);
    }
    e->releasing = false; // started again before the owner socket was let go
    // What the user starts comes up; that is not a recovery to announce.
    e->serviceHealth.clear();
    if (e->deployer) {
        // The tag deployed last comes back, whichever face starts the stack.
        openHistory();
        e->deployer->restorePin(
            [session = QPointer<StackSession>(e->session.get())](const QString &note) {
                if (!session)
                    return;
                if (!note.isEmpty())
                    session->note(note);
                session->up();
            });
        return;
    }
    e->session->up();
}

void Workspace::build(const QString &environment)
{
    Entry *e = entry(environment);
    if (!e)
        return;
    openHistory();
    e->session->build();
}

void Workspace::down(const QString &environment)
{
    forward(environment, StackOperation::Down, {}, [](StackSession *s) { s->down(); });
}

void Workspace::restart(const QString &environment, const QString &service)
{
    forward(environment, StackOperation::Restart, service,
            [service](StackSession *s) { s->restart(service); });
}

void Workspace::stopService(const QString &environment, const QString &service)
{
    forward(environment, StackOperation::StopService, service,
            [service](StackSession *s) { s->stopService(service); });
}

void Workspace::startService(const QString &environment, const QString &service)
{
    if (Entry *e = entry(environment))
        e->serviceHealth.remove(service);
    forward(environment, StackOperation::StartService, service,
            [service](StackSession *s) { s->startService(service); });
}

void Workspace::cancel(const QString &environment)
{
    if (Entry *e = entry(environment)) {
        if (e->deployer && e->deployer->isBusy())
            e->deployer->cancel();
        else
            e->session->cancel();
    }
}

bool Workspace::hasRunningDeployment() const
{
    for (const auto &e : m_entries) {
        if (e->deployer && e->deployer->isBusy())
            return true;
    }
    return false;
}

bool Workspace::hasRunningNative() const
{
    for (const auto &e : m_entries) {
        if (e->control && !e->releasing)
            return true;
    }
    return false;
}

void Workspace::shutdown()
{
    // Native processes this window owns stop cleanly (SIGTERM, then SIGKILL
    // after their grace); everything else keeps running, as with any tool.
    auto pending = std::make_shared<int>(0);
    for (auto it = m_entries.begin(); it != m_entries.end(); ++it) {
        Entry &e = **it;
        if (e.deployer && e.deployer->isBusy()) {
            // Cancelled, it puts the previous tag back; wait for that to end.
            ++*pending;
            connect(
                e.deployer.get(), &Deployer::finished, this,
                [this, pending] {
                    if (--*pending == 0)
                        emit shutdownFinished();
                },
                Qt::SingleShotConnection);
            e.deployer->cancel();
        }
        if (!e.control)
            continue;
        ++*pending;
        connect(e.session.get(), &StackSession::operationFinished, this,
                [this, pending](const OperationResult &r) {
                    if (r.operation != StackOperation::Down)
                        return;
                    if (--*pending == 0)
                        emit shutdownFinished();
                });
        if (e.session->isBusy())
            e.session->cancel();
        e.session->down();
    }
    if (*pending == 0)
        QMetaObject::invokeMethod(
            this, [this] { emit shutdownFinished(); }, Qt::QueuedConnection);
}

} // namespace pilothouse
