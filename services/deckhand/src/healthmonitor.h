#pragma once

#include "config.h"

#include <QDateTime>
#include <QMap>
#include <QObject>
#include <QPointer>
#include <QThread>
#include <QTimer>
#include <health/healthreport.h>
#include <memory>
#include <mutex>
#include <optional>

namespace deckhand {

// What one check of one dependency found.
struct ProbeResult
{
    bool ok = false;
    double ms = 0;
    QString error;
    QDateTime time;
    QString serverVersion;
    std::optional<qint64> queueDepth; // redis
    std::optional<int> schemaVersion; // database
};

class Probe;

struct DependencyState
{
    QString name; // "postgres", "sqlite", "redis"
    bool enabled = true;
    bool known = false; // a check has finished (or timed out) at least once
    ProbeResult last;
    bool knownDown() const { return enabled && known && !last.ok; }
};

// What the HTTP threads read: an immutable copy, swapped whole on each change.
struct HealthSnapshot
{
    DependencyState database;
    DependencyState redis;
    bool draining = false;
    std::optional<QMap<QString, qint64>> jobCounts; // for /metrics; not part of readiness
    int readinessStatus = 503;
    QByteArray readinessBody;
};

// Checks PostgreSQL/SQLite and Redis on their own threads, every interval,
// each with a hard deadline, and keeps the latest findings. The HTTP thread
// only reads the cached results: a dead or hanging dependency never slows a
// request. Migrations run on the database probe's first successful connection.
class HealthMonitor final : public QObject
{
    Q_OBJECT
public:
    struct Dependency : DependencyState
    {
        bool busy = false;
        quint64 timedOut = 0; // the sequence that missed its deadline
        quint64 sequence = 0;
    };

    HealthMonitor(const Config &config, QObject *parent = nullptr);
    ~HealthMonitor() override;

    void start();
    // Stops the probe threads; a probe stuck in a call is left to the OS at exit.
    void stop();
    void setDraining();

    // Safe from any thread; rebuilt only when a finding changes.
    std::shared_ptr<const HealthSnapshot> snapshot() const;
    pilothouse::health::Report report() const;

Q_SIGNALS:
    void changed();

private:
    void tick();
    void dispatch(int index);
    void onResult(int index, quint64 sequence, const ProbeResult &result);
    void onDeadline(int index, quint64 sequence);
    void onStats(const QMap<QString, qint64> &counts);
    void rebuild();

    Config m_config;
    Dependency m_deps[2]; // the database, Redis
    QThread *m_threads[2] = { nullptr, nullptr };
    Probe *m_probes[2] = { nullptr, nullptr };
    std::optional<QMap<QString, qint64>> m_jobCounts;
    QTimer m_timer;
    bool m_draining = false;
    mutable std::mutex m_snapshotMutex;
    std::shared_ptr<const HealthSnapshot> m_snapshot;
};

} // namespace deckhand
