#include "db/backup.h"

#include "core/session.h"
#include "drivers/command.h"
#include "drivers/docker.h"
#include "env/dotenv.h"

#include <QCoreApplication>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStandardPaths>
#include <QThreadPool>
#include <QUuid>
#include <algorithm>

namespace pilothouse {

namespace {

constexpr int kDumpTimeoutMs = 3600000; // an hour; cancel stops it sooner

QString manifestPath(const QString &archive)
{
    return archive + QStringLiteral(".json");
}

// SHA-256 and size of a file, read in blocks.
std::pair<QString, qint64> digestOf(const QString &path, QString *error)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("cannot read %1: %2").arg(path, f.errorString());
        return {};
    }
    QCryptographicHash hash(QCryptographicHash::Sha256);
    if (!hash.addData(&f)) {
        *error = QStringLiteral("cannot read %1: %2").arg(path, f.errorString());
        return {};
    }
    return { QString::fromLatin1(hash.result().toHex()), f.size() };
}

// SQLite's online backup into `target` (an empty private file), then its
// integrity check on the copy. Returns why not, or nothing.
QString sqliteBackup(const QString &source, const QString &target)
{
    const QString name = QStringLiteral("backup-") + QUuid::createUuid().toString(QUuid::Id128);
    QString error;
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), name);
        db.setDatabaseName(source);
        db.setConnectOptions(QStringLiteral("QSQLITE_OPEN_READONLY;QSQLITE_BUSY_TIMEOUT=10000"));
        if (!QFileInfo::exists(source)) {
            error = QStringLiteral("%1 does not exist (has the environment run yet?)").arg(source);
        } else if (!db.open()) {
            error = QStringLiteral("cannot open %1: %2").arg(source, db.lastError().text());
        } else {
            QSqlQuery q(db);
            QString quoted = target;
            quoted.replace(QLatin1Char('\''), QStringLiteral("''"));
            if (!q.exec(QStringLiteral("VACUUM INTO '%1'").arg(quoted)))
                error = QStringLiteral("SQLite's backup (VACUUM INTO) failed: %1")
                            .arg(q.lastError().text());
        }
        db.close();
    }
    QSqlDatabase::removeDatabase(name);
    if (!error.isEmpty())
        return error;
    {
        QSqlDatabase copy = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), name);
        copy.setDatabaseName(target);
        copy.setConnectOptions(QStringLiteral("QSQLITE_OPEN_READONLY"));
        if (!copy.open()) {
            error = QStringLiteral("cannot open the copy: %1").arg(copy.lastError().text());
        } else {
            QSqlQuery q(copy);
            if (!q.exec(QStringLiteral("PRAGMA integrity_check")) || !q.next())
                error = QStringLiteral("the copy's integrity check did not run: %1")
                            .arg(q.lastError().text());
            else if (q.value(0).toString() != QLatin1String("ok"))
                error = QStringLiteral("the copy fails SQLite's integrity check: %1")
                            .arg(q.value(0).toString());
        }
        copy.close();
    }
    QSqlDatabase::removeDatabase(name);
    return error;
}

} // namespace

QJsonObject toJson(const BackupInfo &i)
{
    return QJsonObject { { QStringLiteral("path"), i.path },
                         { QStringLiteral("environment"), i.environment },
                         { QStringLiteral("taken_at"), i.takenAt.toString(Qt::ISODateWithMs) },
                         { QStringLiteral("format"), i.format },
                         { QStringLiteral("schema_version"), i.schemaVersion },
                         { QStringLiteral("size"), i.size },
                         { QStringLiteral("sha256"), i.sha256 },
                         { QStringLiteral("verified"), i.verified },
                         { QStringLiteral("reason"), i.reason },
                         { QStringLiteral("elapsed_ms"), i.elapsedMs } };
}

BackupInfo backupInfoFromJson(const QJsonObject &o)
{
    BackupInfo i;
    i.path = o.value(QStringLiteral("path")).toString();
    i.environment = o.value(QStringLiteral("environment")).toString();
    i.takenAt =
        QDateTime::fromString(o.value(QStringLiteral("taken_at")).toString(), Qt::ISODateWithMs);
    i.format = o.value(QStringLiteral("format")).toString();
    i.schemaVersion = o.value(QStringLiteral("schema_version")).toInteger(-1);
    i.size = o.value(QStringLiteral("size")).toInteger();
    i.sha256 = o.value(QStringLiteral("sha256")).toString();
    i.verified = o.value(QStringLiteral("verified")).toString();
    i.reason = o.value(QStringLiteral("reason")).toString();
    i.elapsedMs = o.value(QStringLiteral("elapsed_ms")).toInteger();
    return i;
}

QString backupFolder(const QString &environment)
{
    return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) +
        QStringLiteral("/backups/") + environment;
}

QList<BackupInfo> listBackups(const QString &environment)
{
    QList<BackupInfo> out;
    const QDir dir(backupFolder(environment));
    for (const QString &name : dir.entryList({ QStringLiteral("*.json") }, QDir::Files)) {
        QFile f(dir.filePath(name));
        if (!f.open(QIODevice::ReadOnly))
            continue;
        BackupInfo i = backupInfoFromJson(QJsonDocument::fromJson(f.readAll()).object());
        // The archive next to it (a folder moved as a whole still lists).
        i.path = dir.filePath(name.chopped(5));
        if (QFileInfo::exists(i.path))
            out << i;
    }
    std::sort(out.begin(), out.end(),
              [](const BackupInfo &a, const BackupInfo &b) { return a.takenAt > b.takenAt; });
    return out;
}

BackupJob::BackupJob(StackSession *session, QObject *parent)
    : QObject(parent)
    , m_session(session)
{
    qRegisterMetaType<pilothouse::BackupInfo>();
    // The environment reloaded (Settings) while waiting for its engine: no
    // call will come back to end the job.
    if (session)
        connect(session, &QObject::destroyed, this, [this] {
            if (m_running && !m_command && !m_threadBusy)
                conclude(QStringLiteral("the environment was reloaded meanwhile; back up again"));
        });
}

BackupJob::~BackupJob()
{
    if (m_cancelled)
        *m_cancelled = true;
    if (m_command)
        m_command->dismiss();
    // Work on a thread removes its own file once it sees the cancel.
    if (m_running && !m_threadBusy && !m_temporary.isEmpty())
        QFile::remove(m_temporary);
}

void BackupJob::start(const QString &reason)
{
    if (m_running)
        return;
    m_running = true;
    m_cancelled = std::make_shared<std::atomic<bool>>(false);
    m_info = {};
    m_info.reason = reason;
    m_info.takenAt = QDateTime::currentDateTimeUtc();
    m_temporary.clear();
    if (!m_session) {
        conclude(QStringLiteral("no environment"));
        return;
    }
    const Environment &env = m_session->environment();
    m_info.environment = env.name;
    if (!env.database) {
        conclude(QStringLiteral("\"%1\" has no database to back up (add \"database\" to the "
                                "environment)")
                     .arg(env.name));
        return;
    }
    if (const DatabaseProbe *probe = m_session->databaseProbe())
        m_info.schemaVersion = probe->facts().migrationVersion;
    const QString folder = backupFolder(env.name);
    if (!QDir().mkpath(folder) ||
        !QFile::setPermissions(folder, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner)) {
        conclude(QStringLiteral("cannot make the backup folder %1").arg(folder));
        return;
    }
    const QString stamp = m_info.takenAt.toString(QStringLiteral("yyyyMMdd-HHmmss-zzz"));
    const bool sqlite = env.database->isSqlite();
    if (!sqlite && !env.database->inStack) {
        conclude(QStringLiteral("backups are taken through the engine from a PostgreSQL in the "
                                "stack (database.compose); for %1 use pg_dump where it runs")
                     .arg(env.database->displayDsn()));
        return;
    }
    m_info.format = sqlite ? QStringLiteral("sqlite") : QStringLiteral("pg_dump-custom");
    m_info.path = QDir(folder).filePath(
        QStringLiteral("%1-%2.%3")
            .arg(env.name, stamp, sqlite ? QStringLiteral("sqlite") : QStringLiteral("dump")));
    m_temporary = m_info.path + QStringLiteral(".partial");
    emit progress(QStringLiteral("Backing up %1 to %2").arg(env.name, m_info.path));
    if (sqlite)
        backUpSqlite();
    else
        m_session->whenReachable([self = QPointer<BackupJob>(this)] {
            if (self)
                self->backUpPostgres();
        });
}

void BackupJob::cancel()
{
    if (!m_running)
        return;
    *m_cancelled = true;
    if (m_command)
        m_command->cancel(); // its finished() concludes
}

void BackupJob::offThread(std::function<QString()> work, std::function<void(const QString &)> then)
{
    // The global pool: the application waits for it before it exits, so no
    // backup is cut off inside SQLite by the process's end.
    QPointer<BackupJob> self(this);
    m_threadBusy = true;
    QThreadPool::globalInstance()->start([work = std::move(work), then = std::move(then), self] {
        const QString error = work();
        QMetaObject::invokeMethod(
            qApp,
            [then, self, error] {
                if (!self)
                    return;
                self->m_threadBusy = false;
                then(error);
            },
            Qt::QueuedConnection);
    });
}

void BackupJob::backUpSqlite()
{
    const QString source = m_session->environment().database->dsn.path();
    const QString target = m_temporary;
    // An empty private file first: VACUUM INTO fills it and keeps its mode.
    QFile made(target);
    if (!made.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
        !made.setPermissions(QFile::ReadOwner | QFile::WriteOwner)) {
        conclude(QStringLiteral("cannot write %1: %2").arg(target, made.errorString()));
        return;
    }
    made.close();
    emit progress(QStringLiteral("SQLite online backup of %1").arg(source));
    offThread(
        [source, target, cancelled = m_cancelled] {
            const QString error = sqliteBackup(source, target);
            if (*cancelled) {
                QFile::remove(target);
                return QStringLiteral("cancelled");
            }
            return error;
        },
        [this](const QString &error) {
            if (!error.isEmpty())
                conclude(error);
            else if (*m_cancelled)
                conclude(QStringLiteral("cancelled"));
            else
                written();
        });
}

void BackupJob::backUpPostgres()
{
    if (!m_session) {
        conclude(QStringLiteral("no environment"));
        return;
    }
    if (*m_cancelled) {
        conclude(QStringLiteral("cancelled"));
        return;
    }
    const Environment &env = m_session->environment();
    const auto &in = *env.database->inStack;
    const auto state = m_session->stateOf(in.service);
    if (!state || state->containerId.isEmpty() || !state->isRunning()) {
        conclude(QStringLiteral("%1 is not running in \"%2\": start the stack, then back up")
                     .arg(in.service, env.name));
        return;
    }
    m_container = state->containerId;
    const QString folder = env.stackDirectory();
    const QString envFile =
        env.envFile.isEmpty() ? QDir(folder).filePath(QStringLiteral(".env")) : env.envFile;
    QString user = stackVariable(in.userVariable, env.composeFiles, envFile);
    if (user.isEmpty())
        user = QStringLiteral("postgres");
    QString database = stackVariable(in.databaseVariable, env.composeFiles, envFile);
    if (database.isEmpty())
        database = user;
    // Inside the database's container, over its local socket: its own
    // pg_dump, and no password crosses anything.
    CommandSpec spec = dockerCommand(
        env,
        { QStringLiteral("exec"), m_container, QStringLiteral("pg_dump"),
          QStringLiteral("--format=custom"), QStringLiteral("--no-password"),
          QStringLiteral("--username=") + user, QStringLiteral("--dbname=") + database },
        kDumpTimeoutMs, QStringLiteral("pg_dump"));
    spec.outputFile = m_temporary;
    emit progress(QStringLiteral("pg_dump of %1 in %2").arg(database, in.service));
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    connect(cmd, &Command::finished, this, [this, cmd](const CommandResult &r) {
        cmd->deleteLater();
        m_command = nullptr;
        if (*m_cancelled || r.end == CommandResult::End::Cancelled) {
            conclude(QStringLiteral("cancelled"));
            return;
        }
        if (!m_session) {
            conclude(QStringLiteral("the environment was reloaded meanwhile; back up again"));
            return;
        }
        if (!r.ok()) {
            conclude(explainDockerFailure(r, QStringLiteral("pg_dump"), m_session->environment()));
            return;
        }
        verifyPostgres();
    });
    cmd->start();
}

void BackupJob::verifyPostgres()
{
    emit progress(QStringLiteral("Reading the whole archive back with pg_restore"));
    CommandSpec spec =
        dockerCommand(m_session->environment(),
                      { QStringLiteral("exec"), QStringLiteral("--interactive"), m_container,
                        QStringLiteral("pg_restore"), QStringLiteral("--file=/dev/null") },
                      kDumpTimeoutMs, QStringLiteral("pg_restore"));
    spec.inputFile = m_temporary;
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    connect(cmd, &Command::finished, this, [this, cmd](const CommandResult &r) {
        cmd->deleteLater();
        m_command = nullptr;
        if (*m_cancelled || r.end == CommandResult::End::Cancelled) {
            conclude(QStringLiteral("cancelled"));
            return;
        }
        if (!r.ok()) {
            conclude(QStringLiteral("the archive does not read back whole (pg_restore): %1")
                         .arg(r.errorOutput.trimmed().right(500)));
            return;
        }
        written();
    });
    cmd->start();
}

void BackupJob::written()
{
    const QString temporary = m_temporary;
    const QString path = m_info.path;
    auto info = std::make_shared<BackupInfo>(m_info);
    info->verified = QStringLiteral("ok"); // read back whole by the database's reader
    info->elapsedMs = m_info.takenAt.msecsTo(QDateTime::currentDateTimeUtc());
    offThread(
        [temporary, path, info, cancelled = m_cancelled] {
            if (*cancelled) {
                QFile::remove(temporary);
                return QStringLiteral("cancelled");
            }
            QString error;
            const auto [sha, size] = digestOf(temporary, &error);
            if (!error.isEmpty())
                return error;
            info->sha256 = sha;
            info->size = size;
            // The manifest first, then the archive under its name: a listing
            // never shows an archive without what it is.
            QSaveFile manifest(manifestPath(path));
            if (!manifest.open(QIODevice::WriteOnly) ||
                !manifest.setPermissions(QFile::ReadOwner | QFile::WriteOwner))
                return QStringLiteral("cannot write %1: %2")
                    .arg(manifestPath(path), manifest.errorString());
            manifest.write(QJsonDocument(toJson(*info)).toJson());
            if (!manifest.commit())
                return QStringLiteral("cannot write %1: %2")
                    .arg(manifestPath(path), manifest.errorString());
            if (!QFile::rename(temporary, path)) {
                QFile::remove(manifestPath(path));
                return QStringLiteral("cannot move the archive to %1").arg(path);
            }
            return QString();
        },
        [this, info](const QString &error) {
            if (!error.isEmpty()) {
                conclude(error);
                return;
            }
            m_info = *info;
            m_temporary.clear();
            conclude({});
        });
}

void BackupJob::conclude(const QString &error)
{
    if (!error.isEmpty() && !m_temporary.isEmpty())
        QFile::remove(m_temporary);
    m_temporary.clear();
    m_running = false;
    // Never from inside start(): callers connect before or after it alike.
    QMetaObject::invokeMethod(
        this, [this, info = m_info, error] { emit finished(info, error); }, Qt::QueuedConnection);
}

} // namespace pilothouse

namespace pilothouse {

namespace {

QString markerPath(const QString &environment)
{
    return QDir(backupFolder(environment)).filePath(QStringLiteral("restore-in-progress.json"));
}

} // namespace

QJsonObject restoreMarker(const QString &environment)
{
    QFile f(markerPath(environment));
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QJsonDocument::fromJson(f.readAll()).object();
}

void clearRestoreMarker(const QString &environment)
{
    QFile::remove(markerPath(environment));
}

QString unfinishedRestore(const QString &environment)
{
    const QJsonObject m = restoreMarker(environment);
    if (m.isEmpty())
        return {};
    const QString safety = m.value(QStringLiteral("safety")).toString();
    const int stopped = int(m.value(QStringLiteral("stopped")).toArray().size());
    QString text = QStringLiteral("A restore of %1 into \"%2\" did not finish (started %3).")
                       .arg(m.value(QStringLiteral("backup")).toString(), environment,
                            m.value(QStringLiteral("started_at")).toString());
    if (stopped > 0)
        text += QStringLiteral(" The %1 service(s) it stopped may still be stopped: Start "
                               "starts them.")
                    .arg(stopped);
    if (!safety.isEmpty())
        text += QStringLiteral(" The state before it is in %1 (pilothousectl restore %1 --yes "
                               "puts it back).")
                    .arg(safety);
    return text;
}

RestoreJob::RestoreJob(StackSession *session, QObject *parent)
    : QObject(parent)
    , m_session(session)
{ }

RestoreJob::~RestoreJob()
{
    if (m_command)
        m_command->dismiss();
}

void RestoreJob::start(const BackupInfo &backup)
{
    if (m_running)
        return;
    m_running = true;
    m_backup = backup;
    m_writers.clear();
    m_safety.clear();
    if (!m_session) {
        conclude(QStringLiteral("no environment"));
        return;
    }
    const Environment &env = m_session->environment();
    if (!env.database || backup.environment != env.name) {
        conclude(QStringLiteral("%1 is a backup of \"%2\", not of \"%3\"")
                     .arg(backup.path, backup.environment, env.name));
        return;
    }
    if ((backup.format == QLatin1String("sqlite")) != env.database->isSqlite()) {
        conclude(QStringLiteral("%1 is a %2 backup; \"%3\"'s database is not")
                     .arg(backup.path, backup.format, env.name));
        return;
    }
    // What is put back is what was written: its sha256 first.
    emit progress(QStringLiteral("Checking %1 against its recorded sha256").arg(backup.path));
    const QString path = backup.path;
    const QString expected = backup.sha256;
    QPointer<RestoreJob> self(this);
    QThreadPool::globalInstance()->start([self, path, expected] {
        QString error;
        const auto [sha, size] = digestOf(path, &error);
        Q_UNUSED(size)
        if (error.isEmpty() && sha != expected)
            error = QStringLiteral("%1 is not the archive that was written (its sha256 differs "
                                   "from the one recorded); it is not restored")
                        .arg(path);
        QMetaObject::invokeMethod(
            qApp,
            [self, error] {
                if (!self)
                    return;
                if (!error.isEmpty())
                    self->conclude(error);
                else
                    self->checked();
            },
            Qt::QueuedConnection);
    });
}

void RestoreJob::checked()
{
    if (!m_session) {
        conclude(QStringLiteral("the environment was reloaded meanwhile; nothing was changed"));
        return;
    }
    if (m_backup.format == QLatin1String("sqlite")) {
        restoreSqlite();
        return;
    }
    const Environment &env = m_session->environment();
    const auto db = m_session->stateOf(env.database->inStack->service);
    if (!db || !db->isRunning()) {
        conclude(QStringLiteral("%1 is not running in \"%2\": start the stack, then restore")
                     .arg(env.database->inStack->service, env.name));
        return;
    }
    m_database = db->containerId;
    // The services that write: the image's (api, worker); with none named,
    // every other service of the stack.
    for (const ServiceRow &row : m_session->services()) {
        const QString &service = row.state.service;
        const bool writes = env.imageServices.isEmpty() ? service != env.database->inStack->service
                                                        : env.imageServices.contains(service);
        if (writes && row.state.isRunning() && !row.state.containerId.isEmpty())
            m_writers << row.state.containerId;
    }
    writeMarker();
    stopWriters();
}

void RestoreJob::writeMarker()
{
    QSaveFile f(markerPath(m_backup.environment));
    if (f.open(QIODevice::WriteOnly)) {
        f.setPermissions(QFile::ReadOwner | QFile::WriteOwner);
        QJsonArray stopped;
        for (const QString &id : std::as_const(m_writers))
            stopped.append(id);
        f.write(
            QJsonDocument(QJsonObject { { QStringLiteral("backup"), m_backup.path },
                                        { QStringLiteral("safety"), m_safety },
                                        { QStringLiteral("stopped"), stopped },
                                        { QStringLiteral("started_at"),
                                          QDateTime::currentDateTimeUtc().toString(Qt::ISODate) } })
                .toJson());
        f.commit();
    }
}

void RestoreJob::docker(const QStringList &args, const QString &what, const QString &inputFile,
                        std::function<void(const CommandResult &)> then)
{
    CommandSpec spec = dockerCommand(m_session->environment(), args, kDumpTimeoutMs, what);
    spec.inputFile = inputFile;
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    connect(cmd, &Command::finished, this, [this, cmd, then](const CommandResult &r) {
        cmd->deleteLater();
        m_command = nullptr;
        then(r);
    });
    cmd->start();
}

void RestoreJob::stopWriters()
{
    if (m_writers.isEmpty()) {
        safetyBackup();
        return;
    }
    emit progress(QStringLiteral("Stopping the services that write (%1)").arg(m_writers.size()));
    docker(QStringList { QStringLiteral("stop") } + m_writers, QStringLiteral("docker stop"), {},
           [this](const CommandResult &r) {
               if (!m_session) {
                   conclude(QStringLiteral("the environment was reloaded meanwhile"));
                   return;
               }
               if (!r.ok()) {
                   startWriters(explainDockerFailure(r, QStringLiteral("stopping the services"),
                                                     m_session->environment()));
                   return;
               }
               safetyBackup();
           });
}

void RestoreJob::safetyBackup()
{
    emit progress(QStringLiteral("Taking a safety backup of the current state first"));
    m_safetyJob = new BackupJob(m_session, this);
    connect(m_safetyJob, &BackupJob::finished, this,
            [this](const BackupInfo &info, const QString &error) {
                m_safetyJob->deleteLater();
                m_safetyJob = nullptr;
                if (!error.isEmpty()) {
                    startWriters(QStringLiteral("the safety backup failed, so nothing was "
                                                "restored: %1")
                                     .arg(error));
                    return;
                }
                m_safety = info.path;
                writeMarker();
                restorePostgres();
            });
    m_safetyJob->start(
        QStringLiteral("before restoring %1").arg(QFileInfo(m_backup.path).fileName()));
}

void RestoreJob::restorePostgres()
{
    if (!m_session) {
        conclude(QStringLiteral("the environment was reloaded meanwhile; the services stopped "
                                "for the restore are still stopped: Start them"));
        return;
    }
    const Environment &env = m_session->environment();
    const auto &in = *env.database->inStack;
    const QString folder = env.stackDirectory();
    const QString envFile =
        env.envFile.isEmpty() ? QDir(folder).filePath(QStringLiteral(".env")) : env.envFile;
    QString user = stackVariable(in.userVariable, env.composeFiles, envFile);
    if (user.isEmpty())
        user = QStringLiteral("postgres");
    QString database = stackVariable(in.databaseVariable, env.composeFiles, envFile);
    if (database.isEmpty())
        database = user;
    emit progress(QStringLiteral("Restoring %1 (one transaction)").arg(m_backup.path));
    docker({ QStringLiteral("exec"), QStringLiteral("--interactive"), m_database,
             QStringLiteral("pg_restore"), QStringLiteral("--clean"), QStringLiteral("--if-exists"),
             QStringLiteral("--single-transaction"), QStringLiteral("--exit-on-error"),
             QStringLiteral("--no-password"), QStringLiteral("--username=") + user,
             QStringLiteral("--dbname=") + database },
           QStringLiteral("pg_restore"), m_backup.path, [this](const CommandResult &r) {
               if (!r.ok()) {
                   // One transaction: nothing of it was committed.
                   startWriters(QStringLiteral("the restore failed and changed nothing (one "
                                               "transaction): %1; the safety backup is %2")
                                    .arg(r.errorOutput.trimmed().right(400), m_safety));
                   return;
               }
               startWriters({});
           });
}

void RestoreJob::startWriters(const QString &error)
{
    if (m_writers.isEmpty() || !m_session) {
        conclude(error);
        return;
    }
    emit progress(QStringLiteral("Starting the services again"));
    docker(QStringList { QStringLiteral("start") } + m_writers, QStringLiteral("docker start"), {},
           [this, error](const CommandResult &r) {
               QString why = error;
               if (!r.ok())
                   why += (why.isEmpty() ? QString() : QStringLiteral("; ")) +
                       QStringLiteral("the stopped services did not start again: %1; Start them")
                           .arg(r.errorOutput.trimmed().right(300));
               conclude(why);
           });
}

void RestoreJob::restoreSqlite()
{
    const QString db = m_session->environment().database->dsn.path();
    // A live SQLite is never replaced under its writer.
    for (const ServiceRow &row : m_session->services()) {
        if (row.state.state == RunState::Running || row.state.pid > 0) {
            conclude(QStringLiteral("%1 is running: stop \"%2\" first, then restore")
                         .arg(row.state.service, m_session->environment().name));
            return;
        }
    }
    emit progress(QStringLiteral("Replacing %1").arg(db));
    const QString source = m_backup.path;
    QPointer<RestoreJob> self(this);
    QThreadPool::globalInstance()->start([self, db, source] {
        QString error;
        const QString incoming = db + QStringLiteral(".restoring");
        QFile::remove(incoming);
        if (!QFile::copy(source, incoming)) {
            error = QStringLiteral("cannot copy %1 next to %2").arg(source, db);
        } else {
            QFile::setPermissions(incoming, QFile::ReadOwner | QFile::WriteOwner);
            // The current file is kept aside until the new one is in place.
            const QString before = db + QStringLiteral(".before-restore");
            QFile::remove(before);
            if (QFileInfo::exists(db) && !QFile::rename(db, before)) {
                error = QStringLiteral("cannot move %1 aside").arg(db);
                QFile::remove(incoming);
            } else if (!QFile::rename(incoming, db)) {
                error = QStringLiteral("cannot put the backup in place of %1").arg(db);
                QFile::rename(before, db);
            } else {
                QFile::remove(db + QStringLiteral("-wal"));
                QFile::remove(db + QStringLiteral("-shm"));
            }
        }
        QMetaObject::invokeMethod(
            qApp,
            [self, error] {
                if (self)
                    self->conclude(error);
            },
            Qt::QueuedConnection);
    });
}

void RestoreJob::conclude(const QString &error)
{
    m_running = false;
    if (!m_backup.environment.isEmpty())
        clearRestoreMarker(m_backup.environment);
    QMetaObject::invokeMethod(
        this, [this, error, safety = m_safety] { emit finished(error, safety); },
        Qt::QueuedConnection);
}

} // namespace pilothouse
