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
