// pilothousectl: status, control, health, database and logs of an environment,
// for people at a terminal and for scripts (--json). Exit codes: 0 ok,
// 1 unhealthy, 2 usage, 3 environment or engine error.

#include "core/json.h"
#include "core/secrets.h"
#include "core/session.h"
#include "core/terminationsignals.h"
#include "core/workspace.h"
#include "db/backup.h"
#include "deploy/deployer.h"
#include "deploy/history.h"
#include "deploy/historystore.h"
#include "drivers/docker.h"
#include "drivers/nativecontrol.h"
#include "drivers/nativedriver.h"
#include "engine/connectioncheck.h"
#include "engine/sshconnection.h"
#include "env/environment.h"
#include "registry/registryclient.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTextStream>
#include <QTime>
#include <QTimer>
#include <cstdio>
#include <optional>
#include <termios.h>
#include <unistd.h>

using namespace pilothouse;

namespace {

enum Exit { Ok = 0, Unhealthy = 1, Usage = 2, EnvError = 3 };

QTextStream &out()
{
    static QTextStream s(stdout);
    return s;
}
QTextStream &err()
{
    static QTextStream s(stderr);
    return s;
}

// Ctrl+C / SIGTERM / SIGHUP reach the command's own stop (cancel, down, ...)
// on the event loop; the latest command to install one gets them.
void installSignalHandlers(std::function<void()> onStop)
{
    static TerminationSignals *heard = nullptr;
    static std::function<void()> current;
    current = std::move(onStop);
    if (heard)
        return;
    heard = new TerminationSignals(QCoreApplication::instance());
    QObject::connect(heard, &TerminationSignals::received, heard, [](int, int) {
        if (current)
            current();
    });
}

void printJson(const QJsonObject &o)
{
    out() << QJsonDocument(o).toJson(QJsonDocument::Indented);
    out().flush();
}

QString pad(const QString &s, int w)
{
    return s.leftJustified(w, QLatin1Char(' '));
}

// One environment's commands, over the same Workspace as the window: its
// session, its deployer (and so the tag deployed last), its history.
class Ctl final : public QObject
{
public:
    Ctl(Workspace &workspace, const Environment &env, const QCommandLineParser &p)
        : m_workspace(workspace)
        , m_env(env)
        , m_p(p)
        , m_json(p.isSet(QStringLiteral("json")))
        , m_session(workspace.session(env.name))
    {
        connect(m_session, &StackSession::progress, this, [this](const QString &m) {
            if (!m_json)
                err() << "  " << m << Qt::endl;
        });
        if (const QString restore = unfinishedRestore(env.name); !restore.isEmpty())
            err() << "pilothousectl: " << restore << Qt::endl;
    }

    // The commands (see kCommands), each returning an exit code.
    int status(const QStringList &) { return statusImpl(); }
    int health(const QStringList &) { return healthImpl(); }
    int db(const QStringList &) { return dbImpl(); }
    int up(const QStringList &)
    {
        return m_env.kind == EnvironmentKind::Native ? supervise()
                                                     : operate(QStringLiteral("up"), {});
    }
    int down(const QStringList &args)
    {
        if (m_p.isSet(QStringLiteral("volumes"))) {
            if (m_env.kind != EnvironmentKind::Swarm) {
                err() << "pilothousectl: --volumes is for swarm stacks" << Qt::endl;
                return Usage;
            }
            m_session->setRemoveVolumes(true);
        }
        return control(QStringLiteral("down"), args);
    }
    int restart(const QStringList &args) { return control(QStringLiteral("restart"), args); }
    int logs(const QStringList &args) { return logsImpl(args); }
    int watch(const QStringList &) { return watchImpl(); }
    int backup(const QStringList &) { return backupImpl(); }
    int backups(const QStringList &) { return backupsImpl(); }
    int restore(const QStringList &args) { return restoreImpl(args); }
    int deploy(const QStringList &) { return deployOrRollback(false); }
    int rollback(const QStringList &) { return deployOrRollback(true); }
    int scale(const QStringList &args) { return scaleImpl(args); }
    int nodes(const QStringList &) { return nodesImpl(); }
    int node(const QStringList &args) { return nodeImpl(args); }
    int tags(const QStringList &);
    int build(const QStringList &);
    int history(const QStringList &);
    int setDbPassword(const QStringList &);

private:
    int control(const QString &command, const QStringList &args)
    {
        const QString service = args.value(0);
        if (!service.isEmpty() && !isValidServiceName(service)) {
            err() << "pilothousectl: \"" << service << "\" is not a valid service name" << Qt::endl;
            return Usage;
        }
        // Whoever owns the processes is asked, through the workspace.
        if (m_env.kind == EnvironmentKind::Native && !askOwner())
            return EnvError;
        return operate(command, service);
    }

    // Who runs a native environment now (its owner socket), within 10 s; a
    // silent owner is an error, never taken for "not running".
    bool askOwner()
    {
        auto waiting = std::make_shared<bool>(true);
        m_workspace.refreshOwner(m_env.name, [this, waiting] {
            if (*waiting)
                done(0);
        });
        const int rc = loop(10000);
        *waiting = false;
        if (rc != 0)
            err() << "pilothousectl: the owner of \"" << m_env.name
                  << "\" did not answer within 10 s; it may be stopped (Ctrl+Z) or hung"
                  << Qt::endl;
        return rc == 0;
    }

    // Runs the event loop until done() is called or the deadline passes.
    int loop(int timeoutMs = 0)
    {
        // A timer of this loop only: it must not end a later one.
        QTimer deadline;
        deadline.setSingleShot(true);
        connect(&deadline, &QTimer::timeout, this, [] { QCoreApplication::exit(-1); });
        if (timeoutMs > 0)
            deadline.start(timeoutMs);
        return QCoreApplication::exec();
    }
    // Queued: an answer may come before the loop runs (a socket that fails at once).
    void done(int code)
    {
        QMetaObject::invokeMethod(
            qApp, [code] { QCoreApplication::exit(code); }, Qt::QueuedConnection);
    }

    // Waits until the engine is seeded, every endpoint answered once and the database probe came
    // back.
    bool gather(int timeoutMs)
    {
        HealthMonitor *mon = m_session->monitor();
        const auto complete = [this, mon] {
            if (m_session->watcher() && !m_session->watcher()->isSeeded() &&
                m_session->watcher()->engineStatus() != EngineWatcher::EngineStatus::Disconnected)
                return false;
            for (int id : mon->ids()) {
                if (!mon->endpoint(id)->lastChecked.isValid())
                    return false;
            }
            return !m_session->databaseProbe() || m_dbAnswered;
        };
        connect(m_session, &StackSession::databaseChanged, this, [this] { m_dbAnswered = true; });
        QTimer poll;
        connect(&poll, &QTimer::timeout, this, [this, complete, &poll] {
            if (complete()) {
                poll.stop();
                done(0);
            }
        });
        poll.start(20);
        m_session->startWatching();
        const int rc = loop(timeoutMs);
        return rc == 0;
    }

    int statusImpl()
    {
        // The owner's view, when another process runs it.
        if (m_env.kind == EnvironmentKind::Native && !askOwner())
            return EnvError;
        gather(15000);
        const QList<ServiceRow> rows = m_session->services();
        const ServiceHealth agg = m_session->aggregate();
        EngineWatcher *w = m_session->watcher();
        const bool engineDown = w && w->engineStatus() == EngineWatcher::EngineStatus::Disconnected;
        if (m_json) {
            printJson(statusJson(*m_session));
        } else {
            out() << m_env.name << " (" << toString(m_env.kind) << "): " << toString(agg)
                  << Qt::endl;
            if (const SshConnection *c = m_session->sshConnection())
                out() << "  connection: ssh to " << c->target().display() << ", "
                      << toString(c->state())
                      << (c->reason().isEmpty() ? QString() : QStringLiteral(": ") + c->reason())
                      << Qt::endl;
            if (engineDown)
                out() << "  engine: " << w->engineError() << Qt::endl;
            const SwarmView *swarm = m_session->swarmView();
            if (swarm && !swarm->problem.isEmpty())
                out() << "  swarm: " << swarm->problem << Qt::endl;
            // A swarm's rows are tasks: the task, its node, the replicas.
            out() << "  " << pad(swarm ? QStringLiteral("TASK") : QStringLiteral("SERVICE"), 14)
                  << (swarm ? pad(QStringLiteral("REPLICAS"), 10) + pad(QStringLiteral("NODE"), 12)
                            : QString())
                  << pad(QStringLiteral("STATE"), 13) << pad(QStringLiteral("HEALTH"), 11)
                  << pad(QStringLiteral("IMAGE"), 40) << "DETAIL" << Qt::endl;
            for (const ServiceRow &r : rows) {
                const QString name =
                    swarm && !r.state.container.isEmpty() ? r.state.container : r.state.service;
                out() << "  " << pad(name, 14)
                      << (swarm ? pad(r.replicas.isEmpty() ? QStringLiteral("-") : r.replicas, 10) +
                                  pad(r.state.node.isEmpty() ? QStringLiteral("-") : r.state.node,
                                      12)
                                : QString())
                      << pad(toString(r.state.state), 13) << pad(toString(r.health), 11)
                      << pad(r.state.image, 40) << r.detail
                      << (r.rollout.isEmpty() ? QString()
                                              : QStringLiteral(" [rollout: %1]").arg(r.rollout))
                      << Qt::endl;
            }
            if (m_session->databaseProbe()) {
                const DatabaseFacts &f = m_session->databaseProbe()->facts();
                out() << "  database " << f.dsn << ": "
                      << (f.reachable()
                              ? QStringLiteral("reachable, migration %1").arg(f.migrationVersion)
                              : f.error)
                      << Qt::endl;
            }
        }
        if (engineDown)
            return EnvError;
        return agg == ServiceHealth::Healthy ? Ok : Unhealthy;
    }

    int healthImpl()
    {
        gather(15000);
        HealthMonitor *mon = m_session->monitor();
        bool allGood = true;
        for (int id : mon->ids()) {
            const EndpointState *e = mon->endpoint(id);
            allGood =
                allGood && (e->status == EndpointStatus::Pass || e->status == EndpointStatus::Warn);
            if (!m_json) {
                out() << pad(e->service, 14) << pad(toString(e->status), 8)
                      << pad(e->lastLatencyMs < 0
                                 ? QStringLiteral("-")
                                 : QStringLiteral("%1 ms").arg(e->lastLatencyMs, 0, 'f', 1),
                             11)
                      << e->endpoint.url.toString()
                      << (e->detail.isEmpty() ? QString() : QStringLiteral("  ") + e->detail)
                      << Qt::endl;
            }
        }
        if (m_json)
            printJson(healthJson(m_env.name, *mon));
        else if (mon->ids().isEmpty())
            out() << m_env.name << ": no health endpoints configured" << Qt::endl;
        return allGood ? Ok : Unhealthy;
    }

    // Backs up the environment's database, verified; prints where. The probe
    // runs first: it finds the database's container and its schema version.
    int backupImpl()
    {
        DatabaseProbe *probe = m_session->databaseProbe();
        if (!probe) {
            err() << "pilothousectl: environment \"" << m_env.name
                  << "\" has no database configured (add \"database\": {\"dsn\": ...})" << Qt::endl;
            return EnvError;
        }
        int rc = Ok;
        BackupJob job(m_session);
        connect(&job, &BackupJob::progress, this, [this](const QString &message) {
            if (!m_json)
                err() << m_env.name << ": " << message << Qt::endl;
        });
        connect(&job, &BackupJob::finished, this,
                [this, &rc](const BackupInfo &i, const QString &error) {
                    if (!error.isEmpty()) {
                        err() << "pilothousectl: the backup of " << m_env.name
                              << " failed: " << error << Qt::endl;
                        rc = EnvError;
                    } else if (m_json) {
                        printJson(toJson(i));
                    } else {
                        out() << i.path << Qt::endl
                              << "  " << QString::number(i.size / 1048576.0, 'f', 2) << " MiB, "
                              << i.format << ", schema version "
                              << (i.schemaVersion < 0 ? QStringLiteral("unknown")
                                                      : QString::number(i.schemaVersion))
                              << ", sha256 " << i.sha256 << Qt::endl
                              << "  verified: " << i.verified << ", in "
                              << QString::number(i.elapsedMs / 1000.0, 'f', 1) << " s" << Qt::endl;
                    }
                    done(0);
                });
        bool started = false;
        connect(
            probe, &DatabaseProbe::finished, &job,
            [&job, &started] {
                if (!started) {
                    started = true;
                    job.start(QStringLiteral("manual"));
                }
            },
            Qt::SingleShotConnection);
        // The database is found through the engine; one that never answers
        // is an error, not a wait without end.
        QTimer noEngine;
        noEngine.setSingleShot(true);
        connect(&noEngine, &QTimer::timeout, this, [this, &rc, &started] {
            if (started)
                return;
            started = true;
            const EngineWatcher *w = m_session->watcher();
            err() << "pilothousectl: the database of " << m_env.name << " could not be found"
                  << (w && !w->engineError().isEmpty() ? QStringLiteral(": ") + w->engineError()
                                                       : QString())
                  << Qt::endl;
            rc = EnvError;
            done(0);
        });
        noEngine.start(probe->timeoutMs() + 20000);
        installSignalHandlers([&job, &rc, &started, this] {
            if (job.isRunning()) {
                job.cancel(); // its finished() ends the command, with exit 3
                return;
            }
            started = true;
            rc = EnvError;
            done(0);
        });
        if (m_session->watcher())
            m_session->watcher()->start();
        m_session->probeDatabase();
        loop();
        return rc;
    }

    // Puts a backup back (see RestoreJob); asks for --yes, since the data
    // written since the backup is lost (a safety backup is taken first).
    int restoreImpl(const QStringList &args)
    {
        if (args.size() != 1) {
            err() << "pilothousectl: restore needs one BACKUP (a path from `pilothousectl "
                     "backups`)"
                  << Qt::endl;
            return Usage;
        }
        const QString wanted = QFileInfo(args.first()).absoluteFilePath();
        std::optional<BackupInfo> backup;
        for (const BackupInfo &b : listBackups(m_env.name)) {
            if (QFileInfo(b.path).absoluteFilePath() == wanted)
                backup = b;
        }
        if (!backup) {
            err() << "pilothousectl: " << wanted << " is not a backup of " << m_env.name
                  << " (see pilothousectl backups)" << Qt::endl;
            return EnvError;
        }
        if (!m_p.isSet(QStringLiteral("yes"))) {
            err() << "pilothousectl: restoring " << backup->path << " (taken "
                  << backup->takenAt.toLocalTime().toString(Qt::ISODate)
                  << ") replaces the database of " << m_env.name
                  << ": what was written since then is lost (a safety backup is taken "
                     "first). Run again with --yes to do it."
                  << Qt::endl;
            return Usage;
        }
        DatabaseProbe *probe = m_session->databaseProbe();
        if (!probe) {
            err() << "pilothousectl: environment \"" << m_env.name << "\" has no database"
                  << Qt::endl;
            return EnvError;
        }
        int rc = Ok;
        RestoreJob job(m_session);
        connect(&job, &RestoreJob::progress, this, [this](const QString &message) {
            if (!m_json)
                err() << m_env.name << ": " << message << Qt::endl;
        });
        connect(&job, &RestoreJob::finished, this,
                [this, &rc](const QString &error, const QString &safety) {
                    if (!error.isEmpty()) {
                        err() << "pilothousectl: " << error << Qt::endl;
                        rc = EnvError;
                    } else {
                        out() << "restored " << m_env.name
                              << (safety.isEmpty()
                                      ? QString()
                                      : QStringLiteral("; the state before it is in ") + safety)
                              << Qt::endl;
                    }
                    done(0);
                });
        bool started = false;
        const auto begin = [&job, &started, &backup] {
            if (!started) {
                started = true;
                job.start(*backup);
            }
        };
        if (backup->format == QLatin1String("sqlite")) {
            // A native environment: whether it runs is known from its owner.
            if (!askOwner())
                return EnvError;
            begin();
        } else {
            connect(probe, &DatabaseProbe::finished, &job, begin, Qt::SingleShotConnection);
            if (m_session->watcher())
                m_session->watcher()->start();
            m_session->probeDatabase();
        }
        installSignalHandlers([&started, &rc, this] {
            if (!started) {
                rc = EnvError;
                done(0);
            }
            // Under way: it finishes (stopping halfway would leave services stopped).
        });
        loop();
        return rc;
    }

    // scale SERVICE N: the count as the engine has it, once it has it.
    int scaleImpl(const QStringList &args)
    {
        bool ok = false;
        const int replicas = args.value(1).toInt(&ok);
        if (args.size() != 2 || !ok || replicas < 0 || !isValidServiceName(args.value(0))) {
            err() << "pilothousectl: scale SERVICE N (N from 0 to 100)" << Qt::endl;
            return Usage;
        }
        if (m_env.kind != EnvironmentKind::Swarm) {
            err() << "pilothousectl: \"" << m_env.name << "\" is a " << toString(m_env.kind)
                  << " environment; scale is for swarm stacks" << Qt::endl;
            return EnvError;
        }
        const QString service = args.value(0);
        int rc = runOperation([this, service, replicas] { m_session->scale(service, replicas); });
        if (rc != Ok || !m_p.isSet(QStringLiteral("wait")))
            return rc;
        // --wait: until that many run and are healthy.
        return waitHealthy(int(m_p.value(QStringLiteral("wait")).toDouble() * 1000));
    }

    int nodeImpl(const QStringList &args)
    {
        const QString node = args.value(0);
        QString availability = args.value(1);
        if (availability == QLatin1String("activate"))
            availability = QStringLiteral("active");
        if (args.size() != 2 || node.isEmpty()) {
            err() << "pilothousectl: node NODE drain|active|pause (pilothousectl nodes lists "
                     "them)"
                  << Qt::endl;
            return Usage;
        }
        if (m_env.kind != EnvironmentKind::Swarm) {
            err() << "pilothousectl: \"" << m_env.name << "\" is a " << toString(m_env.kind)
                  << " environment; nodes are a swarm's" << Qt::endl;
            return EnvError;
        }
        return runOperation(
            [this, node, availability] { m_session->setNodeAvailability(node, availability); });
    }

    int nodesImpl()
    {
        if (m_env.kind != EnvironmentKind::Swarm) {
            err() << "pilothousectl: \"" << m_env.name << "\" is a " << toString(m_env.kind)
                  << " environment; nodes are a swarm's" << Qt::endl;
            return EnvError;
        }
        gather(15000);
        const SwarmView *view = m_session->swarmView();
        EngineWatcher *w = m_session->watcher();
        if (w && w->engineStatus() == EngineWatcher::EngineStatus::Disconnected) {
            err() << "pilothousectl: " << w->engineError() << Qt::endl;
            return EnvError;
        }
        if (!view->problem.isEmpty()) {
            if (m_json)
                printJson(toJson(*view));
            else
                err() << "pilothousectl: " << view->problem << Qt::endl;
            return EnvError;
        }
        if (m_json) {
            QJsonArray a;
            for (const SwarmNode &n : view->nodes)
                a.append(toJson(n));
            printJson(QJsonObject { { QStringLiteral("environment"), m_env.name },
                                    { QStringLiteral("nodes"), a } });
            return Ok;
        }
        out() << pad(QStringLiteral("NODE"), 20) << pad(QStringLiteral("ROLE"), 9)
              << pad(QStringLiteral("STATUS"), 8) << pad(QStringLiteral("AVAILABILITY"), 14)
              << pad(QStringLiteral("MANAGER"), 12) << pad(QStringLiteral("ENGINE"), 16) << "ID"
              << Qt::endl;
        for (const SwarmNode &n : view->nodes)
            out() << pad(n.hostname + (n.self ? QStringLiteral(" *") : QString()), 20)
                  << pad(n.role, 9) << pad(n.status, 8) << pad(n.availability, 14)
                  << pad(n.managerStatus.isEmpty() ? QStringLiteral("-") : n.managerStatus, 12)
                  << pad(n.engineVersion, 16) << n.id << Qt::endl;
        return Ok;
    }

    // One session operation; its outcome printed; Ctrl+C cancels it.
    int runOperation(const std::function<void()> &start)
    {
        int rc = Ok;
        connect(m_session, &StackSession::operationFinished, this,
                [this, &rc](const OperationResult &r) {
                    if (!r.ok()) {
                        err() << "pilothousectl: " << r.message << Qt::endl;
                        rc =
                            r.outcome == OperationResult::Outcome::Cancelled ? Unhealthy : EnvError;
                    } else if (!r.message.isEmpty()) {
                        err() << m_env.name << ": " << r.message << Qt::endl;
                    }
                    done(0);
                });
        installSignalHandlers([this] { m_session->cancel(); });
        start();
        loop();
        return rc;
    }

    int backupsImpl()
    {
        const QList<BackupInfo> list = listBackups(m_env.name);
        if (m_json) {
            QJsonArray a;
            for (const BackupInfo &i : list)
                a.append(toJson(i));
            printJson(QJsonObject { { QStringLiteral("environment"), m_env.name },
                                    { QStringLiteral("folder"), backupFolder(m_env.name) },
                                    { QStringLiteral("backups"), a } });
            return Ok;
        }
        if (list.isEmpty()) {
            out() << "no backups of " << m_env.name << " yet (in " << backupFolder(m_env.name)
                  << "); pilothousectl backup takes one" << Qt::endl;
            return Ok;
        }
        for (const BackupInfo &i : list)
            out() << i.takenAt.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm:ss")) << "  "
                  << pad(QString::number(i.size / 1048576.0, 'f', 2) + QStringLiteral(" MiB"), 12)
                  << "  schema "
                  << pad(i.schemaVersion < 0 ? QStringLiteral("?")
                                             : QString::number(i.schemaVersion),
                         4)
                  << "  " << pad(i.verifiedOk() ? QStringLiteral("verified") : i.verified, 9)
                  << "  " << i.path << Qt::endl;
        return Ok;
    }

    int dbImpl()
    {
        DatabaseProbe *probe = m_session->databaseProbe();
        if (!probe) {
            err() << "pilothousectl: environment \"" << m_env.name
                  << "\" has no database configured (add \"database\": {\"dsn\": ...})" << Qt::endl;
            return EnvError;
        }
        connect(probe, &DatabaseProbe::finished, this, [this] { done(0); });
        // A database in the stack is found through the engine: watch it.
        if (m_session->watcher())
            m_session->watcher()->start();
        m_session->probeDatabase();
        loop(probe->timeoutMs() + 20000);
        const DatabaseFacts &f = probe->facts();
        if (m_json) {
            printJson(toJson(f));
        } else {
            out() << "database:    " << f.dsn << Qt::endl;
            if (!f.reachable()) {
                out() << "status:      " << toString(f.reachability) << ": " << f.error << Qt::endl;
            } else {
                out() << "status:      reachable" << Qt::endl
                      << "version:     " << f.engine << ' ' << f.serverVersion << Qt::endl
                      << "latency:     " << QString::number(f.latencyMs, 'f', 2) << " ms"
                      << Qt::endl
                      << "size:        " << f.sizeBytes << " bytes" << Qt::endl;
                if (f.connectionsMax > 0)
                    out() << "connections: " << f.connectionsUsed << " / " << f.connectionsMax
                          << Qt::endl;
                out() << "migration:   "
                      << (f.migrationVersion < 0 ? QStringLiteral("none (no schema_migrations)")
                                                 : QString::number(f.migrationVersion))
                      << Qt::endl;
                for (const TableSize &t : f.largestTables)
                    out() << "table:       " << pad(t.name, 28) << t.bytes << " bytes, " << t.rows
                          << " rows" << Qt::endl;
            }
        }
        return f.reachable() ? Ok : Unhealthy;
    }

    int operate(const QString &command, const QString &service)
    {
        int rc = Ok;
        connect(&m_workspace, &Workspace::operationFinished, this,
                [this, &rc](const QString &environment, const OperationResult &r) {
                    if (environment != m_env.name)
                        return;
                    if (!r.ok()) {
                        err() << "pilothousectl: " << r.message << Qt::endl;
                        rc = EnvError;
                    } else if (!r.message.isEmpty()) {
                        err() << "pilothousectl: " << r.message << Qt::endl;
                    } else if (!m_json && m_env.kind == EnvironmentKind::Native) {
                        err() << m_env.name << ": done" << Qt::endl;
                    }
                    done(0);
                });
        installSignalHandlers([this] {
            if (m_session->isBusy())
                m_session->cancel();
            else
                done(Unhealthy); // waiting for health: stop waiting
        });
        // Through the workspace, as the window does: a start keeps the tag
        // deployed last, whatever the compose file's default.
        if (command == QLatin1String("up"))
            m_workspace.up(m_env.name);
        else if (command == QLatin1String("down"))
            m_workspace.down(m_env.name);
        else if (command == QLatin1String("build"))
            m_workspace.build(m_env.name);
        else
            m_workspace.restart(m_env.name, service);
        loop();
        if (rc != Ok || !m_p.isSet(QStringLiteral("wait")))
            return rc;
        return waitHealthy(int(m_p.value(QStringLiteral("wait")).toDouble() * 1000));
    }

    // deploy --tag TAG / rollback [--to TAG]: through the health gate, with
    // progress on stderr; Ctrl+C cancels (and the service goes back).
    int deployOrRollback(bool rollback)
    {
        const QString tag = m_p.value(rollback ? QStringLiteral("to") : QStringLiteral("tag"));
        if (!rollback && tag.isEmpty()) {
            err() << "pilothousectl: deploy needs --tag TAG (see pilothousectl tags)" << Qt::endl;
            return Usage;
        }
        if (!tag.isEmpty() && !isValidImageTag(tag)) {
            err() << "pilothousectl: \"" << tag << "\" is not a valid image tag" << Qt::endl;
            return Usage;
        }
        // The workspace's deployer and history, as the window's; an
        // environment without one still gets the deployer's refusal.
        m_workspace.openHistory();
        gather(15000);
        std::unique_ptr<Deployer> refuser;
        Deployer *deployerPtr = m_workspace.deployer(m_env.name);
        if (!deployerPtr) {
            refuser = std::make_unique<Deployer>(m_session, m_workspace.history());
            deployerPtr = refuser.get();
        }
        Deployer &deployer = *deployerPtr;
        connect(&deployer, &Deployer::stepChanged, this,
                [this](DeployStep, const QString &message) {
                    if (!m_json)
                        err() << QTime::currentTime().toString(QStringLiteral("HH:mm:ss")) << ' '
                              << message << Qt::endl;
                });
        DeployResult result;
        connect(&deployer, &Deployer::finished, this, [this, &result](const DeployResult &r) {
            result = r;
            done(0);
        });
        installSignalHandlers([&deployer] { deployer.cancel(); });
        // What the strategy costs, before anything moves (no confirmation
        // here: the command is the decision).
        if (!m_json && !deployer.rolloutCaveat().isEmpty())
            err() << "note: deploy.strategy " << deployer.strategyName() << ": "
                  << deployer.rolloutCaveat() << Qt::endl;
        if (rollback) {
            std::optional<Expected<RollbackPlan>> plan;
            deployer.planRollback(tag, this, [this, &plan](Expected<RollbackPlan> r) {
                plan = r;
                done(0);
            });
            loop();
            if (!plan || !*plan) {
                const QString why = plan ? plan->error() : QStringLiteral("no answer");
                if (m_json)
                    printJson(refusalJson(m_env.name, why));
                else
                    err() << "pilothousectl: " << why << Qt::endl;
                return EnvError;
            }
            const RollbackPlan &pl = plan->value();
            if (!m_json)
                err() << "rolling back " << pl.service << ": " << pl.fromTag << " -> " << pl.toTag
                      << Qt::endl;
            if (!pl.schemaWarning.isEmpty())
                err() << "warning: " << pl.schemaWarning << Qt::endl;
            deployer.rollback(pl);
        } else {
            deployer.deploy(tag);
        }
        loop();
        if (m_json) {
            printJson(toJson(result, m_env.name, deployer.services(), deployer.runningTag()));
        } else {
            (result.ok() ? out() : err()) << m_env.name << ": " << toString(result.outcome) << ": "
                                          << result.message << Qt::endl;
            for (const QString &line : result.logLines)
                err() << "  | " << line << Qt::endl;
        }
        if (result.outcome == DeployResult::Outcome::Succeeded)
            return Ok;
        return result.outcome == DeployResult::Outcome::Refused ? EnvError : Unhealthy;
    }

    int waitHealthy(int timeoutMs)
    {
        m_session->startWatching();
        QTimer poll;
        connect(&poll, &QTimer::timeout, this, [this, &poll] {
            if (m_session->aggregate() == ServiceHealth::Healthy) {
                poll.stop();
                done(0);
            }
        });
        poll.start(100);
        loop(timeoutMs);
        const ServiceHealth agg = m_session->aggregate();
        if (!m_json)
            err() << m_env.name << ": " << toString(agg) << Qt::endl;
        return agg == ServiceHealth::Healthy ? Ok : Unhealthy;
    }

    // A notice as the window's notice history has it: a line, or one JSON
    // object a line ({"notice": {...}}).
    void printNotice(const Notice &n)
    {
        if (n.environment != m_env.name)
            return;
        if (m_json)
            out() << QJsonDocument(QJsonObject { { QStringLiteral("notice"), toJson(n) } })
                         .toJson(QJsonDocument::Compact)
                  << Qt::endl;
        else
            out() << toLine(n) << QStringLiteral("  [") << toString(n.kind) << ']' << Qt::endl;
    }

    // The environment's notices as they happen (crashed, unhealthy,
    // recovered, deployment ended, and what anyone started or stopped
    // through this process), until Ctrl+C.
    int watchImpl()
    {
        connect(&m_workspace, &Workspace::notice, this, &Ctl::printNotice);
        installSignalHandlers([this] { done(0); });
        // Where things stand first, once known (the engine's first answer,
        // or the owner's), then what happens.
        auto current = std::make_shared<QMetaObject::Connection>();
        const auto show = [this, current](bool anyway) {
            const QList<ServiceRow> rows = m_session->services();
            const bool unknown = rows.isEmpty() ||
                std::any_of(rows.begin(), rows.end(),
                            [](const ServiceRow &r) { return r.state.state == RunState::Unknown; });
            if ((unknown && !anyway) || !*current)
                return;
            disconnect(*current);
            *current = {};
            if (m_json) {
                out() << QJsonDocument(liveJson(*m_session)).toJson(QJsonDocument::Compact)
                      << Qt::endl;
                return;
            }
            QStringList parts;
            for (const ServiceRow &r : m_session->services())
                parts << QStringLiteral("%1 %2").arg(r.state.service, toString(r.state.state));
            out() << QDateTime::currentDateTime().toString(QStringLiteral("HH:mm:ss")) << ' '
                  << m_env.name << ": " << toString(m_session->aggregate()) << " - "
                  << parts.join(QStringLiteral(", ")) << Qt::endl;
        };
        *current =
            connect(m_session, &StackSession::servicesChanged, this, [show] { show(false); });
        // What is still unknown after a few seconds is shown as unknown.
        QTimer::singleShot(5000, this, [show] { show(true); });
        m_session->startWatching();
        m_workspace.followOwners(); // a native environment another process runs
        if (!m_json)
            err() << m_env.name << ": watching; Ctrl+C stops" << Qt::endl;
        loop();
        return Ok;
    }

    // Native `up`: the processes are this process's children, supervised here
    // until Ctrl+C or SIGTERM, then stopped cleanly.
    int supervise()
    {
        int rc = Ok;
        bool stopping = false;
        ServiceHealth last = ServiceHealth::Unknown;
        bool firstReport = true;
        const auto report = [this, &last, &firstReport] {
            const ServiceHealth now = m_session->aggregate();
            if (!firstReport && now == last)
                return;
            firstReport = false;
            last = now;
            QStringList parts;
            for (const ServiceRow &r : m_session->services())
                parts << QStringLiteral("%1 %2 %3%4")
                             .arg(r.state.service, toString(r.state.state), toString(r.health),
                                  r.detail.isEmpty()
                                      ? QString()
                                      : QStringLiteral(" (") + r.detail + QLatin1Char(')'));
            if (m_json) {
                out() << QJsonDocument(liveJson(*m_session)).toJson(QJsonDocument::Compact)
                      << Qt::endl;
            } else {
                out() << QDateTime::currentDateTime().toString(QStringLiteral("HH:mm:ss")) << ' '
                      << m_env.name << ": " << toString(now) << " - "
                      << parts.join(QStringLiteral(", ")) << Qt::endl;
            }
        };
        connect(m_session, &StackSession::servicesChanged, this, report);
        // The window's vocabulary: crashed, recovered, unhealthy...
        connect(&m_workspace, &Workspace::notice, this, [this](const Notice &n) {
            if (!n.byUser())
                printNotice(n);
        });
        connect(m_session->logs(), &LogStore::appended, this,
                [this](const QString &service, const LogLine &l) {
                    if (m_verbose)
                        err() << service << " | " << l.text << Qt::endl;
                });
        connect(&m_workspace, &Workspace::operationFinished, this,
                [this, &rc, &stopping](const QString &environment, const OperationResult &r) {
                    if (environment != m_env.name)
                        return;
                    if (r.outcome == OperationResult::Outcome::Cancelled)
                        return; // Ctrl+C during the start: the down that follows ends it
                    if (r.operation == StackOperation::Up && !r.ok()) {
                        err() << "pilothousectl: " << r.message << Qt::endl;
                        rc = EnvError;
                        done(0);
                    } else if (r.operation == StackOperation::Down && r.ok()) {
                        // A refused stop (asked through the owner socket while
                        // the start settles) leaves everything running.
                        done(0);
                    } else if (r.operation == StackOperation::Up && !m_json && !stopping) {
                        err() << m_env.name << ": started; Ctrl+C stops it" << Qt::endl;
                    }
                });
        installSignalHandlers([this, &stopping] {
            if (stopping) {
                done(0); // second signal: leave now (the driver still stops the children)
                return;
            }
            stopping = true;
            if (!m_json)
                err() << m_env.name << ": stopping" << Qt::endl;
            if (m_session->isBusy())
                m_session->cancel();
            m_workspace.down(m_env.name);
        });
        // The workspace makes this process the owner (its control socket), or
        // says who is.
        m_session->startWatching();
        m_workspace.up(m_env.name);
        loop();
        return rc;
    }

    int logsImpl(const QStringList &args)
    {
        const QCommandLineParser &p = m_p;
        if (args.size() != 1 || !isValidServiceName(args.first())) {
            err() << "pilothousectl: logs needs one SERVICE name" << Qt::endl;
            return Usage;
        }
        if (m_env.kind == EnvironmentKind::Native) {
            int rc = Ok;
            NativeControlClient client(m_env.name);
            connect(&client, &NativeControlClient::reply, this, [](const QJsonObject &answer) {
                out() << answer.value(QStringLiteral("line")).toString() << Qt::endl;
            });
            connect(&client, &NativeControlClient::done, this, [this, &rc](const QString &error) {
                if (!error.isEmpty()) {
                    err() << "pilothousectl: \"" << m_env.name << "\" is " << error << Qt::endl;
                    rc = EnvError;
                }
                done(0);
            });
            installSignalHandlers([&client] { client.close(); });
            client.send({ { QStringLiteral("op"), QStringLiteral("logs") },
                          { QStringLiteral("service"), args.first() },
                          { QStringLiteral("tail"), p.value(QStringLiteral("tail")).toInt() },
                          { QStringLiteral("follow"), p.isSet(QStringLiteral("follow")) } });
            loop();
            return rc;
        }
        const int tail = p.value(QStringLiteral("tail")).toInt();
        const bool follow = p.isSet(QStringLiteral("follow"));
        int rc = Ok;
        if (m_env.kind == EnvironmentKind::Swarm) {
            QStringList a { QStringLiteral("service"), QStringLiteral("logs"),
                            QStringLiteral("--no-task-ids"), QStringLiteral("--tail"),
                            QString::number(tail) };
            if (follow)
                a << QStringLiteral("--follow");
            a << m_env.stackName() + QLatin1Char('_') + args.first();
            CommandSpec spec =
                dockerCommand(m_env, a, follow ? 0 : 60000, QStringLiteral("docker service logs"));
            spec.keepOutput = !follow;
            auto *cmd = new Command(spec, this);
            connect(cmd, &Command::outputLine, this, [](const QString &line, bool isStderr) {
                // "stack_api.1@node    | text": the task's prefix goes.
                const qsizetype bar = line.indexOf(QLatin1String("| "));
                const QString text = bar >= 0 ? line.mid(bar + 2) : line;
                (isStderr ? err() : out()) << text << Qt::endl;
            });
            connect(cmd, &Command::finished, this, [this, &rc](const CommandResult &r) {
                if (!r.ok() && r.end != CommandResult::End::Cancelled) {
                    err() << "pilothousectl: "
                          << explainDockerFailure(r, QStringLiteral("docker service logs"), m_env)
                          << Qt::endl;
                    rc = EnvError;
                }
                done(0);
            });
            installSignalHandlers([cmd] { cmd->cancel(); });
            cmd->start();
            loop();
            return rc;
        }
        locateCompose(m_env, this, [&](Expected<ComposeCli> cli) {
            if (!cli) {
                err() << "pilothousectl: " << cli.error() << Qt::endl;
                rc = EnvError;
                done(0);
                return;
            }
            QStringList a { QStringLiteral("logs"), QStringLiteral("--no-color"),
                            QStringLiteral("--tail"), QString::number(tail) };
            if (follow)
                a << QStringLiteral("--follow");
            a << args.first();
            CommandSpec spec =
                composeCommand(m_env, *cli, a, follow ? 0 : 60000, QStringLiteral("compose logs"));
            spec.keepOutput = !follow; // lines are printed as they come
            auto *cmd = new Command(spec, this);
            // Containers' stderr comes on compose's stderr (v2): show it there.
            connect(cmd, &Command::outputLine, this, [](const QString &line, bool isStderr) {
                const auto [service, text] = ComposeLogFollower::splitPrefixed(line);
                if (!isStderr)
                    out() << text << Qt::endl;
                else if (!service.isEmpty())
                    err() << text << Qt::endl;
            });
            connect(cmd, &Command::finished, this, [this, &rc](const CommandResult &r) {
                if (!r.ok() && r.end != CommandResult::End::Cancelled) {
                    err() << "pilothousectl: "
                          << explainDockerFailure(r, QStringLiteral("compose logs"), m_env)
                          << Qt::endl;
                    rc = EnvError;
                }
                done(0);
            });
            installSignalHandlers([cmd] { cmd->cancel(); });
            cmd->start();
        });
        loop();
        return rc;
    }

public:
    bool m_verbose = false;

private:
    Workspace &m_workspace;
    const Environment &m_env;
    const QCommandLineParser &m_p;
    bool m_json;
    StackSession *m_session;
    bool m_dbAnswered = false;
};

// Reads one line from stdin; without echo when it is a terminal.
QString readSecretLine()
{
    const bool tty = ::isatty(STDIN_FILENO);
    termios saved {};
    if (tty) {
        err() << "password: " << Qt::flush;
        ::tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~tcflag_t(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    QTextStream in(stdin);
    const QString line = in.readLine();
    if (tty) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        err() << Qt::endl;
    }
    return line;
}

// Stores (or with --delete removes) the environment's database password in the keychain.
int setDatabasePassword(const Environment &env, bool remove)
{
    if (!env.database || env.database->keychainKey.isEmpty()) {
        err() << "pilothousectl: environment \"" << env.name
              << "\" does not take its database password from the keychain; set \"keychain\": true "
                 "in its \"database\""
              << Qt::endl;
        return EnvError;
    }
    const QString key = env.database->keychainKey;
    int rc = EnvError;
    QObject context;
    const auto finish = [&rc, &key, remove](Outcome r) {
        if (r) {
            err() << (remove ? "removed " : "stored ") << key << " in the keychain" << Qt::endl;
            rc = Ok;
        } else {
            err() << "pilothousectl: " << r.error() << Qt::endl;
        }
        QCoreApplication::exit(0);
    };
    if (remove) {
        deleteSecret(key, &context, finish);
    } else {
        const QString password = readSecretLine();
        if (password.isEmpty()) {
            err() << "pilothousectl: no password given on standard input" << Qt::endl;
            return Usage;
        }
        writeSecret(key, password, &context, finish);
    }
    QCoreApplication::exec();
    return rc;
}

int Ctl::setDbPassword(const QStringList &)
{
    return setDatabasePassword(m_env, m_p.isSet(QStringLiteral("delete")));
}

// Through the environment's deployer, so in the one order the window shows.
int Ctl::build(const QStringList &)
{
    if (!m_session->canBuild()) {
        err() << "pilothousectl: \"" << m_env.name
              << "\" builds no image: builds are for compose environments with "
                 "image.repository and image.services"
              << Qt::endl;
        return Usage;
    }
    std::optional<Build> made;
    connect(m_session, &StackSession::built, this, [&made](const Build &b) { made = b; });
    // A build takes minutes: its steps go to stderr even with --json (stdout
    // keeps only the JSON).
    if (m_json)
        connect(m_session, &StackSession::progress, this,
                [](const QString &m) { err() << "  " << m << Qt::endl; });
    const int rc = operate(QStringLiteral("build"), {});
    if (rc != Ok || !made)
        return rc == Ok ? EnvError : rc;
    if (m_json) {
        out() << QJsonDocument(QJsonObject { { QStringLiteral("repository"), made->repository },
                                             { QStringLiteral("tag"), made->tag },
                                             { QStringLiteral("commit"), made->commit },
                                             { QStringLiteral("dirty"), made->dirty },
                                             { QStringLiteral("image_id"), made->imageId },
                                             { QStringLiteral("schema_version"), made->schema },
                                             { QStringLiteral("built_at"),
                                               made->builtAt.toUTC().toString(Qt::ISODate) } })
                     .toJson(QJsonDocument::Compact)
              << Qt::endl;
    } else {
        out() << made->tag << Qt::endl;
    }
    return Ok;
}

int Ctl::tags(const QStringList &)
{
    std::unique_ptr<Deployer> own;
    Deployer *deployer = m_workspace.deployer(m_env.name);
    if (!deployer) {
        if (m_env.imageRepository.isEmpty()) {
            err() << "pilothousectl: environment \"" << m_env.name
                  << "\" has no image repository: add \"image\": {\"repository\": ..., "
                     "\"services\": [...]}"
                  << Qt::endl;
            return EnvError;
        }
        own = std::make_unique<Deployer>(m_session, m_workspace.history());
        deployer = own.get();
    }
    m_workspace.openHistory();
    int rc = EnvError;
    deployer->listTags(
        this,
        [this, &rc](Expected<QList<ImageTag>> tags) {
            if (!tags) {
                err() << "pilothousectl: " << tags.error() << Qt::endl;
            } else {
                rc = Ok;
                if (m_json) {
                    printJson(tagsJson(m_env.imageRepository, *tags));
                } else {
                    for (const ImageTag &t : *tags)
                        out() << t.name << Qt::endl;
                }
            }
            done(0);
        },
        m_p.isSet(QStringLiteral("all")));
    loop();
    return rc;
}

int Ctl::history(const QStringList &)
{
    DeploymentHistory history;
    const auto opened =
        history.open(DeploymentHistory::defaultPath(), DeploymentHistory::Mode::Reader);
    if (!opened) {
        err() << "pilothousectl: " << opened.error() << Qt::endl;
        return EnvError;
    }
    const auto rows = history.list(m_env.name);
    if (!rows) {
        err() << "pilothousectl: " << rows.error() << Qt::endl;
        return EnvError;
    }
    if (m_json) {
        printJson(historyJson(m_env.name, *rows));
        return Ok;
    }
    if (rows->isEmpty())
        out() << m_env.name << ": no deployments recorded" << Qt::endl;
    for (const Deployment &d : *rows)
        out() << d.startedAt.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm")) << "  "
              << pad(d.service, 14) << ' ' << pad(d.fromTag + QStringLiteral(" -> ") + d.toTag, 36)
              << pad(toString(d.outcome), 12)
              << (d.strategy.isEmpty() ? QString() : pad(d.strategy, 12)) << d.who
              << (d.reason.isEmpty() ? QString() : QStringLiteral("  ") + d.reason) << Qt::endl;
    return Ok;
}

int listEnvironments(const EnvironmentSet &set, bool json)
{
    if (json) {
        printJson(environmentsJson(set));
        return Ok;
    }
    out() << "environments from " << set.source << ":" << Qt::endl;
    for (const Environment &e : set.environments)
        out() << "  " << pad(e.name, 16) << pad(toString(e.kind), 9) << e.description << Qt::endl;
    for (const InvalidEnvironment &e : set.invalid) {
        const QStringList reasons = e.reason.split(QLatin1Char('\n'));
        out() << "  " << pad(e.name, 16) << pad(e.kind, 9) << "not usable: " << reasons.first()
              << Qt::endl;
        for (qsizetype i = 1; i < reasons.size(); ++i)
            out() << QString(27, u' ') << reasons.at(i) << Qt::endl;
    }
    const StackFolder stack = stackFolder();
    out() << "stack folder: "
          << (stack.path.isEmpty() ? QStringLiteral("none found (pilothousectl stack-folder PATH)")
                                   : QStringLiteral("%1 (%2)").arg(stack.path, stack.from))
          << Qt::endl;
    return Ok;
}

// Shows or remembers the folder the built-in environments run their stack from.
int stackFolderCommand(const QStringList &args, bool forget, bool json)
{
    if (args.size() > 1 || (forget && !args.isEmpty())) {
        err() << "pilothousectl: stack-folder takes one folder, or --forget" << Qt::endl;
        return Usage;
    }
    if (!args.isEmpty() || forget) {
        const QString path = forget ? QString() : QFileInfo(args.first()).absoluteFilePath();
        if (const Outcome set = setStackFolder(path); !set) {
            err() << "pilothousectl: " << set.error() << Qt::endl;
            return EnvError;
        }
    }
    const StackFolder stack = stackFolder();
    if (json) {
        printJson(QJsonObject { { QStringLiteral("path"),
                                  stack.path.isEmpty() ? QJsonValue() : QJsonValue(stack.path) },
                                { QStringLiteral("from"), stack.from } });
    } else if (stack.path.isEmpty()) {
        out() << "no stack folder: choose a Pilothouse checkout with pilothousectl stack-folder "
                 "PATH"
              << Qt::endl;
    } else {
        out() << stack.path << " (" << stack.from << ")" << Qt::endl;
    }
    return Ok;
}

// The window's "Test connection": each stage of the way to the engine.
int checkConnection(const Environment &env, bool json)
{
    ConnectionCheck check(env);
    QObject::connect(&check, &ConnectionCheck::stepChanged, &check, [&check, json](int i) {
        const ConnectionCheck::Step &s = check.steps().at(i);
        if (json || s.result == ConnectionCheck::Result::Running ||
            s.result == ConnectionCheck::Result::Waiting)
            return;
        out() << pad(ConnectionCheck::nameOf(s.stage), 15)
              << pad(ConnectionCheck::nameOf(s.result), 8) << s.detail << Qt::endl;
    });
    QObject::connect(&check, &ConnectionCheck::finished, &check,
                     [](bool) { QCoreApplication::exit(0); });
    installSignalHandlers([] { QCoreApplication::exit(Unhealthy); });
    check.start();
    if (!check.isFinished())
        QCoreApplication::exec();
    if (json) {
        QJsonArray steps;
        for (const ConnectionCheck::Step &s : check.steps())
            steps.append(
                QJsonObject { { QStringLiteral("stage"), ConnectionCheck::nameOf(s.stage) },
                              { QStringLiteral("result"), ConnectionCheck::nameOf(s.result) },
                              { QStringLiteral("detail"), s.detail } });
        printJson(QJsonObject { { QStringLiteral("environment"), env.name },
                                { QStringLiteral("ok"), check.passed() },
                                { QStringLiteral("steps"), steps } });
    } else if (check.passed()) {
        out() << env.name
              << (env.kind == EnvironmentKind::Native
                      ? QStringLiteral(": runs natively on this machine, no engine to reach")
                      : QStringLiteral(": the engine is reachable"))
              << Qt::endl;
    }
    return check.passed() ? Ok : EnvError;
}

// The one list of commands: help, parsing and dispatch all come from it.
struct Verb
{
    const char *name;
    const char *synopsis; // as the help shows it
    const char *help;
    // null: handled in main() without a session (envs, stack-folder,
    // check-connection, which opens a connection of its own)
    int (Ctl::*run)(const QStringList &args);
};

const Verb kCommands[] = {
    { "envs", "envs", "list the environments (and those not usable, with why)", nullptr },
    { "stack-folder", "stack-folder [PATH]",
      "show, or remember, the checkout whose compose.yaml the built-in environments use "
      "(--forget: forget it)",
      nullptr },
    { "status", "status", "services, health and database at a glance", &Ctl::status },
    { "check-connection", "check-connection",
      "the way to the environment's engine, stage by stage: TCP, host key, login, Docker "
      "socket, compose (the window's Test connection)",
      nullptr },
    { "up", "up", "start the stack (native: runs until Ctrl+C)", &Ctl::up },
    { "down", "down", "stop the stack (swarm: remove it; --volumes: its volumes too)", &Ctl::down },
    { "restart", "restart [SERVICE]", "restart the stack or one service", &Ctl::restart },
    { "scale", "scale SERVICE N", "swarm: run N replicas of a service (--wait S: until healthy)",
      &Ctl::scale },
    { "nodes", "nodes", "swarm: the nodes, their role, status and availability", &Ctl::nodes },
    { "node", "node NODE drain|active",
      "swarm: drain a node (its tasks move elsewhere) or make it active again", &Ctl::node },
    { "logs", "logs SERVICE", "recent logs (-f to follow)", &Ctl::logs },
    { "watch", "watch",
      "where things stand once known, then the notices as they happen, in the window's words "
      "(crashed, unhealthy, recovered, deployment ended...), until Ctrl+C",
      &Ctl::watch },
    { "health", "health", "every health endpoint, checked once", &Ctl::health },
    { "db", "db", "the database's status", &Ctl::db },
    { "backup", "backup",
      "back up the database (pg_dump in its own container, or SQLite's online backup), "
      "verified, to a private file in the data folder",
      &Ctl::backup },
    { "backups", "backups", "the environment's backups, newest first", &Ctl::backups },
    { "restore", "restore BACKUP --yes",
      "put a backup back: the services that write are stopped, a safety backup taken, the "
      "backup restored in one transaction, the services started again",
      &Ctl::restore },
    { "set-db-password", "set-db-password",
      "store the database password (stdin) in the keychain (--delete removes it)",
      &Ctl::setDbPassword },
    { "tags", "tags", "the backend image's tags, newest build first (--all: with signature tags)",
      &Ctl::tags },
    { "build", "build",
      "build the backend image from the checkout, tagged sha-<commit> (-dirty-<changes> with "
      "uncommitted changes): a rollback point",
      &Ctl::build },
    { "history", "history", "the environment's deployments, newest first", &Ctl::history },
    { "deploy", "deploy --tag TAG",
      "deploy the backend image TAG to every service that runs it, through the health gate "
      "(reverted by itself when it fails; exit 1 then)",
      &Ctl::deploy },
    { "rollback", "rollback [--to TAG]", "back to the previous successful deployment, or TAG",
      &Ctl::rollback },
};

const Verb *findCommand(const QString &name)
{
    for (const Verb &c : kCommands) {
        if (name == QLatin1String(c.name))
            return &c;
    }
    return nullptr;
}

QString commandNames()
{
    QStringList names;
    for (const Verb &c : kCommands)
        names << QLatin1String(c.name);
    return names.join(QStringLiteral(", "));
}

QString description()
{
    QString text = QStringLiteral("Pilothouse on the command line.\n\nCommands:\n");
    for (const Verb &c : kCommands) {
        const QString synopsis = QLatin1String(c.synopsis);
        // Wrapped at 80 columns, aligned after the synopsis.
        QStringList lines;
        QString line;
        for (const QString &word : QString::fromLatin1(c.help).split(u' ')) {
            if (!line.isEmpty() && line.size() + 1 + word.size() > 56) {
                lines << line;
                line.clear();
            }
            line += (line.isEmpty() ? QString() : QStringLiteral(" ")) + word;
        }
        lines << line;
        text += QStringLiteral("  ") + synopsis.leftJustified(21) + QLatin1Char(' ') +
            lines.first() + QLatin1Char('\n');
        for (qsizetype i = 1; i < lines.size(); ++i)
            text += QString(24, u' ') + lines.at(i) + QLatin1Char('\n');
    }
    text += QStringLiteral("\nExit codes: 0 ok, 1 unhealthy, 2 usage, 3 environment or engine "
                           "error.");
    return text;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));
    QCoreApplication::setApplicationVersion(QStringLiteral(PILOTHOUSE_VERSION));

    QCommandLineParser p;
    p.setApplicationDescription(description());
    p.addHelpOption();
    p.addVersionOption();
    p.addPositionalArgument(QStringLiteral("command"), QStringLiteral("what to do (see above)"));
    p.addOptions({
        { QStringLiteral("env"), QStringLiteral("the environment (default: local)"),
          QStringLiteral("NAME"), QStringLiteral("local") },
        { QStringLiteral("config"),
          QStringLiteral("environments file (default: the user's, else the built-in)"),
          QStringLiteral("FILE") },
        { QStringLiteral("json"), QStringLiteral("machine-readable output") },
        { { QStringLiteral("f"), QStringLiteral("follow") },
          QStringLiteral("logs: keep following") },
        { QStringLiteral("tail"), QStringLiteral("logs: lines from the end (default 100)"),
          QStringLiteral("N"), QStringLiteral("100") },
        { QStringLiteral("wait"),
          QStringLiteral("up/restart: then wait up to SECONDS until healthy"),
          QStringLiteral("SECONDS") },
        { QStringLiteral("all"), QStringLiteral("tags: also signature and attestation tags") },
        { QStringLiteral("delete"), QStringLiteral("set-db-password: remove it instead") },
        { QStringLiteral("yes"), QStringLiteral("restore: yes, replace the database") },
        { QStringLiteral("tag"), QStringLiteral("deploy: the image tag"), QStringLiteral("TAG") },
        { QStringLiteral("to"), QStringLiteral("rollback: the tag to go back to"),
          QStringLiteral("TAG") },
        { QStringLiteral("verbose"), QStringLiteral("native up: show the processes' output") },
        { QStringLiteral("forget"), QStringLiteral("stack-folder: forget the chosen folder") },
        { QStringLiteral("volumes"),
          QStringLiteral("down (swarm): remove the stack's volumes too (its data)") },
    });
    if (!p.parse(app.arguments())) {
        err() << "pilothousectl: " << p.errorText() << Qt::endl;
        return Usage;
    }
    if (p.isSet(QStringLiteral("help"))) {
        out() << p.helpText();
        return Ok;
    }
    if (p.isSet(QStringLiteral("version"))) {
        out() << "pilothousectl " << PILOTHOUSE_VERSION << Qt::endl;
        return Ok;
    }
    const QStringList positional = p.positionalArguments();
    if (positional.isEmpty()) {
        err() << "pilothousectl: a command is needed; see --help" << Qt::endl;
        return Usage;
    }
    const Verb *command = findCommand(positional.first());
    if (!command) {
        err() << "pilothousectl: unknown command \"" << positional.first() << "\"; expected one of "
              << commandNames() << Qt::endl;
        return Usage;
    }
    if (p.isSet(QStringLiteral("wait"))) {
        bool ok = false;
        const double w = p.value(QStringLiteral("wait")).toDouble(&ok);
        if (!ok || w <= 0) {
            err() << "pilothousectl: --wait expects seconds (a positive number)" << Qt::endl;
            return Usage;
        }
    }
    bool tailOk = false;
    if (p.value(QStringLiteral("tail")).toInt(&tailOk) < 0 || !tailOk) {
        err() << "pilothousectl: --tail expects a whole number" << Qt::endl;
        return Usage;
    }

    if (positional.first() == QLatin1String("stack-folder"))
        return stackFolderCommand(positional.mid(1), p.isSet(QStringLiteral("forget")),
                                  p.isSet(QStringLiteral("json")));

    Workspace workspace(Workspace::Face::Command);
    if (const Outcome loaded = workspace.load(p.value(QStringLiteral("config"))); !loaded) {
        err() << "pilothousectl: the environments are not valid, nothing was done:\n"
              << loaded.error() << Qt::endl;
        return EnvError;
    }
    const EnvironmentSet &set = workspace.environments();
    if (positional.first() == QLatin1String("envs"))
        return listEnvironments(set, p.isSet(QStringLiteral("json")));
    const QString name = p.value(QStringLiteral("env"));
    const Environment *env = set.find(name);
    if (const InvalidEnvironment *bad = set.findInvalid(name)) {
        err() << "pilothousectl: environment \"" << name << "\" in " << set.source
              << " is not usable, nothing was done:\n"
              << bad->reason << Qt::endl;
        return EnvError;
    }
    if (!env) {
        err() << "pilothousectl: no environment \"" << name << "\" in " << set.source
              << " (there are: " << set.names().join(u", ") << ")" << Qt::endl;
        return EnvError;
    }
    if (positional.first() == QLatin1String("check-connection"))
        return checkConnection(*env, p.isSet(QStringLiteral("json")));
    Ctl ctl(workspace, *env, p);
    ctl.m_verbose = p.isSet(QStringLiteral("verbose"));
    return (ctl.*(command->run))(positional.mid(1));
}
