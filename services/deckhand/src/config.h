#pragma once

#include "expected.h"

#include <QProcessEnvironment>
#include <QString>
#include <QStringList>
#include <optional>

namespace deckhand {

enum class LogLevel { Debug, Info, Warning, Error };
enum class LogFormat { Json, Console };

struct DatabaseUrl
{
    enum class Kind { Sqlite, Postgres };
    Kind kind = Kind::Sqlite;
    QString path; // SQLite file, or ":memory:"
    QString host;
    int port = 5432;
    QString user;
    QString password; // empty: libpq falls back to PGPASSWORD and ~/.pgpass
    QString database;
    QString options; // libpq keywords from the query string, "k=v;k=v"

    static Expected<DatabaseUrl> parse(const QString &text);
    // The URL with any password replaced by "***": safe for logs and errors.
    QString redacted() const;
    QString checkName() const
    {
        return kind == Kind::Sqlite ? QStringLiteral("sqlite") : QStringLiteral("postgres");
    }
};

struct RedisUrl
{
    QString host = QStringLiteral("127.0.0.1");
    int port = 6379;
    QString username;
    QString password;
    int db = 0;

    static Expected<RedisUrl> parse(const QString &text);
    QString redacted() const;
};

// Everything deckhand reads from its environment, validated as a whole so a
// bad start-up lists every problem at once.
struct Config
{
    DatabaseUrl database;
    std::optional<RedisUrl> redis;
    QString host = QStringLiteral("127.0.0.1");
    quint16 port = 8000;
    LogLevel logLevel = LogLevel::Info;
    LogFormat logFormat = LogFormat::Json;
    int shutdownGraceMs = 10000;
    // DRAIN_SECONDS: after SIGTERM, readiness answers 503 this long while the
    // listeners stay open, so a proxy's checks take this replica out before
    // it stops accepting; then the graceful shutdown proper.
    int drainDelayMs = 0;
    int checkIntervalMs = 5000;
    int checkTimeoutMs = 1000;
    int maxConnections = 1024;
    int idleTimeoutMs = 15000;
    int requestTimeoutMs = 10000;
    int sendTimeoutMs = 10000; // SEND_TIMEOUT_SECONDS: answers left unread this long close it
    int httpThreads = 0; // 0: one per CPU core (at most 8)
    QString imageTag; // empty: the tag baked in at build time
    // Where the worker's heartbeat goes (WORKER_HEARTBEAT_FILE); by default
    // a private place: $XDG_RUNTIME_DIR, else the state folder. Never a
    // shared /tmp on a host.
    QString workerHeartbeatFile;
    bool workerHeartbeatDefault = false; // its folder is made (0700) when missing
    int workerLeaseSeconds = 30; // a worker silent this long is presumed dead
    // The jobs API (POST /v1/jobs, GET /v1/jobs/{id}) asks for
    // "Authorization: Bearer <token>" when set (JOBS_API_TOKEN[_FILE]);
    // probes, /version and /metrics stay open.
    QByteArray jobsToken;
    int maxQueuedJobs = 10000; // JOBS_MAX_QUEUED: past it POST /v1/jobs answers 503

    static QString defaultSqlitePath();
    // Returns the config, or every problem found, one line each.
    static std::variant<Config, QStringList> fromEnvironment(const QProcessEnvironment &env);
};

// The sysexits.h code for a configuration error.
inline constexpr int kExitConfig = 78;

} // namespace deckhand
