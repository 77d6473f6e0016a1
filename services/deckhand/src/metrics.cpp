#include "metrics.h"

#include "buildinfo.h"
#include "healthmonitor.h"

#include <QFile>
#include <QtGlobal>
#include <unistd.h>

namespace deckhand {

namespace {

QByteArray escapeLabel(const QString &value)
{
    QByteArray out = value.toUtf8();
    out.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    return out;
}

QByteArray number(double v)
{
    return QByteArray::number(v, 'g', 12);
}

qint64 residentBytes()
{
    QFile statm(QStringLiteral("/proc/self/statm"));
    if (!statm.open(QIODevice::ReadOnly))
        return 0;
    const QList<QByteArray> fields = statm.readAll().split(' ');
    return fields.size() > 1 ? fields[1].toLongLong() * sysconf(_SC_PAGESIZE) : 0;
}

} // namespace

Metrics::Shard *Metrics::addShard()
{
    const std::lock_guard lock(m_shardsMutex);
    return &m_shards.emplace_back();
}

void Metrics::Shard::observe(const QByteArray &method, const QString &route, int status,
                             double seconds)
{
    const std::lock_guard lock(m_mutex);
    const RouteKey key { method, route };
    ++m_requests[SeriesKey { key, status }];
    Histogram &h = m_durations[key];
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        if (seconds <= kBuckets[i])
            ++h.counts[i];
    }
    ++h.count;
    h.sum += seconds;
}

QByteArray Metrics::render(const HealthSnapshot &health, const QString &imageTag) const
{
    QHash<SeriesKey, quint64> series;
    QHash<RouteKey, Histogram> routes;
    {
        const std::lock_guard shardsLock(m_shardsMutex);
        for (Shard &shard : m_shards) {
            const std::lock_guard lock(shard.m_mutex);
            for (auto it = shard.m_requests.cbegin(); it != shard.m_requests.cend(); ++it)
                series[it.key()] += it.value();
            for (auto it = shard.m_durations.cbegin(); it != shard.m_durations.cend(); ++it) {
                Histogram &h = routes[it.key()];
                for (size_t i = 0; i < kBuckets.size(); ++i)
                    h.counts[i] += it.value().counts[i];
                h.count += it.value().count;
                h.sum += it.value().sum;
            }
        }
    }
    const auto labels = [](const RouteKey &k) -> QByteArray {
        return "method=\"" + k.method + "\",route=\"" + escapeLabel(k.route) + '"';
    };
    QHash<QByteArray, quint64> requests;
    for (auto it = series.cbegin(); it != series.cend(); ++it)
        requests[labels(it.key().route) + ",status=\"" + QByteArray::number(it.key().status) +
                 '"'] += it.value();
    QHash<QByteArray, Histogram> durations;
    for (auto it = routes.cbegin(); it != routes.cend(); ++it)
        durations.insert(labels(it.key()), it.value());
    QByteArray out;
    out.reserve(4096);
    out += "# HELP http_requests_total HTTP requests answered, by method, route and status.\n"
           "# TYPE http_requests_total counter\n";
    for (auto it = requests.cbegin(); it != requests.cend(); ++it)
        out += "http_requests_total{" + it.key() + "} " + QByteArray::number(it.value()) + '\n';

    out += "# HELP http_request_duration_seconds Time spent handling a request.\n"
           "# TYPE http_request_duration_seconds histogram\n";
    for (auto it = durations.cbegin(); it != durations.cend(); ++it) {
        const Histogram &h = it.value();
        for (size_t i = 0; i < kBuckets.size(); ++i)
            out += "http_request_duration_seconds_bucket{" + it.key() + ",le=\"" +
                number(kBuckets[i]) + "\"} " + QByteArray::number(h.counts[i]) + '\n';
        out += "http_request_duration_seconds_bucket{" + it.key() + ",le=\"+Inf\"} " +
            QByteArray::number(h.count) + '\n';
        out += "http_request_duration_seconds_sum{" + it.key() + "} " + number(h.sum) + '\n';
        out += "http_request_duration_seconds_count{" + it.key() + "} " +
            QByteArray::number(h.count) + '\n';
    }

    out += "# HELP deckhand_build_info Build of this deckhand.\n# TYPE deckhand_build_info gauge\n";
    out += "deckhand_build_info{version=\"" + escapeLabel(QString::fromLatin1(build::kVersion)) +
        "\",git_sha=\"" + escapeLabel(QString::fromLatin1(build::kGitSha)) + "\",image_tag=\"" +
        escapeLabel(imageTag) + "\",qt_version=\"" + qVersion() + "\"} 1\n";

    out += "# HELP deckhand_dependency_up Whether the last check of a dependency passed.\n"
           "# TYPE deckhand_dependency_up gauge\n";
    QByteArray latency =
        "# HELP deckhand_dependency_latency_seconds Round trip of the last passing check.\n"
        "# TYPE deckhand_dependency_latency_seconds gauge\n";
    for (const DependencyState *dep : { &health.database, &health.redis }) {
        if (!dep->enabled)
            continue;
        const QByteArray label = "{dependency=\"" + escapeLabel(dep->name) + "\"}";
        out += "deckhand_dependency_up" + label + ' ' + (dep->known && dep->last.ok ? "1" : "0") +
            '\n';
        if (dep->known && dep->last.ok)
            latency += "deckhand_dependency_latency_seconds" + label + ' ' +
                number(dep->last.ms / 1000.0) + '\n';
    }
    out += latency;

    const auto &redis = health.redis;
    if (redis.enabled && redis.known && redis.last.queueDepth) {
        out += "# HELP deckhand_queue_depth Jobs waiting in the Redis queue.\n# TYPE "
               "deckhand_queue_depth gauge\n";
        out += "deckhand_queue_depth " + QByteArray::number(*redis.last.queueDepth) + '\n';
    }
    if (health.jobCounts) {
        out += "# HELP deckhand_jobs Jobs stored, by status.\n# TYPE deckhand_jobs gauge\n";
        qint64 processed = 0;
        for (const char *status : { "queued", "running", "succeeded", "failed" }) {
            const qint64 n = health.jobCounts->value(QString::fromLatin1(status));
            out += "deckhand_jobs{status=\"" + QByteArray(status) + "\"} " + QByteArray::number(n) +
                '\n';
            if (qstrcmp(status, "succeeded") == 0 || qstrcmp(status, "failed") == 0)
                processed += n;
        }
        out += "# HELP deckhand_jobs_processed_total Jobs the workers have finished, succeeded or "
               "failed.\n"
               "# TYPE deckhand_jobs_processed_total counter\n";
        out += "deckhand_jobs_processed_total " + QByteArray::number(processed) + '\n';
    }

    out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
           "# TYPE process_resident_memory_bytes gauge\n";
    out += "process_resident_memory_bytes " + QByteArray::number(residentBytes()) + '\n';
    return out;
}

} // namespace deckhand
