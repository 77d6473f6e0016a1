#pragma once

#include "env/environment.h"
#include "health/healthreport.h"
#include "monitor/httpprobe.h"
#include "monitor/ringbuffer.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QHash>
#include <QNetworkAccessManager>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <queue>
#include <vector>

class QNetworkReply;

// Polls HTTP health endpoints: one QNetworkAccessManager (for https) and one
// keep-alive probe pool (for plain http), one timer for the whole schedule
// (not one per endpoint), per-endpoint interval and timeout,
// application/health+json or plain 2xx/5xx, bounded latency history, status
// transitions with timestamps, and backoff while a target is down.
namespace pilothouse {

enum class EndpointStatus { Unknown, Pass, Warn, Fail };
QString toString(EndpointStatus status);

struct LatencySample
{
    qint64 atMsecsSinceEpoch = 0;
    float latencyMs = 0; // < 0: no answer
    EndpointStatus status = EndpointStatus::Unknown;
};

struct StatusTransition
{
    QDateTime at;
    EndpointStatus from = EndpointStatus::Unknown;
    EndpointStatus to = EndpointStatus::Unknown;
    QString detail;
};

struct EndpointState
{
    int id = -1;
    QString service;
    HealthEndpoint endpoint;
    EndpointStatus status = EndpointStatus::Unknown;
    int httpStatus = 0; // 0: no HTTP answer
    double lastLatencyMs = -1;
    QDateTime lastChecked;
    QDateTime lastTransition;
    QString detail; // why it is not passing, for a person
    QString version; // from application/health+json, when given
    QList<health::Check> checks; // the last answer's checks
    QList<health::Check> lastFailedChecks; // the checks of the last non-passing answer
    int consecutiveFailures = 0;
    RingBuffer<LatencySample> history { 120 };
    RingBuffer<StatusTransition> transitions { 32 };
};

class HealthMonitor final : public QObject
{
    Q_OBJECT
public:
    explicit HealthMonitor(QObject *parent = nullptr);
    ~HealthMonitor() override;

    int addEndpoint(const QString &service, const HealthEndpoint &endpoint);
    void clear();
    void start();
    void stop();
    bool isRunning() const { return m_running; }
    // Checks every endpoint now and forgets the backoff (after a start or restart).
    void checkNow();

    QList<int> ids() const;
    QList<int> idsOf(const QString &service) const; // in the order they were added
    const EndpointState *endpoint(int id) const;
    int inFlight() const { return int(m_inFlight.size()); }
    // The worst status of a service's endpoints (Unknown when it has none).
    EndpointStatus serviceStatus(const QString &service) const;
    // The delay before the next check of an endpoint that failed n times in a row.
    static int backoffDelayMs(int intervalMs, int consecutiveFailures);

    static constexpr qsizetype kMaxBodyBytes = 256 * 1024;

signals:
    void endpointsChanged(); // added or cleared
    void endpointChecked(int id);
    void statusChanged(int id, pilothouse::EndpointStatus from, pilothouse::EndpointStatus to);

private:
    struct Due
    {
        qint64 atMs;
        int id;
        quint64 generation;
        bool operator>(const Due &o) const { return atMs > o.atMs; }
    };
    struct Flight
    {
        QNetworkReply *reply = nullptr; // https: through the QNetworkAccessManager
        quint64 ticket = 0; // http: through the probe
        qint64 deadlineMs = 0;
        QElapsedTimer clock;
    };

    void schedule(int id, qint64 atMs);
    void armTimer();
    void runDue();
    void send(int id);
    void onFinished(int id, QNetworkReply *reply);
    void onProbed(int id, quint64 ticket, const ProbeResult &result);
    // An answer (http > 0) or why none came (failure), whichever transport.
    void interpret(int id, double latencyMs, int http, const QByteArray &type,
                   const QByteArray &body, const QString &failure);
    void record(EndpointState &e, EndpointStatus status, int httpStatus, double latencyMs,
                const QString &detail);
    void sweepDeadlines();
    qint64 nowMs() const { return m_clock.elapsed(); }

    QNetworkAccessManager m_network; // https (TLS) endpoints
    HttpProbe m_probe; // plain http endpoints: the many local ones, cheaply
    QHash<int, EndpointState> m_endpoints;
    QHash<QString, QList<int>> m_byService;
    QHash<int, Flight> m_inFlight;
    QHash<int, quint64> m_generations; // the schedule entry that counts, per endpoint
    std::priority_queue<Due, std::vector<Due>, std::greater<Due>> m_queue;
    QTimer m_timer;
    QTimer m_deadlineSweep;
    QElapsedTimer m_clock;
    int m_nextId = 1;
    quint64 m_generation = 0;
    bool m_running = false;
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::EndpointStatus)
