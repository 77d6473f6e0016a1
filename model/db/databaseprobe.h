#pragma once

#include "drivers/command.h"
#include "env/environment.h"

#include <QDateTime>
#include <QMetaType>
#include <QObject>
#include <QPointer>
#include <QThread>
#include <QTimer>
#include <optional>

// What the panel shows about an environment's database, found by a probe on a
// worker thread with a hard timeout (a hanging server never blocks the caller).
namespace pilothouse {

struct TableSize
{
    QString name;
    qint64 bytes = -1;
    qint64 rows = -1; // estimate for PostgreSQL
};

struct DatabaseFacts
{
    enum class Reachability {
        Unknown,
        Reachable,
        Refused,
        AuthFailed,
        Timeout,
        UnknownDatabase,
        UnknownHost,
        Missing, // SQLite: no file yet
        Error
    };
    Reachability reachability = Reachability::Unknown;
    QString error; // why not reachable, for a person
    QString dsn; // without password
    QString engine; // PostgreSQL, SQLite
    QString serverVersion;
    double latencyMs = -1; // one round trip
    qint64 sizeBytes = -1;
    int connectionsUsed = -1;
    int connectionsMax = -1;
    qint64 migrationVersion = -1; // -1: no schema_migrations table
    QList<TableSize> largestTables;
    QDateTime checkedAt;

    bool reachable() const { return reachability == Reachability::Reachable; }
};

QString toString(DatabaseFacts::Reachability r);

class ProbeWorker;

class DatabaseProbe final : public QObject
{
    Q_OBJECT
public:
    explicit DatabaseProbe(DatabaseTarget target, QObject *parent = nullptr);
    ~DatabaseProbe() override;

    // A database in the stack (DatabaseTarget::inStack): where it is now and
    // how to log in, as the session found them; `unavailable` says why not
    // when there is no address. The password stays in memory.
    struct StackConnection
    {
        QString host;
        int port = 0; // 0: the database's own (database.compose.port)
        QString user;
        QString database;
        QString password;
        QString unavailable;
        // Swarm: no address this machine reaches; `exec` runs psql in the
        // database's container (host is its id) and prints the facts.
        bool execThroughEngine = false;
        std::optional<CommandSpec> exec;
    };
    // The one query `exec` runs for the facts (a JSON object).
    static QString factsQuery();
    // psql's output of `exec` as facts (for tests).
    static DatabaseFacts factsFromPsql(const QString &output);
    void setStackConnection(const StackConnection &connection) { m_stack = connection; }

    // Starts a probe; finished() follows, at the latest after the timeout.
    void probe();
    void setTimeoutMs(int ms) { m_timeoutMs = ms; }
    int timeoutMs() const { return m_timeoutMs; }
    bool isBusy() const { return m_busy; }
    const DatabaseFacts &facts() const { return m_facts; }

signals:
    void finished(const pilothouse::DatabaseFacts &facts);

private:
    void deliver(quint64 generation, const pilothouse::DatabaseFacts &facts);
    void dispatch(quint64 generation, const DatabaseTarget &target, const QString &password);
    void fail(DatabaseFacts::Reachability why, const QString &message);
    void runExec(quint64 generation);

    DatabaseTarget m_target;
    QThread m_thread;
    ProbeWorker *m_worker = nullptr;
    QTimer m_deadline;
    QPointer<Command> m_exec; // swarm: psql in the database's container
    DatabaseFacts m_facts;
    quint64 m_generation = 0;
    bool m_busy = false;
    bool m_workerBusy = false;
    bool m_keychainBusy = false;
    QString m_cachedSecret; // from the keychain; in memory only
    StackConnection m_stack;
    int m_timeoutMs = 5000;
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::DatabaseFacts)
