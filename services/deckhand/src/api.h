#pragma once

#include "config.h"
#include "database.h"
#include "healthmonitor.h"
#include "httpserver.h"
#include "metrics.h"
#include "redisclient.h"

#include <memory>
#include <optional>

namespace deckhand {

class HealthMonitor;

// deckhand's HTTP endpoints, one instance per HTTP thread. Health endpoints answer from the
// monitor's cache; the job endpoints use this thread's own connections, and refuse at once (503)
// when the monitor already knows a dependency is down.
class Api final
{
public:
    Api(const Config &config, const HealthMonitor &health, Metrics &metrics);
    ~Api();
    void install(HttpServer &server);
    // Takes the monitor's latest findings. Called on this API's own thread
    // when they change, so requests read a local copy: no lock, no shared
    // reference count bouncing between cores.
    void refreshHealth();

private:
    Response livez() const;
    Response readyz() const;
    Response health() const;
    Response healthz() const;
    Response version() const;
    Response metricsText() const;
    std::optional<Response> refuseUnauthorized(const Request &request) const;
    Response createJob(const Request &request);
    Response getJob(const Request &request);
    QString imageTag() const;

    Config m_config;
    const HealthMonitor &m_health;
    Metrics &m_metrics;
    Metrics::Shard *m_shard;
    std::shared_ptr<const HealthSnapshot> m_snapshot;
    std::unique_ptr<Database> m_db;
    std::unique_ptr<RedisClient> m_redis;
};

} // namespace deckhand
