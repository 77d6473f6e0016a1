#include "database.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonDocument>
#include <QRegularExpression>
#include <QSqlError>
#include <QSqlQuery>
#include <QSqlRecord>
#include <QUuid>
#include <algorithm>
#include <atomic>

namespace deckhand {

namespace {

std::atomic<int> g_connectionCounter { 0 };

struct Migration
{
    int version;
    QString name;
    QString sql;
};

QString dialectDir(DatabaseUrl::Kind kind)
{
    return kind == DatabaseUrl::Kind::Postgres ? QStringLiteral(":/migrations/postgres")
                                               : QStringLiteral(":/migrations/sqlite");
}

QList<Migration> migrations(DatabaseUrl::Kind kind)
{
    static const QRegularExpression pattern(QStringLiteral("^(\\d+)_(.+)\\.sql$"));
    QList<Migration> list;
    const QDir dir(dialectDir(kind));
    const QStringList files = dir.entryList({ QStringLiteral("*.sql") }, QDir::Files, QDir::Name);
    for (const QString &file : files) {
        const auto m = pattern.match(file);
        if (!m.hasMatch())
            continue;
        QFile f(dir.filePath(file));
        if (!f.open(QIODevice::ReadOnly))
            continue;
        list.append({ m.captured(1).toInt(), m.captured(2), QString::fromUtf8(f.readAll()) });
    }
    std::sort(list.begin(), list.end(),
              [](const Migration &a, const Migration &b) { return a.version < b.version; });
    return list;
}

// Splits a migration file into statements: QSQLITE runs one statement per exec.
QStringList statements(const QString &sql)
{
    QStringList out;
    QString current;
    const QStringList lines = sql.split(QLatin1Char('\n'));
    for (const QString &line : lines) {
        const QString trimmed = line.trimmed();
        if (trimmed.startsWith(QLatin1String("--")))
            continue;
        current += line + QLatin1Char('\n');
        if (trimmed.endsWith(QLatin1Char(';'))) {
            if (!current.trimmed().isEmpty() && current.trimmed() != QLatin1String(";"))
                out << current.trimmed();
            current.clear();
        }
    }
    if (!current.trimmed().isEmpty())
        out << current.trimmed();
    return out;
}

QString isoOrEmpty(const QDateTime &t)
{
    return t.isValid() ? t.toUTC().toString(Qt::ISODateWithMs) : QString();
}

QVariant nullableText(const QString &s)
{
    return s.isEmpty() ? QVariant(QMetaType(QMetaType::QString)) : QVariant(s);
}

QDateTime readTime(const QVariant &v)
{
    if (v.isNull())
        return {};
    QDateTime t = v.toDateTime();
    if (!t.isValid())
        t = QDateTime::fromString(v.toString(), Qt::ISODateWithMs);
    return t.toUTC();
}

// A lock key for pg_advisory_xact_lock that other applications are unlikely to use.
constexpr qint64 kMigrationLockKey = 0x6465636b68616e64; // "deckhand"

} // namespace

Database::Database(const DatabaseUrl &url, int timeoutMs, const QString &purpose)
    : m_url(url)
    , m_timeoutMs(timeoutMs)
    , m_connectionName(
          QStringLiteral("deckhand-%1-%2").arg(purpose).arg(g_connectionCounter.fetch_add(1)))
{ }

Database::~Database()
{
    close();
    QSqlDatabase::removeDatabase(m_connectionName);
}

bool Database::isOpen() const
{
    return QSqlDatabase::contains(m_connectionName) &&
        QSqlDatabase::database(m_connectionName, false).isOpen();
}

void Database::close()
{
    if (QSqlDatabase::contains(m_connectionName)) {
        QSqlDatabase db = QSqlDatabase::database(m_connectionName, false);
        db.close();
    }
}

Outcome Database::fail(const QString &what, const QString &detail)
{
    // Any failure may mean a broken connection; reconnect on the next call.
    close();
    return Error { what + QStringLiteral(": ") + detail.trimmed() };
}

template<typename Op> auto Database::retrying(Op op) -> decltype(op())
{
    m_fresh = false;
    auto result = op();
    if (!result.ok() && !m_fresh) {
        close();
        result = op();
    }
    return result;
}

Outcome Database::open()
{
    if (isOpen())
        return success();
    m_fresh = true;
    QSqlDatabase db;
    if (QSqlDatabase::contains(m_connectionName)) {
        db = QSqlDatabase::database(m_connectionName, false);
    } else {
        const bool pg = m_url.kind == DatabaseUrl::Kind::Postgres;
        const QString driver = pg ? QStringLiteral("QPSQL") : QStringLiteral("QSQLITE");
        if (!QSqlDatabase::isDriverAvailable(driver))
            return Error {
                QStringLiteral("the Qt SQL driver %1 is not installed (Debian: libqt6sql6-%2)")
                    .arg(driver, pg ? QStringLiteral("psql") : QStringLiteral("sqlite"))
            };
        db = QSqlDatabase::addDatabase(driver, m_connectionName);
        if (pg) {
            db.setHostName(m_url.host);
            db.setPort(m_url.port);
            db.setUserName(m_url.user);
            db.setPassword(m_url.password);
            db.setDatabaseName(m_url.database);
            // libpq's connect_timeout is whole seconds with a minimum of 2.
            QString options =
                QStringLiteral("connect_timeout=%1").arg(std::max(2, (m_timeoutMs + 999) / 1000));
            // statement_timeout is the server's; a silent network needs the
            // client to give up too: unacknowledged data and idle keepalives.
            options += QStringLiteral(";keepalives=1;keepalives_idle=5;keepalives_interval=2;"
                                      "keepalives_count=2;tcp_user_timeout=%1")
                           .arg(std::max(m_timeoutMs, 1000) * 2);
            if (!m_url.options.isEmpty())
                options += QLatin1Char(';') + m_url.options;
            if (!m_url.options.contains(QLatin1String("application_name")))
                options += QStringLiteral(";application_name=deckhand");
            db.setConnectOptions(options);
        } else {
            if (m_url.path != QLatin1String(":memory:")) {
                const QFileInfo info(m_url.path);
                if (!QDir().mkpath(info.absolutePath()))
                    return Error { QStringLiteral(
                                       "cannot create the directory %1 for the SQLite database")
                                       .arg(info.absolutePath()) };
            }
            db.setDatabaseName(m_url.path);
            db.setConnectOptions(
                QStringLiteral("QSQLITE_BUSY_TIMEOUT=%1").arg(std::max(m_timeoutMs, 5000)));
        }
    }
    if (!db.open())
        return fail(QStringLiteral("cannot connect to %1").arg(m_url.redacted()),
                    db.lastError().text());

    if (m_url.kind == DatabaseUrl::Kind::Postgres) {
        // Server notices ("already exists, skipping") would reach stderr through
        // libpq, outside the JSON log; only warnings and errors matter here.
        if (auto r = exec(QStringLiteral("SET client_min_messages = warning")); !r)
            return r;
        // A hard ceiling for every statement on this connection.
        if (auto r =
                exec(QStringLiteral("SET statement_timeout = %1").arg(std::max(m_timeoutMs, 100)));
            !r)
            return r;
        QSqlQuery q(db);
        if (q.exec(QStringLiteral("SHOW server_version")) && q.next())
            m_serverVersion = QStringLiteral("PostgreSQL ") + q.value(0).toString();
    } else {
        // WAL lets the API read while the worker writes. The mode belongs to the
        // file: when another process holds the lock while switching it (several
        // `migrate` at once), SQLite answers "locked" at once, and theirs applies.
        // Not through exec(): a failure there would close this good connection.
        QSqlQuery q(db);
        if (m_url.path != QLatin1String(":memory:"))
            q.exec(QStringLiteral("PRAGMA journal_mode=WAL"));
        if (q.exec(QStringLiteral("SELECT sqlite_version()")) && q.next())
            m_serverVersion = QStringLiteral("SQLite ") + q.value(0).toString();
    }
    return success();
}

Outcome Database::exec(const QString &sql)
{
    QSqlQuery q(QSqlDatabase::database(m_connectionName, false));
    if (!q.exec(sql))
        return fail(QStringLiteral("statement failed"), q.lastError().text());
    return success();
}

Expected<double> Database::ping()
{
    return retrying([&]() -> Expected<double> {
        QElapsedTimer timer;
        timer.start();
        if (auto r = open(); !r)
            return Error { r.error() };
        QSqlQuery q(QSqlDatabase::database(m_connectionName, false));
        if (!q.exec(QStringLiteral("SELECT 1")) || !q.next())
            return Error { fail(QStringLiteral("SELECT 1 failed"), q.lastError().text()).error() };
        return double(timer.nsecsElapsed()) / 1e6;
    });
}

int Database::expectedSchemaVersion()
{
    const auto list = migrations(DatabaseUrl::Kind::Postgres);
    return list.isEmpty() ? 0 : list.last().version;
}

Expected<int> Database::schemaVersion()
{
    if (auto r = open(); !r)
        return Error { r.error() };
    QSqlQuery q(QSqlDatabase::database(m_connectionName, false));
    if (!q.exec(QStringLiteral("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")) ||
        !q.next())
        return Error {
            fail(QStringLiteral("cannot read schema_migrations"), q.lastError().text()).error()
        };
    return q.value(0).toInt();
}

Expected<int> Database::migrate()
{
    if (auto r = open(); !r)
        return Error { r.error() };
    const bool pg = m_url.kind == DatabaseUrl::Kind::Postgres;
    QSqlDatabase db = QSqlDatabase::database(m_connectionName, false);
    QSqlQuery q(db);
    // Migrations may take longer than a health check; lift the ceiling for them.
    if (pg && !q.exec(QStringLiteral("SET statement_timeout = 0")))
        return Error {
            fail(QStringLiteral("migration set-up failed"), q.lastError().text()).error()
        };

    auto rollback = [&](const QString &what, const QString &detail) -> Expected<int> {
        QSqlQuery(db).exec(QStringLiteral("ROLLBACK"));
        if (pg)
            QSqlQuery(db).exec(
                QStringLiteral("SET statement_timeout = %1").arg(std::max(m_timeoutMs, 100)));
        return Error { QStringLiteral("migration failed: ") + what + QStringLiteral(": ") +
                       detail.trimmed() };
    };

    if (!q.exec(pg ? QStringLiteral("BEGIN") : QStringLiteral("BEGIN IMMEDIATE")))
        return rollback(QStringLiteral("cannot start a transaction"), q.lastError().text());
    if (pg && !q.exec(QStringLiteral("SELECT pg_advisory_xact_lock(%1)").arg(kMigrationLockKey)))
        return rollback(QStringLiteral("cannot take the migration lock"), q.lastError().text());
    if (!q.exec(QStringLiteral(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")))
        return rollback(QStringLiteral("cannot create schema_migrations"), q.lastError().text());

    QList<int> applied;
    if (!q.exec(QStringLiteral("SELECT version FROM schema_migrations")))
        return rollback(QStringLiteral("cannot read schema_migrations"), q.lastError().text());
    while (q.next())
        applied << q.value(0).toInt();

    int count = 0;
    for (const Migration &m : migrations(m_url.kind)) {
        if (applied.contains(m.version))
            continue;
        for (const QString &statement : statements(m.sql)) {
            if (!q.exec(statement))
                return rollback(
                    QStringLiteral("%1_%2").arg(m.version, 4, 10, QLatin1Char('0')).arg(m.name),
                    q.lastError().text());
        }
        QSqlQuery insert(db);
        insert.prepare(QStringLiteral(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"));
        insert.addBindValue(m.version);
        insert.addBindValue(m.name);
        insert.addBindValue(QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs));
        if (!insert.exec())
            return rollback(QStringLiteral("cannot record version %1").arg(m.version),
                            insert.lastError().text());
        ++count;
    }
    if (!q.exec(QStringLiteral("COMMIT")))
        return rollback(QStringLiteral("commit"), q.lastError().text());
    if (pg && !q.exec(QStringLiteral("SET statement_timeout = %1").arg(std::max(m_timeoutMs, 100))))
        return Error {
            fail(QStringLiteral("migration clean-up failed"), q.lastError().text()).error()
        };
    return count;
}

Outcome Database::write(const QString &sql, const QVariantList &values, const QString &what)
{
    return retrying([&]() -> Outcome {
        if (auto r = open(); !r)
            return r;
        QSqlQuery q(QSqlDatabase::database(m_connectionName, false));
        q.prepare(sql);
        for (const QVariant &v : values)
            q.addBindValue(v);
        if (!q.exec())
            return fail(what, q.lastError().text());
        return success();
    });
}

Outcome Database::insertJob(const Job &job)
{
    // ON CONFLICT: a retry after a lost reply finds its own row, not an error.
    return write(
        QStringLiteral("INSERT INTO jobs (id, type, payload, status, attempts, created_at) "
                       "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING"),
        { job.id, job.type,
          QString::fromUtf8(QJsonDocument(job.payload).toJson(QJsonDocument::Compact)), job.status,
          isoOrEmpty(job.createdAt) },
        QStringLiteral("cannot store the job"));
}

Outcome Database::deleteJob(const QString &id)
{
    return write(QStringLiteral("DELETE FROM jobs WHERE id = ?"), { id },
                 QStringLiteral("cannot delete the job"));
}

Expected<std::optional<Job>> Database::job(const QString &id)
{
    return retrying([&]() -> Expected<std::optional<Job>> {
        if (auto r = open(); !r)
            return Error { r.error() };
        QSqlQuery q(QSqlDatabase::database(m_connectionName, false));
        q.prepare(QStringLiteral(
            "SELECT id, type, payload, status, result, error, attempts, worker_id, created_at, "
            "started_at, finished_at, duration_ms FROM jobs WHERE id = ?"));
        q.addBindValue(id);
        if (!q.exec())
            return Error {
                fail(QStringLiteral("cannot read the job"), q.lastError().text()).error()
            };
        if (!q.next())
            return std::optional<Job>();
        Job j;
        j.id = q.value(0).toString();
        j.type = q.value(1).toString();
        j.payload = QJsonDocument::fromJson(q.value(2).toString().toUtf8()).object();
        j.status = q.value(3).toString();
        if (!q.value(4).isNull())
            j.result = QJsonDocument::fromJson(q.value(4).toString().toUtf8()).object();
        j.error = q.value(5).toString();
        j.attempts = q.value(6).toInt();
        j.workerId = q.value(7).toString();
        j.createdAt = readTime(q.value(8));
        j.startedAt = readTime(q.value(9));
        j.finishedAt = readTime(q.value(10));
        if (!q.value(11).isNull())
            j.durationMs = q.value(11).toDouble();
        return std::optional<Job>(j);
    });
}

Expected<bool> Database::claim(const QString &id, const QString &workerId,
                               const QDateTime &startedAt)
{
    return retrying([&]() -> Expected<bool> {
        if (auto r = open(); !r)
            return Error { r.error() };
        QSqlQuery q(QSqlDatabase::database(m_connectionName, false));
        q.prepare(
            // Matching our own earlier claim too makes a retry after a lost
            // reply idempotent: the first attempt may have committed.
            QStringLiteral("UPDATE jobs SET status = 'running', worker_id = ?, started_at = ?, "
                           "attempts = attempts + CASE WHEN status = 'queued' THEN 1 ELSE 0 END "
                           "WHERE id = ? AND (status = 'queued' OR (status = 'running' AND "
                           "worker_id = ? AND started_at = ?))"));
        q.addBindValue(workerId);
        q.addBindValue(isoOrEmpty(startedAt));
        q.addBindValue(id);
        q.addBindValue(workerId);
        q.addBindValue(isoOrEmpty(startedAt));
        if (!q.exec())
            return Error {
                fail(QStringLiteral("cannot claim the job"), q.lastError().text()).error()
            };
        return q.numRowsAffected() == 1;
    });
}

Outcome Database::markFinished(const Job &job)
{
    return write(
        QStringLiteral("UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?, "
                       "duration_ms = ? WHERE id = ?"),
        { job.status,
          job.result ? QVariant(QString::fromUtf8(
                           QJsonDocument(*job.result).toJson(QJsonDocument::Compact)))
                     : QVariant(QMetaType(QMetaType::QString)),
          nullableText(job.error), isoOrEmpty(job.finishedAt),
          job.durationMs ? QVariant(*job.durationMs) : QVariant(QMetaType(QMetaType::Double)),
          job.id },
        QStringLiteral("cannot record the job result"));
}

Outcome Database::requeue(const QString &id)
{
    return write(QStringLiteral("UPDATE jobs SET status = 'queued', worker_id = NULL, "
                                "started_at = NULL WHERE id = ?"),
                 { id }, QStringLiteral("cannot requeue the job"));
}

Outcome Database::requeueFrom(const QString &id, const QString &workerId)
{
    return write(
        QStringLiteral("UPDATE jobs SET status = 'queued', worker_id = NULL, started_at = NULL "
                       "WHERE id = ? AND status = 'running' AND worker_id = ?"),
        { id, workerId }, QStringLiteral("cannot requeue the job"));
}

Expected<QMap<QString, qint64>> Database::jobCounts(int timeoutMs)
{
    if (auto r = open(); !r)
        return Error { r.error() };
    QSqlDatabase db = QSqlDatabase::database(m_connectionName, false);
    QSqlQuery q(db);
    const bool pg = m_url.kind == DatabaseUrl::Kind::Postgres;
    // Bounded: a large jobs table costs a skipped statistic, never a late check.
    if (pg &&
        (!q.exec(QStringLiteral("BEGIN")) ||
         !q.exec(QStringLiteral("SET LOCAL statement_timeout = %1").arg(std::max(timeoutMs, 10)))))
        return Error { fail(QStringLiteral("cannot count jobs"), q.lastError().text()).error() };
    QMap<QString, qint64> counts;
    const bool ok = q.exec(QStringLiteral("SELECT status, COUNT(*) FROM jobs GROUP BY status"));
    while (ok && q.next())
        counts.insert(q.value(0).toString(), q.value(1).toLongLong());
    const QString error = q.lastError().text();
    if (pg)
        QSqlQuery(db).exec(ok ? QStringLiteral("COMMIT") : QStringLiteral("ROLLBACK"));
    if (!ok)
        return Error { QStringLiteral("cannot count jobs: ") + error };
    return counts;
}

} // namespace deckhand
