#include "monitor/healthmonitor.h"

#include <QJsonDocument>
#include <QNetworkReply>
#include <QNetworkRequest>

namespace pilothouse {

QString toString(EndpointStatus status)
{
    switch (status) {
    case EndpointStatus::Unknown:
        return QStringLiteral("unknown");
    case EndpointStatus::Pass:
        return QStringLiteral("pass");
    case EndpointStatus::Warn:
        return QStringLiteral("warn");
    case EndpointStatus::Fail:
        return QStringLiteral("fail");
    }
    return {};
}

HealthMonitor::HealthMonitor(QObject *parent)
    : QObject(parent)
{
    qRegisterMetaType<pilothouse::EndpointStatus>();
    m_clock.start();
    m_timer.setSingleShot(true);
    m_timer.setTimerType(Qt::PreciseTimer);
    connect(&m_timer, &QTimer::timeout, this, &HealthMonitor::runDue);
    m_deadlineSweep.setInterval(100);
    connect(&m_deadlineSweep, &QTimer::timeout, this, &HealthMonitor::sweepDeadlines);
    // Health answers must be fresh: no cache, no cookies.
    m_network.setCookieJar(nullptr);
    m_network.setRedirectPolicy(QNetworkRequest::NoLessSafeRedirectPolicy);
}

HealthMonitor::~HealthMonitor()
{
    stop();
}

int HealthMonitor::addEndpoint(const QString &service, const HealthEndpoint &endpoint)
{
    const int id = m_nextId++;
    EndpointState e;
    e.id = id;
    e.service = service;
    e.endpoint = endpoint;
    m_endpoints.insert(id, e);
    m_byService[service].append(id);
    if (m_running)
        schedule(id, nowMs());
    emit endpointsChanged();
    return id;
}

void HealthMonitor::clear()
{
    stop();
    m_endpoints.clear();
    m_byService.clear();
    m_generations.clear();
    emit endpointsChanged();
}

void HealthMonitor::start()
{
    if (m_running)
        return;
    m_running = true;
    m_deadlineSweep.start();
    // Spread the first round over one interval so 1,000 endpoints do not all fire at once.
    const qsizetype n = m_endpoints.size();
    qsizetype i = 0;
    for (auto it = m_endpoints.cbegin(); it != m_endpoints.cend(); ++it, ++i)
        schedule(it.key(), nowMs() + (n > 1 ? it->endpoint.intervalMs * i / n : 0));
}

void HealthMonitor::stop()
{
    m_running = false;
    m_timer.stop();
    m_deadlineSweep.stop();
    m_queue = {};
    const auto flights = m_inFlight;
    m_inFlight.clear();
    m_probe.abortAll();
    for (const Flight &f : flights) {
        if (!f.reply)
            continue;
        f.reply->disconnect(this);
        f.reply->abort();
        f.reply->deleteLater();
    }
}

void HealthMonitor::checkNow()
{
    for (auto it = m_endpoints.begin(); it != m_endpoints.end(); ++it) {
        it->consecutiveFailures = 0;
        if (m_running && !m_inFlight.contains(it.key()))
            schedule(it.key(), nowMs());
    }
}

QList<int> HealthMonitor::idsOf(const QString &service) const
{
    return m_byService.value(service);
}

QList<int> HealthMonitor::ids() const
{
    QList<int> out = m_endpoints.keys();
    std::sort(out.begin(), out.end());
    return out;
}

const EndpointState *HealthMonitor::endpoint(int id) const
{
    const auto it = m_endpoints.constFind(id);
    return it == m_endpoints.cend() ? nullptr : &*it;
}

EndpointStatus HealthMonitor::serviceStatus(const QString &service) const
{
    EndpointStatus worst = EndpointStatus::Unknown;
    bool any = false;
    for (int id : m_byService.value(service)) {
        const EndpointState &e = m_endpoints[id];
        if (!any) {
            worst = e.status;
            any = true;
        } else if (e.status == EndpointStatus::Fail || worst == EndpointStatus::Fail) {
            worst = EndpointStatus::Fail;
        } else if (e.status == EndpointStatus::Unknown || worst == EndpointStatus::Unknown) {
            worst = EndpointStatus::Unknown;
        } else if (e.status == EndpointStatus::Warn || worst == EndpointStatus::Warn) {
            worst = EndpointStatus::Warn;
        }
    }
    return worst;
}

int HealthMonitor::backoffDelayMs(int intervalMs, int consecutiveFailures)
{
    if (consecutiveFailures <= 1)
        return intervalMs;
    const int factor = 1 << std::min(consecutiveFailures - 1, 3); // 2, 4, 8
    const qint64 capped = std::min<qint64>(qint64(intervalMs) * factor, 30000);
    return int(std::max<qint64>(capped, intervalMs));
}

void HealthMonitor::schedule(int id, qint64 atMs)
{
    const quint64 g = ++m_generation;
    m_generations[id] = g;
    m_queue.push({ atMs, id, g });
    armTimer();
}

void HealthMonitor::armTimer()
{
    if (!m_running || m_queue.empty())
        return;
    const qint64 wait = std::max<qint64>(0, m_queue.top().atMs - nowMs());
    if (!m_timer.isActive() || m_timer.remainingTime() > wait)
        m_timer.start(int(wait));
}

void HealthMonitor::runDue()
{
    const qint64 now = nowMs();
    // Bounded work per turn of the event loop keeps the loop responsive.
    int sent = 0;
    while (!m_queue.empty() && m_queue.top().atMs <= now && sent < 200) {
        const Due d = m_queue.top();
        m_queue.pop();
        if (m_generations.value(d.id) != d.generation || !m_endpoints.contains(d.id))
            continue; // superseded
        if (m_inFlight.contains(d.id))
            continue; // the answer reschedules it
        send(d.id);
        ++sent;
    }
    if (!m_queue.empty() && m_queue.top().atMs <= now)
        m_timer.start(0);
    else
        armTimer();
}

void HealthMonitor::send(int id)
{
    const EndpointState &e = m_endpoints[id];
    static const QByteArray accept = "application/health+json, application/json;q=0.9, */*;q=0.1";
    if (e.endpoint.url.scheme() == QLatin1String("http")) {
        Flight f;
        f.deadlineMs = nowMs() + e.endpoint.timeoutMs;
        f.clock.start();
        // The ticket is known only after get() returns; the answer always comes later.
        auto ticket = std::make_shared<quint64>(0);
        *ticket = m_probe.get(e.endpoint.url, accept, [this, id, ticket](const ProbeResult &r) {
            onProbed(id, *ticket, r);
        });
        f.ticket = *ticket;
        m_inFlight.insert(id, f);
        return;
    }
    QNetworkRequest request(e.endpoint.url);
    request.setRawHeader("Accept", accept);
    request.setRawHeader("User-Agent", "pilothouse-health");
    request.setAttribute(QNetworkRequest::CacheLoadControlAttribute,
                         QNetworkRequest::AlwaysNetwork);
    request.setTransferTimeout(e.endpoint.timeoutMs);
    QNetworkReply *reply = m_network.get(request);
    Flight f;
    f.reply = reply;
    f.deadlineMs = nowMs() + e.endpoint.timeoutMs;
    f.clock.start();
    m_inFlight.insert(id, f);
    connect(reply, &QNetworkReply::finished, this, [this, id, reply] { onFinished(id, reply); });
}

void HealthMonitor::sweepDeadlines()
{
    const qint64 now = nowMs();
    QList<QNetworkReply *> late;
    QList<std::pair<int, quint64>> lateProbes;
    for (auto it = m_inFlight.cbegin(); it != m_inFlight.cend(); ++it) {
        if (it->deadlineMs > now)
            continue;
        if (it->reply)
            late << it->reply;
        else
            lateProbes << std::pair { it.key(), it->ticket };
    }
    for (QNetworkReply *r : late)
        r->abort(); // finished() follows with OperationCanceledError
    for (const auto &[id, ticket] : lateProbes) {
        m_probe.abort(ticket); // its answer will not come
        ProbeResult timeout;
        timeout.failure = ProbeResult::Failure::Other;
        timeout.error =
            QStringLiteral("no answer within %1 ms").arg(m_endpoints.value(id).endpoint.timeoutMs);
        onProbed(id, ticket, timeout);
    }
}

void HealthMonitor::onProbed(int id, quint64 ticket, const ProbeResult &r)
{
    const auto flight = m_inFlight.constFind(id);
    if (flight == m_inFlight.cend() || flight->reply || flight->ticket != ticket)
        return;
    const double latencyMs = flight->clock.nsecsElapsed() / 1e6;
    m_inFlight.erase(flight);
    if (r.failure != ProbeResult::Failure::None) {
        interpret(id, latencyMs, 0, {}, {}, r.error);
        return;
    }
    QByteArray body = r.body;
    if (r.status >= 300 && r.status < 400 && !r.location.isEmpty() && body.isEmpty())
        body = "redirects to " + r.location; // health endpoints should answer, not redirect
    interpret(id, latencyMs, r.status, r.contentType, body, {});
}

void HealthMonitor::onFinished(int id, QNetworkReply *reply)
{
    reply->deleteLater();
    const auto flight = m_inFlight.constFind(id);
    if (flight == m_inFlight.cend() || flight->reply != reply)
        return;
    const double latencyMs = flight->clock.nsecsElapsed() / 1e6;
    m_inFlight.erase(flight);
    const auto known = m_endpoints.constFind(id);
    if (known == m_endpoints.cend())
        return;
    const EndpointState &e = *known;

    const QNetworkReply::NetworkError error = reply->error();
    // An aborted reply (deadline) may have headers but no readable body: a timeout.
    const bool aborted = error == QNetworkReply::OperationCanceledError || !reply->isOpen();
    const int http =
        aborted ? 0 : reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    if (http == 0) {
        QString why;
        switch (error) {
        case QNetworkReply::OperationCanceledError:
        case QNetworkReply::TimeoutError:
            why = QStringLiteral("no answer within %1 ms").arg(e.endpoint.timeoutMs);
            break;
        case QNetworkReply::ConnectionRefusedError:
            why = QStringLiteral("connection refused (is the service running?)");
            break;
        case QNetworkReply::HostNotFoundError:
            why = QStringLiteral("host %1 not found").arg(e.endpoint.url.host());
            break;
        default:
            why = reply->errorString();
        }
        interpret(id, latencyMs, 0, {}, {}, why);
        return;
    }
    interpret(id, latencyMs, http, reply->header(QNetworkRequest::ContentTypeHeader).toByteArray(),
              reply->read(kMaxBodyBytes), {});
}

void HealthMonitor::interpret(int id, double latencyMs, int http, const QByteArray &type,
                              const QByteArray &body, const QString &failure)
{
    auto it = m_endpoints.find(id);
    if (it == m_endpoints.end())
        return;
    EndpointState &e = *it;
    if (http == 0) {
        record(e, EndpointStatus::Fail, 0, -1, failure);
    } else {
        EndpointStatus status =
            http >= 200 && http < 300 ? EndpointStatus::Pass : EndpointStatus::Fail;
        QString detail;
        e.checks.clear();
        if (type.startsWith(health::kMediaType) ||
            (type.startsWith("application/json") && body.contains("\"status\""))) {
            QJsonParseError pe;
            const QJsonDocument doc = QJsonDocument::fromJson(body, &pe);
            QString why;
            const auto report = doc.isObject() ? health::Report::fromJson(doc.object(), &why)
                                               : std::optional<health::Report> {};
            if (report) {
                status = report->status == health::Status::Pass ? EndpointStatus::Pass
                    : report->status == health::Status::Warn    ? EndpointStatus::Warn
                                                                : EndpointStatus::Fail;
                if (http >= 500)
                    status = EndpointStatus::Fail;
                e.version = report->releaseId.isEmpty() ? report->version : report->releaseId;
                e.checks = report->checks;
                QStringList problems;
                for (const health::Check &c : report->checks) {
                    if (c.status != health::Status::Pass)
                        problems << QStringLiteral("%1 %2%3").arg(
                            c.name, health::toString(c.status),
                            c.output.isEmpty() ? QString() : QStringLiteral(": ") + c.output);
                }
                if (!report->output.isEmpty())
                    problems.prepend(report->output);
                detail = problems.join(QStringLiteral("; "));
            } else if (type.startsWith(health::kMediaType)) {
                detail = QStringLiteral("HTTP %1 with an invalid health document: %2")
                             .arg(http)
                             .arg(why.isEmpty() ? pe.errorString() : why);
                if (status == EndpointStatus::Pass)
                    status = EndpointStatus::Warn;
            }
        }
        if (status == EndpointStatus::Fail && detail.isEmpty()) {
            const QString snippet = QString::fromUtf8(body.left(200)).simplified();
            detail = QStringLiteral("HTTP %1%2")
                         .arg(http)
                         .arg(snippet.isEmpty() ? QString() : QStringLiteral(": ") + snippet);
        }
        if (status != EndpointStatus::Pass)
            e.lastFailedChecks = e.checks;
        record(e, status, http, latencyMs, detail);
    }
    // record() emitted signals: a slot may have changed the endpoints. Look again.
    const auto after = m_endpoints.constFind(id);
    if (m_running && after != m_endpoints.cend()) {
        const int delay = after->status == EndpointStatus::Fail
            ? backoffDelayMs(after->endpoint.intervalMs, after->consecutiveFailures)
            : after->endpoint.intervalMs;
        schedule(id, nowMs() + delay);
    }
}

void HealthMonitor::record(EndpointState &e, EndpointStatus status, int httpStatus,
                           double latencyMs, const QString &detail)
{
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const EndpointStatus before = e.status;
    e.status = status;
    e.httpStatus = httpStatus;
    e.lastLatencyMs = latencyMs;
    e.lastChecked = now;
    e.detail = detail;
    e.consecutiveFailures = status == EndpointStatus::Fail ? e.consecutiveFailures + 1 : 0;
    e.history.push({ now.toMSecsSinceEpoch(), float(latencyMs), status });
    if (before != status) {
        e.lastTransition = now;
        e.transitions.push({ now, before, status, detail });
    }
    const int id = e.id; // the slots may change the endpoints
    emit endpointChecked(id);
    if (before != status)
        emit statusChanged(id, before, status);
}

} // namespace pilothouse
