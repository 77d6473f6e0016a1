#pragma once

#include "config.h"
#include "expected.h"
#include "job.h"

#include <QMap>
#include <QSqlDatabase>
#include <QString>

namespace deckhand {

// One database connection, owned by and used from a single thread (Qt Sql's
// rule). Opens lazily, and after any connection failure closes itself so the
// next call reconnects: a database that comes back is picked up without a restart.
class Database final
{
public:
    Database(const DatabaseUrl &url, int timeoutMs, const QString &purpose);
    ~Database();
    Database(const Database &) = delete;
    Database &operator=(const Database &) = delete;

    Outcome open();
    void close();
    bool isOpen() const;

    // Round trip "SELECT 1"; returns the time it took in milliseconds.
    Expected<double> ping();
    // Applies pending migrations under a lock (advisory lock on PostgreSQL,
    // BEGIN IMMEDIATE on SQLite) so instances starting together are safe.
    // Returns how many were applied.
    Expected<int> migrate();
    Expected<int> schemaVersion();
    // The newest migration this build carries.
    static int expectedSchemaVersion();

    Outcome insertJob(const Job &job);
    Outcome deleteJob(const QString &id);
    Expected<std::optional<Job>> job(const QString &id);
    // Claims a queued job; false when another worker already has it.
    Expected<bool> claim(const QString &id, const QString &workerId, const QDateTime &startedAt);
    Outcome markFinished(const Job &job);
    Outcome requeue(const QString &id);
    // Puts a job back to "queued" only if the given (dead) worker still holds it.
    Outcome requeueFrom(const QString &id, const QString &workerId);
    // Job rows by status, given up after timeoutMs (PostgreSQL).
    Expected<QMap<QString, qint64>> jobCounts(int timeoutMs);

    QString serverVersion() const { return m_serverVersion; }
    const DatabaseUrl &url() const { return m_url; }

private:
    Outcome exec(const QString &sql);
    // One prepared, idempotent write with the one-retry rule; `what` prefixes the error.
    Outcome write(const QString &sql, const QVariantList &values, const QString &what);
    // Runs op; when it fails on a connection that was reused (not just
    // opened), the connection may have died unseen: reconnect and run it once more.
    template<typename Op> auto retrying(Op op) -> decltype(op());
    bool m_fresh = false;
    Outcome fail(const QString &what, const QString &detail);

    DatabaseUrl m_url;
    int m_timeoutMs;
    QString m_connectionName;
    QString m_serverVersion;
};

} // namespace deckhand
