#include "db/databaseprobe.h"

#include "core/secrets.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcessEnvironment>
#include <QRegularExpression>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QUrl>
#include <QUrlQuery>
#include <atomic>

namespace pilothouse {

QString toString(DatabaseFacts::Reachability r)
{
    using R = DatabaseFacts::Reachability;
    switch (r) {
    case R::Unknown:
        return QStringLiteral("unknown");
    case R::Reachable:
        return QStringLiteral("reachable");
    case R::Refused:
        return QStringLiteral("refused");
    case R::AuthFailed:
        return QStringLiteral("auth-failed");
    case R::Timeout:
        return QStringLiteral("timeout");
    case R::UnknownDatabase:
        return QStringLiteral("unknown-database");
    case R::UnknownHost:
        return QStringLiteral("unknown-host");
    case R::Missing:
        return QStringLiteral("missing");
    case R::Error:
        return QStringLiteral("error");
    }
    return {};
}

// Lives on the probe's thread; owns the connections it opens there.
class ProbeWorker final : public QObject
{
    Q_OBJECT
public:
    using QObject::QObject;

public slots:
    void run(quint64 generation, const pilothouse::DatabaseTarget &target, const QString &password,
             int timeoutMs)
    {
        static std::atomic<int> counter { 0 };
        const QString name = QStringLiteral("pilothouse-probe-%1").arg(++counter);
        DatabaseFacts facts;
        {
            facts = target.isSqlite() ? probeSqlite(name, target)
                                      : probePostgres(name, target, password, timeoutMs);
        }
        QSqlDatabase::removeDatabase(name);
        facts.dsn = target.displayDsn();
        facts.checkedAt = QDateTime::currentDateTimeUtc();
        emit done(generation, facts);
    }

signals:
    void done(quint64 generation, const pilothouse::DatabaseFacts &facts);

private:
    static DatabaseFacts::Reachability classify(const QString &text)
    {
        using R = DatabaseFacts::Reachability;
        const auto has = [&text](const char *n) {
            return text.contains(QLatin1String(n), Qt::CaseInsensitive);
        };
        if (has("Connection refused"))
            return R::Refused;
        if (has("password authentication failed") || has("no password supplied") ||
            has("authentication failed") || has("role \"") /* does not exist */)
            return R::AuthFailed;
        if (has("timeout expired") || has("timed out") || has("statement timeout"))
            return R::Timeout;
        if (has("database \"") && has("does not exist"))
            return R::UnknownDatabase;
        if (has("could not translate host name") || has("Name or service not known"))
            return R::UnknownHost;
        return R::Error;
    }

    static QString explain(DatabaseFacts::Reachability r, const QString &raw, const QUrl &dsn)
    {
        using R = DatabaseFacts::Reachability;
        const QString where = QStringLiteral("%1:%2").arg(dsn.host()).arg(dsn.port(5432));
        switch (r) {
        case R::Refused:
            return QStringLiteral("connection refused at %1: is PostgreSQL running and listening "
                                  "there?")
                .arg(where);
        case R::AuthFailed:
            return QStringLiteral("authentication failed for user \"%1\": check the password in "
                                  "~/.pgpass or the variable named by database.passwordEnv")
                .arg(dsn.userName());
        case R::Timeout:
            return QStringLiteral("no answer from %1 in time").arg(where);
        case R::UnknownDatabase:
            return QStringLiteral("database \"%1\" does not exist on %2")
                .arg(dsn.path().mid(1), where);
        case R::UnknownHost:
            return QStringLiteral("host \"%1\" not found").arg(dsn.host());
        default:
            return raw.simplified();
        }
    }

    static void readMigration(QSqlQuery &q, DatabaseFacts &f)
    {
        if (q.exec(QStringLiteral("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")) &&
            q.next())
            f.migrationVersion = q.value(0).toLongLong();
    }

    DatabaseFacts probePostgres(const QString &name, const DatabaseTarget &target,
                                const QString &password, int timeoutMs)
    {
        DatabaseFacts f;
        f.engine = QStringLiteral("PostgreSQL");
        QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QPSQL"), name);
        if (!db.isValid()) {
            f.reachability = DatabaseFacts::Reachability::Error;
            f.error = QStringLiteral("the Qt PostgreSQL driver (QPSQL) is not installed: "
                                     "apt-get install libqt6sql6-psql");
            return f;
        }
        db.setHostName(target.dsn.host());
        db.setPort(target.dsn.port(5432));
        db.setUserName(target.dsn.userName());
        db.setDatabaseName(target.dsn.path().mid(1));
        if (!password.isEmpty())
            db.setPassword(password);
        QStringList options {
            QStringLiteral("connect_timeout=%1").arg(std::max(1, (timeoutMs + 999) / 1000)),
            QStringLiteral("application_name=pilothouse-probe"),
            // A server that vanishes mid-probe (no RST) fails within the timeout
            // instead of holding the probe thread.
            QStringLiteral("keepalives=1"), QStringLiteral("keepalives_idle=2"),
            QStringLiteral("keepalives_interval=1"), QStringLiteral("keepalives_count=2"),
            QStringLiteral("tcp_user_timeout=%1").arg(timeoutMs)
        };
        // Only allow-listed keys and values (validated with the environment);
        // later keys win in libpq, so the user's choices override ours.
        for (const auto &[key, value] : target.options())
            options << key + QLatin1Char('=') + value;
        db.setConnectOptions(options.join(QLatin1Char(';')));
        QElapsedTimer clock;
        clock.start();
        if (!db.open()) {
            const QString raw = db.lastError().text();
            f.reachability = classify(raw);
            f.error = explain(f.reachability, raw, target.dsn);
            return f;
        }
        QSqlQuery q(db);
        q.exec(QStringLiteral("SET statement_timeout = %1").arg(timeoutMs));
        clock.restart();
        if (!q.exec(QStringLiteral("SELECT 1"))) {
            const QString raw = q.lastError().text();
            f.reachability = classify(raw);
            f.error = explain(f.reachability, raw, target.dsn);
            return f;
        }
        f.latencyMs = clock.nsecsElapsed() / 1e6;
        f.reachability = DatabaseFacts::Reachability::Reachable;
        if (q.exec(QStringLiteral(
                "SELECT current_setting('server_version'), "
                "pg_database_size(current_database()), "
                "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
                "current_setting('max_connections')::int")) &&
            q.next()) {
            f.serverVersion = q.value(0).toString();
            f.sizeBytes = q.value(1).toLongLong();
            f.connectionsUsed = q.value(2).toInt();
            f.connectionsMax = q.value(3).toInt();
        }
        if (q.exec(QStringLiteral("SELECT to_regclass('schema_migrations') IS NOT NULL")) &&
            q.next() && q.value(0).toBool())
            readMigration(q, f);
        if (q.exec(QStringLiteral(
                "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid), "
                "GREATEST(c.reltuples, 0)::bigint FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'm') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' "
                "ORDER BY 2 DESC, 1 LIMIT 5"))) {
            while (q.next())
                f.largestTables << TableSize { q.value(0).toString(), q.value(1).toLongLong(),
                                               q.value(2).toLongLong() };
        }
        return f;
    }

    DatabaseFacts probeSqlite(const QString &name, const DatabaseTarget &target)
    {
        DatabaseFacts f;
        f.engine = QStringLiteral("SQLite");
        const QString path = target.dsn.path();
        const QFileInfo fi(path);
        if (!fi.exists()) {
            f.reachability = DatabaseFacts::Reachability::Missing;
            f.error = QStringLiteral("%1 does not exist yet: start the environment once to "
                                     "create it")
                          .arg(path);
            return f;
        }
        QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), name);
        db.setDatabaseName(path);
        // Read-only: probing must never create or change the file.
        db.setConnectOptions(QStringLiteral("QSQLITE_OPEN_READONLY;QSQLITE_BUSY_TIMEOUT=1000"));
        QElapsedTimer clock;
        clock.start();
        if (!db.open()) {
            f.reachability = DatabaseFacts::Reachability::Error;
            f.error = QStringLiteral("cannot open %1: %2").arg(path, db.lastError().text());
            return f;
        }
        QSqlQuery q(db);
        if (!q.exec(QStringLiteral("SELECT sqlite_version()")) || !q.next()) {
            f.reachability = DatabaseFacts::Reachability::Error;
            f.error = QStringLiteral("%1 is not a readable SQLite database: %2")
                          .arg(path, q.lastError().text());
            return f;
        }
        f.latencyMs = clock.nsecsElapsed() / 1e6;
        f.reachability = DatabaseFacts::Reachability::Reachable;
        f.serverVersion = q.value(0).toString();
        f.sizeBytes = fi.size() + QFileInfo(path + QStringLiteral("-wal")).size();
        if (q.exec(QStringLiteral("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                                  "'schema_migrations'")) &&
            q.next())
            readMigration(q, f);
        QList<TableSize> tables;
        if (q.exec(QStringLiteral("SELECT s.name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m "
                                  "ON m.name = s.name AND m.type = 'table' GROUP BY s.name"))) {
            while (q.next())
                tables << TableSize { q.value(0).toString(), q.value(1).toLongLong(), -1 };
        } else if (q.exec(QStringLiteral("SELECT name FROM sqlite_master WHERE type = 'table'"))) {
            while (q.next())
                tables << TableSize { q.value(0).toString(), -1, -1 };
        }
        tables.erase(std::remove_if(tables.begin(), tables.end(),
                                    [](const TableSize &t) {
                                        return t.name.startsWith(QLatin1String("sqlite_"));
                                    }),
                     tables.end());
        std::sort(tables.begin(), tables.end(), [](const TableSize &a, const TableSize &b) {
            return std::tie(b.bytes, a.name) < std::tie(a.bytes, b.name);
        });
        tables = tables.mid(0, 5);
        for (TableSize &t : tables) {
            // Names come from the catalogue; quoted as identifiers all the same.
            QString quoted = t.name;
            quoted.replace(QLatin1Char('"'), QLatin1String("\"\""));
            if (q.exec(QStringLiteral("SELECT count(*) FROM \"%1\"").arg(quoted)) && q.next())
                t.rows = q.value(0).toLongLong();
        }
        f.largestTables = tables;
        return f;
    }
};

DatabaseProbe::DatabaseProbe(DatabaseTarget target, QObject *parent)
    : QObject(parent)
    , m_target(std::move(target))
{
    qRegisterMetaType<pilothouse::DatabaseFacts>();
    qRegisterMetaType<pilothouse::DatabaseTarget>();
    m_worker = new ProbeWorker;
    m_worker->moveToThread(&m_thread);
    connect(&m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &ProbeWorker::done, this, &DatabaseProbe::deliver);
    m_thread.setObjectName(QStringLiteral("database-probe"));
    m_thread.start();
    m_deadline.setSingleShot(true);
    connect(&m_deadline, &QTimer::timeout, this, [this] {
        DatabaseFacts f;
        f.reachability = DatabaseFacts::Reachability::Timeout;
        f.engine = m_target.isSqlite() ? QStringLiteral("SQLite") : QStringLiteral("PostgreSQL");
        f.dsn = m_target.displayDsn();
        f.error = QStringLiteral("no answer within %1 s").arg(m_timeoutMs / 1000.0);
        f.checkedAt = QDateTime::currentDateTimeUtc();
        m_busy = false;
        m_facts = f;
        emit finished(f);
    });
}

DatabaseProbe::~DatabaseProbe()
{
    m_thread.quit();
    // A probe stuck in a driver call ends by its own connect/statement timeout.
    m_thread.wait();
}

void DatabaseProbe::probe()
{
    if (m_busy)
        return; // the answer to the running probe comes soon enough
    if (m_workerBusy) {
        // The last probe timed out and is still stuck; do not queue behind it.
        QMetaObject::invokeMethod(
            this, [this] { emit finished(m_facts); }, Qt::QueuedConnection);
        return;
    }
    m_busy = true;
    const quint64 generation = ++m_generation;
    m_deadline.start(m_timeoutMs + 500);
    if (m_target.inStack) {
        if (m_stack.exec) {
            runExec(generation);
            return;
        }
        if (m_stack.host.isEmpty()) {
            QMetaObject::invokeMethod(
                this, [this] { fail(DatabaseFacts::Reachability::Refused, m_stack.unavailable); },
                Qt::QueuedConnection);
            return;
        }
        DatabaseTarget resolved = m_target;
        QUrl dsn;
        dsn.setScheme(QStringLiteral("postgresql"));
        dsn.setUserName(m_stack.user);
        dsn.setHost(m_stack.host);
        dsn.setPort(m_stack.port > 0 ? m_stack.port : m_target.inStack->port);
        dsn.setPath(QLatin1Char('/') + m_stack.database);
        resolved.dsn = dsn;
        dispatch(generation, resolved, m_stack.password);
        return;
    }
    if (!m_target.keychainKey.isEmpty() && m_cachedSecret.isEmpty()) {
        if (m_keychainBusy)
            return; // one keychain read at a time (it may be waiting on an unlock prompt)
        m_keychainBusy = true;
        // The keychain answers asynchronously (D-Bus); the probe goes on from there.
        readSecret(m_target.keychainKey, this, [this, generation](Expected<QString> secret) {
            m_keychainBusy = false;
            if (secret)
                m_cachedSecret = *secret; // read once, not every interval
            if (generation != m_generation || !m_busy)
                return;
            if (!secret) {
                fail(DatabaseFacts::Reachability::AuthFailed, secret.error());
                return;
            }
            dispatch(generation, m_target, *secret);
        });
        return;
    }
    if (!m_target.keychainKey.isEmpty()) {
        dispatch(generation, m_target, m_cachedSecret);
        return;
    }
    QString password;
    if (!m_target.passwordEnv.isEmpty())
        password = QProcessEnvironment::systemEnvironment().value(m_target.passwordEnv);
    dispatch(generation, m_target, password);
}

QString DatabaseProbe::factsQuery()
{
    return QStringLiteral(
        "SELECT jsonb_build_object("
        "'version', current_setting('server_version'), "
        "'size', pg_database_size(current_database()), "
        "'used', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
        "'max', current_setting('max_connections')::int, "
        "'tables', (SELECT COALESCE(jsonb_agg(t), '[]'::jsonb) FROM ("
        "SELECT n.nspname || '.' || c.relname AS name, pg_total_relation_size(c.oid) AS bytes, "
        "GREATEST(c.reltuples, 0)::bigint AS rows FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'm') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 2 DESC, 1 LIMIT 5) t))");
}

DatabaseFacts DatabaseProbe::factsFromPsql(const QString &output)
{
    DatabaseFacts f;
    f.engine = QStringLiteral("PostgreSQL");
    static const QRegularExpression timing(QStringLiteral("^Time: ([0-9.]+) ms"));
    for (const QString &raw : output.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
        const QString line = raw.trimmed();
        if (const auto m = timing.match(line); m.hasMatch()) {
            if (f.latencyMs < 0) // the SELECT 1
                f.latencyMs = m.captured(1).toDouble();
        } else if (line.startsWith(QLatin1Char('{'))) {
            const QJsonObject o = QJsonDocument::fromJson(line.toUtf8()).object();
            f.serverVersion = o.value(QStringLiteral("version")).toString();
            f.sizeBytes = o.value(QStringLiteral("size")).toInteger(-1);
            f.connectionsUsed = o.value(QStringLiteral("used")).toInt(-1);
            f.connectionsMax = o.value(QStringLiteral("max")).toInt(-1);
            for (const QJsonValue &t : o.value(QStringLiteral("tables")).toArray()) {
                const QJsonObject table = t.toObject();
                f.largestTables << TableSize { table.value(QStringLiteral("name")).toString(),
                                               table.value(QStringLiteral("bytes")).toInteger(-1),
                                               table.value(QStringLiteral("rows")).toInteger(-1) };
            }
            f.reachability = DatabaseFacts::Reachability::Reachable;
        } else if (line.startsWith(QLatin1String("migration="))) {
            f.migrationVersion = line.mid(10).toLongLong();
        }
    }
    return f;
}

void DatabaseProbe::runExec(quint64 generation)
{
    if (m_exec)
        m_exec->dismiss();
    auto *cmd = new Command(*m_stack.exec, this);
    m_exec = cmd;
    connect(cmd, &Command::finished, this, [this, cmd, generation](const CommandResult &r) {
        cmd->deleteLater();
        if (m_exec == cmd)
            m_exec = nullptr;
        if (generation != m_generation || !m_busy)
            return;
        DatabaseFacts f = factsFromPsql(r.output);
        f.dsn = m_target.displayDsn();
        if (!f.reachable()) {
            const QString why = r.errorOutput.trimmed().section(QLatin1Char('\n'), 0, 0);
            fail(DatabaseFacts::Reachability::Error,
                 QStringLiteral("psql in the database's container: %1")
                     .arg(why.isEmpty() ? QStringLiteral("no answer (exit %1)").arg(r.exitCode)
                                        : why));
            return;
        }
        f.checkedAt = QDateTime::currentDateTimeUtc();
        m_deadline.stop();
        m_busy = false;
        m_facts = f;
        emit finished(f);
    });
    cmd->start();
}

void DatabaseProbe::dispatch(quint64 generation, const DatabaseTarget &target,
                             const QString &password)
{
    m_workerBusy = true;
    QMetaObject::invokeMethod(m_worker, "run", Qt::QueuedConnection, Q_ARG(quint64, generation),
                              Q_ARG(pilothouse::DatabaseTarget, target), Q_ARG(QString, password),
                              Q_ARG(int, m_timeoutMs));
}

void DatabaseProbe::fail(DatabaseFacts::Reachability why, const QString &message)
{
    // Known before anything was asked of the server: the probe ends here.
    m_deadline.stop();
    m_busy = false;
    DatabaseFacts f;
    f.reachability = why;
    f.engine = QStringLiteral("PostgreSQL");
    f.dsn = m_target.displayDsn();
    f.error = message;
    f.checkedAt = QDateTime::currentDateTimeUtc();
    m_facts = f;
    emit finished(f);
}

void DatabaseProbe::deliver(quint64 generation, const DatabaseFacts &facts)
{
    m_workerBusy = false;
    // A changed password: read the keychain again next time.
    if (facts.reachability == DatabaseFacts::Reachability::AuthFailed)
        m_cachedSecret.clear();
    if (generation != m_generation || !m_busy)
        return; // answered too late: the timeout was already reported
    m_deadline.stop();
    m_busy = false;
    m_facts = facts;
    emit finished(facts);
}

} // namespace pilothouse

#include "databaseprobe.moc"
