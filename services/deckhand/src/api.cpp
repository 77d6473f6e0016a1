#include "api.h"

#include "buildinfo.h"
#include "healthmonitor.h"
#include "log.h"

#include <QJsonArray>
#include <QUuid>

namespace deckhand {

namespace {

// Shares the literal's bytes: no copy per answer.
QByteArray healthMediaType()
{
    return QByteArray::fromRawData(pilothouse::health::kMediaType,
                                   sizeof(pilothouse::health::kMediaType) - 1);
}

} // namespace

Api::Api(const Config &config, const HealthMonitor &health, Metrics &metrics)
    : m_config(config)
    , m_health(health)
    , m_metrics(metrics)
    , m_shard(metrics.addShard())
    , m_snapshot(health.snapshot())
    , m_db(
          std::make_unique<Database>(config.database, config.checkTimeoutMs, QStringLiteral("api")))
{
    if (config.redis)
        m_redis = std::make_unique<RedisClient>(*config.redis, config.checkTimeoutMs);
}

Api::~Api() = default;

void Api::refreshHealth()
{
    m_snapshot = m_health.snapshot();
}

QString Api::imageTag() const
{
    return m_config.imageTag.isEmpty() ? QString::fromLatin1(build::kImageTag) : m_config.imageTag;
}

void Api::install(HttpServer &server)
{
    server.route("GET", QStringLiteral("/livez"), [this](const Request &) { return livez(); });
    server.route("GET", QStringLiteral("/readyz"), [this](const Request &) { return readyz(); });
    server.route("GET", QStringLiteral("/health"), [this](const Request &) { return health(); });
    server.route("GET", QStringLiteral("/healthz"), [this](const Request &) { return healthz(); });
    server.route("GET", QStringLiteral("/version"), [this](const Request &) { return version(); });
    server.route("GET", QStringLiteral("/metrics"),
                 [this](const Request &) { return metricsText(); });
    server.route("POST", QStringLiteral("/v1/jobs"),
                 [this](const Request &r) { return createJob(r); });
    server.route("GET", QStringLiteral("/v1/jobs/{id}"),
                 [this](const Request &r) { return getJob(r); });

    server.setObserver(
        [this](const Request &request, const QString &route, int status, double seconds) {
            m_shard->observe(request.method, route, status, seconds);
            // Probes and scrapes would drown the log at info; they stay at debug.
            const bool probe = route == QLatin1String("/livez") ||
                route == QLatin1String("/readyz") || route == QLatin1String("/metrics") ||
                route == QLatin1String("/health") || route == QLatin1String("/healthz");
            // A probe answering 503 is the expected signal, not a server fault;
            // a probe refused (400, 405, 501...) is someone to hear about.
            const LogLevel level = probe && (status < 400 || status == 503)
                ? LogLevel::Debug
                : (status >= 500 ? LogLevel::Warning : LogLevel::Info);
            if (!Log::enabled(level))
                return;
            Log::write(level, "deckhand.http", QStringLiteral("request"),
                       { { QStringLiteral("request_id"), request.requestId },
                         { QStringLiteral("method"), QString::fromLatin1(request.method) },
                         { QStringLiteral("path"), request.path },
                         { QStringLiteral("route"), route },
                         { QStringLiteral("status"), status },
                         { QStringLiteral("duration_ms"), qRound(seconds * 1e6) / 1000.0 } });
        });
}

Response Api::livez() const
{
    // Alive means this event loop answers; no dependency is touched.
    static const QByteArray body = R"({"status":"pass"})";
    Response r;
    r.contentType = healthMediaType();
    r.body = body;
    return r;
}

Response Api::readyz() const
{
    Response r;
    const auto &health = m_snapshot;
    r.status = health->readinessStatus;
    r.contentType = healthMediaType();
    r.body = health->readinessBody;
    r.headers.emplaceBack("Cache-Control", "no-store");
    return r;
}

Response Api::health() const
{
    static const QByteArray body = R"({"status":"ok"})";
    Response r;
    r.body = body;
    return r;
}

Response Api::healthz() const
{
    const auto &health = m_snapshot;
    auto state = [](const DependencyState &dep) {
        if (!dep.enabled)
            return QStringLiteral("disabled");
        return dep.known && dep.last.ok ? QStringLiteral("ok") : QStringLiteral("error");
    };
    const QString db = state(health->database);
    const QString redis = state(health->redis);
    const bool ok =
        db == QLatin1String("ok") && redis != QLatin1String("error") && !health->draining;
    return Response::json(
        ok ? 200 : 503,
        { { QStringLiteral("status"), ok ? QStringLiteral("ok") : QStringLiteral("error") },
          { QStringLiteral("db"), db },
          { QStringLiteral("redis"), redis } });
}

Response Api::version() const
{
    return Response::json(
        200,
        { { QStringLiteral("service"), QStringLiteral("deckhand") },
          { QStringLiteral("version"), QString::fromLatin1(build::kVersion) },
          { QStringLiteral("git_sha"), QString::fromLatin1(build::kGitSha) },
          { QStringLiteral("build_time"), QString::fromLatin1(build::kBuildTime) },
          { QStringLiteral("image_tag"), imageTag() },
          { QStringLiteral("schema_version"), Database::expectedSchemaVersion() },
          { QStringLiteral("qt_version"), QString::fromLatin1(qVersion()) } });
}

Response Api::metricsText() const
{
    Response r;
    r.contentType = "text/plain; version=0.0.4; charset=utf-8";
    r.body = m_metrics.render(*m_snapshot, imageTag());
    return r;
}

// JOBS_API_TOKEN: "Authorization: Bearer <token>", compared in constant time.
std::optional<Response> Api::refuseUnauthorized(const Request &request) const
{
    if (m_config.jobsToken.isEmpty())
        return std::nullopt;
    const QByteArray prefix = QByteArrayLiteral("Bearer ");
    const QByteArray given = request.authorization.left(prefix.size()).toLower() == prefix.toLower()
        ? request.authorization.mid(prefix.size()).trimmed()
        : QByteArray();
    unsigned char diff = given.size() == m_config.jobsToken.size() ? 0 : 1;
    for (qsizetype i = 0; i < m_config.jobsToken.size(); ++i)
        diff |= static_cast<unsigned char>(m_config.jobsToken.at(i) ^
                                           (i < given.size() ? given.at(i) : 0));
    if (diff == 0)
        return std::nullopt;
    Response r = Response::error(
        401,
        given.isEmpty()
            ? QStringLiteral("the jobs API needs \"Authorization: Bearer <token>\" (the "
                             "JOBS_API_TOKEN deckhand was started with)")
            : QStringLiteral("that token is not the jobs API token"));
    r.headers.emplaceBack("WWW-Authenticate", "Bearer realm=\"deckhand jobs\"");
    return r;
}

Response Api::createJob(const Request &request)
{
    if (auto refused = refuseUnauthorized(request))
        return *refused;
    if (!request.contentType.isEmpty() && !request.contentType.startsWith("application/json"))
        return Response::error(415, QStringLiteral("send the job as application/json"));
    auto parsed = JobRequest::fromJson(request.body);
    if (auto *problems = std::get_if<QStringList>(&parsed))
        return Response::error(400, problems->join(QStringLiteral("; ")),
                               QJsonArray::fromStringList(*problems));
    const JobRequest &jobRequest = std::get<JobRequest>(parsed);

    if (!m_redis)
        return Response::error(
            503, QStringLiteral("the job queue is off: set REDIS_URL to enable jobs"));
    const auto &health = m_snapshot;
    if (health->draining)
        return Response::error(503,
                               QStringLiteral("shutting down; retry against another instance"));
    if (health->database.knownDown())
        return Response::error(
            503, QStringLiteral("database unavailable: %1").arg(health->database.last.error));
    if (health->redis.knownDown())
        return Response::error(
            503, QStringLiteral("job queue unavailable: %1").arg(health->redis.last.error));

    // A bounded queue: a client that floods it gets 503, not the database.
    if (auto waiting = m_redis->llen(kJobQueueKey); !waiting) {
        return Response::error(503,
                               QStringLiteral("job queue unavailable: %1").arg(waiting.error()));
    } else if (*waiting >= m_config.maxQueuedJobs) {
        Response r = Response::error(
            503,
            QStringLiteral("the job queue is full (%1 jobs waiting, JOBS_MAX_QUEUED=%2); "
                           "retry later")
                .arg(*waiting)
                .arg(m_config.maxQueuedJobs));
        r.headers.emplaceBack("Retry-After", "5");
        return r;
    }

    Job job;
    job.id = QUuid::createUuid().toString(QUuid::WithoutBraces);
    job.type = jobRequest.type;
    job.payload = jobRequest.payload;
    job.status = QStringLiteral("queued");
    job.createdAt = QDateTime::currentDateTimeUtc();
    if (auto stored = m_db->insertJob(job); !stored)
        return Response::error(503, QStringLiteral("database unavailable: %1").arg(stored.error()));
    if (auto pushed = m_redis->lpush(kJobQueueKey, job.id.toLatin1()); !pushed) {
        // Not queued means not accepted: take the row back so nothing half-done stays.
        if (auto removed = m_db->deleteJob(job.id); !removed)
            // Nothing will run it and the client was told 503: say which row to clean up.
            Log::error("deckhand.jobs", QStringLiteral("job row left queued without a queue entry"),
                       { { QStringLiteral("job_id"), job.id },
                         { QStringLiteral("error"), removed.error() },
                         { QStringLiteral("hint"),
                           QStringLiteral(
                               "delete it, or push its id on the Redis list deckhand:jobs") } });
        return Response::error(503,
                               QStringLiteral("job queue unavailable: %1").arg(pushed.error()));
    }
    Log::info("deckhand.jobs", QStringLiteral("job queued"),
              { { QStringLiteral("request_id"), request.requestId },
                { QStringLiteral("job_id"), job.id },
                { QStringLiteral("job_type"), job.type } });
    Response r = Response::json(202, job.toJson());
    r.headers.emplaceBack("Location", "/v1/jobs/" + job.id.toLatin1());
    return r;
}

Response Api::getJob(const Request &request)
{
    if (auto refused = refuseUnauthorized(request))
        return *refused;
    const QUuid id = QUuid::fromString(request.parameter);
    if (id.isNull())
        return Response::error(
            404, QStringLiteral("no job with id \"%1\" (ids are UUIDs)").arg(request.parameter));
    const auto &health = m_snapshot;
    if (health->database.knownDown())
        return Response::error(
            503, QStringLiteral("database unavailable: %1").arg(health->database.last.error));
    auto job = m_db->job(id.toString(QUuid::WithoutBraces));
    if (!job)
        return Response::error(503, QStringLiteral("database unavailable: %1").arg(job.error()));
    if (!job->has_value())
        return Response::error(404, QStringLiteral("no job with id %1").arg(request.parameter));
    return Response::json(200, (*job)->toJson());
}

} // namespace deckhand
