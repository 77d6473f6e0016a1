#pragma once

#include <QByteArray>
#include <QHash>
#include <QString>
#include <array>
#include <list>
#include <mutex>

namespace deckhand {

struct HealthSnapshot;

// Prometheus text exposition (format 0.0.4). Each HTTP thread records into its
// own shard (an uncontended lock); a scrape merges them.
class Metrics final
{
public:
    static constexpr std::array<double, 12> kBuckets { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,   0.25,   0.5,   1.0,  2.5 };

    struct Histogram
    {
        std::array<quint64, kBuckets.size()> counts {};
        quint64 count = 0;
        double sum = 0;
    };

    // Label sets as values (shared strings, no text built per request); the
    // text is made when scraped.
    struct RouteKey
    {
        QByteArray method;
        QString route;
        friend bool operator==(const RouteKey &, const RouteKey &) = default;
    };
    struct SeriesKey
    {
        RouteKey route;
        int status = 0;
        friend bool operator==(const SeriesKey &, const SeriesKey &) = default;
    };

    class Shard
    {
    public:
        void observe(const QByteArray &method, const QString &route, int status, double seconds);

    private:
        friend class Metrics;
        std::mutex m_mutex;
        QHash<SeriesKey, quint64> m_requests;
        QHash<RouteKey, Histogram> m_durations;
    };

    Shard *addShard();
    QByteArray render(const HealthSnapshot &health, const QString &imageTag) const;

private:
    mutable std::mutex m_shardsMutex;
    mutable std::list<Shard> m_shards; // stable addresses
};

inline size_t qHash(const Metrics::RouteKey &k, size_t seed = 0)
{
    return qHashMulti(seed, k.method, k.route);
}
inline size_t qHash(const Metrics::SeriesKey &k, size_t seed = 0)
{
    return qHashMulti(seed, k.route, k.status);
}

} // namespace deckhand
