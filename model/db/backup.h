#pragma once

#include "core/result.h"

#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QObject>
#include <QPointer>
#include <QString>
#include <atomic>
#include <functional>
#include <memory>

// Backups of an environment's database, taken by the database's own tools:
// PostgreSQL in the stack with pg_dump (custom format) run through the
// engine in the database's own container, so client and server versions
// match; SQLite with its online backup (VACUUM INTO), never a copy of a
// live file. Each archive is written under a temporary name and renamed
// when whole (no half file is ever left), is private (0600), has its sha256
// recorded in a manifest next to it, and is verified after it is written:
// the sha256 read back, and the whole archive read by the database's own
// reader (pg_restore to /dev/null; SQLite's integrity check).
namespace pilothouse {

class StackSession;
class Command;
struct CommandResult;

struct BackupInfo
{
    QString path; // the archive
    QString environment;
    QDateTime takenAt; // UTC
    QString format; // "pg_dump-custom" or "sqlite"
    qint64 schemaVersion = -1; // the database's migration version then; -1 unknown
    qint64 size = 0;
    QString sha256;
    QString verified; // "ok", or why not
    QString reason; // "manual", ...
    qint64 elapsedMs = 0;
    bool verifiedOk() const { return verified == QLatin1String("ok"); }
};

QJsonObject toJson(const BackupInfo &info);
BackupInfo backupInfoFromJson(const QJsonObject &o);

// Where an environment's backups are kept: <data folder>/backups/<environment>,
// made 0700 on first use.
QString backupFolder(const QString &environment);
// The backups in that folder, by their manifests, newest first.
QList<BackupInfo> listBackups(const QString &environment);

class BackupJob final : public QObject
{
    Q_OBJECT
public:
    explicit BackupJob(StackSession *session, QObject *parent = nullptr);
    ~BackupJob() override;
    // Starts a backup; progress() while it runs, finished() once.
    void start(const QString &reason = QStringLiteral("manual"));
    // Stops it; finished() follows with "cancelled" and nothing is left behind.
    void cancel();
    bool isRunning() const { return m_running; }

signals:
    void progress(const QString &message);
    // error empty: done, `info` says where and what; else why not (and
    // nothing of it is left).
    void finished(const pilothouse::BackupInfo &info, const QString &error);

private:
    void backUpPostgres();
    void backUpSqlite();
    void verifyPostgres();
    void written(); // the archive is whole under its temporary name
    void conclude(const QString &error);
    // Runs `work` on a thread of its own; `then` back on this object's thread.
    void offThread(std::function<QString()> work, std::function<void(const QString &)> then);

    QPointer<StackSession> m_session;
    QPointer<Command> m_command;
    BackupInfo m_info;
    QString m_temporary;
    QString m_container; // PostgreSQL: the database's container
    std::shared_ptr<std::atomic<bool>> m_cancelled;
    bool m_running = false;
    bool m_threadBusy = false; // work on the thread pool not back yet
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::BackupInfo)

namespace pilothouse {

// Puts a backup back: for a PostgreSQL in the stack, the services that write
// (the image's: api, worker; with none named, every other service) are stopped, a safety backup of
// the current state is taken, the archive is restored with `pg_restore --clean
// --if-exists --single-transaction` in the database's container (a restore
// that fails, or whose client dies, commits nothing), and the services are
// started again. For SQLite the environment must be stopped; the file is
// replaced in one rename, its -wal/-shm files removed with it. A marker in
// the backup folder says what is under way, so a panel that died in the
// middle can say so (restoreMarker()) and the services it stopped can be
// started again.
class RestoreJob final : public QObject
{
    Q_OBJECT
public:
    explicit RestoreJob(StackSession *session, QObject *parent = nullptr);
    ~RestoreJob() override;
    void start(const BackupInfo &backup);
    bool isRunning() const { return m_running; }

signals:
    void progress(const QString &message);
    // error empty: restored; safety: the backup taken first ("" for SQLite's
    // stopped environment, whose replaced file is kept as <db>.before-restore).
    void finished(const QString &error, const QString &safety);

private:
    void checked();
    void stopWriters();
    void safetyBackup();
    void restorePostgres();
    void startWriters(const QString &error);
    void restoreSqlite();
    void conclude(const QString &error);
    void docker(const QStringList &args, const QString &what, const QString &inputFile,
                std::function<void(const CommandResult &)> then);
    void writeMarker();

    QPointer<StackSession> m_session;
    QPointer<Command> m_command;
    BackupJob *m_safetyJob = nullptr;
    BackupInfo m_backup;
    QStringList m_writers; // container ids stopped for the restore
    QString m_database; // PostgreSQL: the database's container
    QString m_safety;
    bool m_running = false;
};

// A restore that did not end (the panel died): what it was doing, or an
// empty object. clearRestoreMarker() once dealt with.
QJsonObject restoreMarker(const QString &environment);
void clearRestoreMarker(const QString &environment);
// What a person should know about such a marker, and what to do; empty
// without one.
QString unfinishedRestore(const QString &environment);

} // namespace pilothouse
