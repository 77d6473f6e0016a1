#pragma once

#include <QByteArray>
#include <QHash>
#include <QString>
#include <array>

namespace deckhand {

class HealthMonitor;

// Prometheus text exposition (format 0.0.4). Used from the HTTP thread only.
class Metrics final
{
public:
    void observe(const QByteArray &method, const QString &route, int status, double seconds);
    QByteArray render(const HealthMonitor &health, const QString &imageTag) const;

    static constexpr std::array<double, 12> kBuckets { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,   0.25,   0.5,   1.0,  2.5 };

private:
    struct Histogram
    {
        std::array<quint64, kBuckets.size()> counts {};
        quint64 count = 0;
        double sum = 0;
    };
    QHash<QByteArray, quint64> m_requests; // key: rendered label set
    QHash<QByteArray, Histogram> m_durations; // key: rendered label set without status
};

} // namespace deckhand
