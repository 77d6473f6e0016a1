#include "healthmonitor.h"

#include "buildinfo.h"
#include "database.h"
#include "log.h"
#include "redisclient.h"

#include <QJsonDocument>

namespace deckhand {

using pilothouse::health::Check;
using pilothouse::health::Report;
using pilothouse::health::Status;

// Lives on its own thread; everything it owns is created and used there.
class Probe : public QObject
{
public:
    using QObject::QObject;
    virtual ProbeResult check() = 0;
    // Extra figures for /metrics, gathered after the check's answer is posted.
    virtual std::optional<QMap<QString, qint64>> stats() { return std::nullopt; }
};

namespace {

class DatabaseProbe final : public Probe
{
public:
    DatabaseProbe(const Config &config)
        : m_url(config.database)
        , m_timeoutMs(config.checkTimeoutMs)
    { }
    ~DatabaseProbe() override { m_db.reset(); }

    ProbeResult check() override
    {
        if (!m_db)
            m_db = std::make_unique<Database>(m_url, m_timeoutMs, QStringLiteral("health"));
        ProbeResult r;
        if (!m_migrated) {
            auto applied = m_db->migrate();
            if (!applied) {
                r.error = applied.error();
                return r;
            }
            m_migrated = true;
            if (*applied > 0)
                Log::info(
                    "deckhand.db", QStringLiteral("migrations applied"),
                    { { QStringLiteral("count"), *applied },
                      { QStringLiteral("schema_version"), Database::expectedSchemaVersion() } });
        }
        auto ms = m_db->ping();
        if (!ms) {
            r.error = ms.error();
            return r;
        }
        r.ok = true;
        r.ms = *ms;
        r.serverVersion = m_db->serverVersion();
        if (auto v = m_db->schemaVersion())
            r.schemaVersion = *v;
        return r;
    }

    std::optional<QMap<QString, qint64>> stats() override
    {
        // A quarter of the check timeout at most, so the next check, which
        // may be queued behind this on the same thread, still meets its deadline.
        auto counts = m_db->jobCounts(m_timeoutMs / 4);
        if (!counts)
            return std::nullopt;
        return *counts;
    }

private:
    DatabaseUrl m_url;
    int m_timeoutMs;
    std::unique_ptr<Database> m_db;
    bool m_migrated = false;
};

class RedisProbe final : public Probe
{
public:
    RedisProbe(const Config &config)
        : m_client(*config.redis, config.checkTimeoutMs)
    { }

    ProbeResult check() override
    {
        ProbeResult r;
        auto ms = m_client.ping();
        if (!ms) {
            r.error = ms.error();
            return r;
        }
        r.ok = true;
        r.ms = *ms;
        r.serverVersion = m_client.serverVersion();
        if (auto depth = m_client.llen(kJobQueueKey))
            r.queueDepth = *depth;
        return r;
    }

private:
    RedisClient m_client;
};

} // namespace

HealthMonitor::HealthMonitor(const Config &config, QObject *parent)
    : QObject(parent)
    , m_config(config)
{
    m_deps[0].name = config.database.checkName();
    m_deps[1].name = QStringLiteral("redis");
    m_deps[1].enabled = config.redis.has_value();
    m_timer.setInterval(config.checkIntervalMs);
    connect(&m_timer, &QTimer::timeout, this, &HealthMonitor::tick);
    rebuild();
}

HealthMonitor::~HealthMonitor()
{
    stop();
}

void HealthMonitor::start()
{
    for (int i = 0; i < 2; ++i) {
        if (!m_deps[i].enabled)
            continue;
        m_threads[i] = new QThread;
        m_threads[i]->setObjectName(QStringLiteral("probe-") + m_deps[i].name);
        if (i == 0)
            m_probes[i] = new DatabaseProbe(m_config);
        else
            m_probes[i] = new RedisProbe(m_config);
        m_probes[i]->moveToThread(m_threads[i]);
        connect(m_threads[i], &QThread::finished, m_probes[i], &QObject::deleteLater);
        m_threads[i]->start();
    }
    tick();
    m_timer.start();
}

void HealthMonitor::stop()
{
    m_timer.stop();
    for (int i = 0; i < 2; ++i) {
        if (!m_threads[i])
            continue;
        m_threads[i]->quit();
        if (m_threads[i]->wait(m_config.checkTimeoutMs + 2000)) {
            delete m_threads[i];
        } else {
            // Destroying a running QThread aborts the process; a probe stuck in
            // a driver call is abandoned instead and ends with the process.
            Log::warning("deckhand.health",
                         QStringLiteral("probe still busy at shutdown; abandoning it"),
                         { { QStringLiteral("dependency"), m_deps[i].name } });
        }
        m_threads[i] = nullptr;
        m_probes[i] = nullptr;
    }
}

void HealthMonitor::setDraining()
{
    m_draining = true;
    rebuild();
}

void HealthMonitor::tick()
{
    for (int i = 0; i < 2; ++i) {
        if (m_deps[i].enabled && !m_deps[i].busy)
            dispatch(i);
    }
}

void HealthMonitor::dispatch(int index)
{
    Dependency &dep = m_deps[index];
    Probe *probe = m_probes[index];
    if (!probe)
        return;
    dep.busy = true;
    const quint64 sequence = ++dep.sequence;
    QPointer<HealthMonitor> self(this);
    QMetaObject::invokeMethod(
        probe,
        [probe, self, index, sequence] {
            ProbeResult result = probe->check();
            result.time = QDateTime::currentDateTimeUtc();
            QMetaObject::invokeMethod(
                self.data(),
                [self, index, sequence, result] {
                    if (self)
                        self->onResult(index, sequence, result);
                },
                Qt::QueuedConnection);
            if (!result.ok)
                return;
            if (auto counts = probe->stats()) {
                QMetaObject::invokeMethod(
                    self.data(),
                    [self, counts] {
                        if (self)
                            self->onStats(*counts);
                    },
                    Qt::QueuedConnection);
            }
        },
        Qt::QueuedConnection);
    // The first database check may also run migrations; give it more room.
    const int deadline = m_config.checkTimeoutMs + (dep.known ? 0 : 10000);
    QTimer::singleShot(deadline, this, [this, index, sequence] { onDeadline(index, sequence); });
}

void HealthMonitor::onResult(int index, quint64 sequence, const ProbeResult &result)
{
    Dependency &dep = m_deps[index];
    dep.busy = false;
    // A check that already missed its deadline stays failed; its late answer
    // (slow but successful, perhaps) is dropped rather than flip readiness back.
    if (sequence != dep.sequence || sequence == dep.timedOut)
        return;
    const bool wasOk = dep.known && dep.last.ok;
    const bool wasKnown = dep.known;
    dep.known = true;
    dep.last = result;
    if (!wasKnown || wasOk != result.ok) {
        if (result.ok)
            Log::info("deckhand.health", QStringLiteral("dependency up"),
                      { { QStringLiteral("dependency"), dep.name },
                        { QStringLiteral("response_ms"), result.ms },
                        { QStringLiteral("server_version"), result.serverVersion } });
        else
            Log::warning("deckhand.health", QStringLiteral("dependency down"),
                         { { QStringLiteral("dependency"), dep.name },
                           { QStringLiteral("error"), result.error } });
    }
    rebuild();
}

void HealthMonitor::onStats(const QMap<QString, qint64> &counts)
{
    m_jobCounts = counts;
    rebuild();
}

void HealthMonitor::onDeadline(int index, quint64 sequence)
{
    Dependency &dep = m_deps[index];
    if (!dep.busy || sequence != dep.sequence)
        return;
    dep.timedOut = sequence;
    // The probe is still inside its call: report it failed now; the late answer
    // is dropped, and no new check starts until the stuck one returns.
    ProbeResult r;
    r.error = QStringLiteral("no answer within %1 ms").arg(m_config.checkTimeoutMs);
    r.time = QDateTime::currentDateTimeUtc();
    const bool wasOk = dep.known && dep.last.ok;
    dep.known = true;
    dep.last = r;
    if (wasOk)
        Log::warning(
            "deckhand.health", QStringLiteral("dependency down"),
            { { QStringLiteral("dependency"), dep.name }, { QStringLiteral("error"), r.error } });
    rebuild();
}

Report HealthMonitor::report() const
{
    Report report;
    report.version = QString::fromLatin1(build::kVersion);
    report.releaseId =
        m_config.imageTag.isEmpty() ? QString::fromLatin1(build::kImageTag) : m_config.imageTag;
    report.serviceId = QStringLiteral("deckhand");
    report.description = QStringLiteral("deckhand API readiness");

    for (const Dependency &dep : m_deps) {
        Check c;
        c.name = dep.name + QStringLiteral(":responseTime");
        c.componentType = QStringLiteral("datastore");
        c.observedUnit = QStringLiteral("ms");
        if (!dep.enabled) {
            c.status = Status::Warn;
            c.output = QStringLiteral("REDIS_URL is not set: the job queue is off");
            c.observedUnit.clear();
        } else if (!dep.known) {
            c.status = Status::Fail;
            c.output = QStringLiteral("first check still running");
        } else {
            c.time = dep.last.time;
            c.status = dep.last.ok ? Status::Pass : Status::Fail;
            if (dep.last.ok)
                c.observedValue = dep.last.ms;
            c.output = dep.last.error;
        }
        report.checks.append(c);
    }

    const Dependency &db = m_deps[0];
    if (db.known && db.last.ok && db.last.schemaVersion) {
        Check c;
        c.name = QStringLiteral("schema:version");
        c.componentType = QStringLiteral("component");
        c.observedValue = *db.last.schemaVersion;
        c.time = db.last.time;
        const int expected = Database::expectedSchemaVersion();
        if (*db.last.schemaVersion < expected) {
            c.status = Status::Fail;
            c.output = QStringLiteral(
                           "database schema %1 is older than this build's %2: run deckhand migrate")
                           .arg(*db.last.schemaVersion)
                           .arg(expected);
        } else if (*db.last.schemaVersion > expected) {
            c.status = Status::Warn;
            c.output =
                QStringLiteral("database schema %1 is newer than this build's %2 (rolled back?)")
                    .arg(*db.last.schemaVersion)
                    .arg(expected);
        }
        report.checks.append(c);
    }

    report.status = Report::aggregate(report.checks);
    if (m_draining) {
        report.status = Status::Fail;
        report.output = QStringLiteral("shutting down");
    }
    return report;
}

void HealthMonitor::rebuild()
{
    const Report r = report();
    auto next = std::make_shared<HealthSnapshot>();
    next->database = m_deps[0];
    next->redis = m_deps[1];
    next->draining = m_draining;
    next->jobCounts = m_jobCounts;
    next->readinessStatus = r.httpStatus();
    next->readinessBody = QJsonDocument(r.toJson()).toJson(QJsonDocument::Compact);
    {
        const std::lock_guard lock(m_snapshotMutex);
        m_snapshot = std::move(next);
    }
    Q_EMIT changed();
}

std::shared_ptr<const HealthSnapshot> HealthMonitor::snapshot() const
{
    const std::lock_guard lock(m_snapshotMutex);
    return m_snapshot;
}

} // namespace deckhand
