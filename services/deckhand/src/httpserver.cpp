#include "httpserver.h"

#include "log.h"

#include <QElapsedTimer>
#include <QHostAddress>
#include <QJsonDocument>
#include <QRandomGenerator>
#include <QTcpSocket>
#include <algorithm>
#include <array>
#include <chrono>
#include <sys/socket.h>

namespace deckhand {

QByteArray reasonPhrase(int status)
{
    switch (status) {
    case 200:
        return QByteArrayLiteral("OK");
    case 202:
        return QByteArrayLiteral("Accepted");
    case 400:
        return QByteArrayLiteral("Bad Request");
    case 401:
        return QByteArrayLiteral("Unauthorized");
    case 404:
        return QByteArrayLiteral("Not Found");
    case 405:
        return QByteArrayLiteral("Method Not Allowed");
    case 408:
        return QByteArrayLiteral("Request Timeout");
    case 411:
        return QByteArrayLiteral("Length Required");
    case 413:
        return QByteArrayLiteral("Content Too Large");
    case 415:
        return QByteArrayLiteral("Unsupported Media Type");
    case 417:
        return QByteArrayLiteral("Expectation Failed");
    case 431:
        return QByteArrayLiteral("Request Header Fields Too Large");
    case 500:
        return QByteArrayLiteral("Internal Server Error");
    case 503:
        return QByteArrayLiteral("Service Unavailable");
    case 501:
        return QByteArrayLiteral("Not Implemented");
    case 505:
        return QByteArrayLiteral("HTTP Version Not Supported");
    default:
        return QByteArrayLiteral("Error");
    }
}

Response Response::json(int status, const QJsonObject &object)
{
    Response r;
    r.status = status;
    r.body = QJsonDocument(object).toJson(QJsonDocument::Compact);
    return r;
}

Response Response::error(int status, const QString &message, const QJsonArray &details)
{
    QJsonObject o { { QStringLiteral("error"), QString::fromLatin1(reasonPhrase(status)) },
                    { QStringLiteral("message"), message } };
    if (!details.isEmpty())
        o.insert(QStringLiteral("details"), details);
    return json(status, o);
}

// ---------------------------------------------------------------------------

HttpConnection::HttpConnection(QTcpSocket *socket, HttpServer &server, const HttpLimits &limits)
    : QObject(socket)
    , m_socket(socket)
    , m_server(server)
    , m_limits(limits)
    , m_parserLimits { limits.maxHeaderBytes, limits.maxBodyBytes }
{
    // What the socket buffers unread is bounded too: past it the kernel
    // holds the rest, and TCP slows the client down.
    socket->setReadBufferSize(limits.readAheadBytes);
    connect(socket, &QTcpSocket::readyRead, this, &HttpConnection::pump);
    connect(socket, &QTcpSocket::bytesWritten, this, &HttpConnection::onBytesWritten);
    m_idleSinceMs = nowMs();
}

qint64 HttpConnection::nowMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool HttpConnection::requestBegun() const
{
    const QByteArrayView input = QByteArrayView(m_in).sliced(m_inPos);
    return http::leadingEmptyLines(input) < input.size();
}

bool HttpConnection::busy() const
{
    return m_closing || requestBegun() || m_socket->bytesToWrite() > 0 ||
        m_socket->bytesAvailable() > 0;
}

void HttpConnection::start()
{
    if (m_socket->bytesAvailable() > 0)
        schedulePump();
}

void HttpConnection::drain()
{
    m_draining = true;
    if (!busy())
        m_socket->disconnectFromHost();
    // Otherwise the request under way is answered with "Connection: close".
}

void HttpConnection::schedulePump()
{
    if (m_pumpQueued)
        return;
    m_pumpQueued = true;
    // Queued on this object: dropped with it if the connection goes first.
    QMetaObject::invokeMethod(
        this,
        [this] {
            m_pumpQueued = false;
            pump();
        },
        Qt::QueuedConnection);
}

void HttpConnection::discardInput()
{
    m_socket->skip(m_socket->bytesAvailable());
    m_in.clear();
    m_inPos = 0;
}

void HttpConnection::pump()
{
    if (m_closing) {
        discardInput();
        return;
    }
    int served = 0;
    for (;;) {
        // Backpressure: a client that does not take its answers gets no
        // more until it does; what it sends meanwhile waits in the kernel.
        if (m_socket->bytesToWrite() >= m_limits.unsentHighWater)
            return; // onBytesWritten() resumes
        // Take what the socket holds, up to the read-ahead, or up to the
        // whole of a request whose body is bigger.
        const qsizetype wanted = std::max(m_limits.readAheadBytes, m_frameSize) - pending();
        const qsizetype available = qsizetype(m_socket->bytesAvailable());
        if (wanted > 0 && available > 0) {
            if (m_inPos > 0) {
                m_in.remove(0, m_inPos);
                m_inPos = 0;
                m_resumeAt = 0;
            }
            const qsizetype take = std::min(wanted, available);
            const qsizetype old = m_in.size();
            m_in.resize(old + take);
            const qint64 got = m_socket->read(m_in.data() + old, take);
            m_in.resize(old + std::max<qint64>(got, 0));
        }
        if (pending() == 0)
            break;
        // Empty lines alone (a stray CRLF after a body) start no request
        // and no request deadline.
        if (m_requestStartMs < 0 && requestBegun())
            m_requestStartMs = nowMs();
        if (m_frameSize > pending()) {
            if (m_socket->bytesAvailable() > 0)
                continue;
            break; // the rest of the body is on its way
        }
        if (served == m_limits.requestsPerTurn) {
            // Fair to the other connections on this event loop: they are
            // served before this one's next request.
            schedulePump();
            return;
        }
        const QByteArrayView input = QByteArrayView(m_in).sliced(m_inPos);
        const http::ParseResult r = http::parseRequest(input, m_parserLimits, m_resumeAt);
        if (r.status == http::ParseResult::Status::Refused) {
            refuse(r.refusal, r.message, r.head);
            return;
        }
        if (r.status == http::ParseResult::Status::NeedMore) {
            if (r.headComplete) {
                m_frameSize = r.frameSize;
                // An HTTP/1.0 client would not know the interim answer.
                if (r.head.expectContinue && !m_continueSent && r.head.version == "HTTP/1.1") {
                    m_continueSent = true;
                    send(QByteArrayLiteral("HTTP/1.1 100 Continue\r\n\r\n"));
                }
            } else {
                m_resumeAt = r.resumeAt;
            }
            // More of it may be in the socket's buffer already, which
            // announces nothing again: take it now (the read above stops at
            // the frame, or at the read-ahead for a head, where the parser
            // has refused an oversized head long before).
            const qsizetype limit = r.headComplete ? m_frameSize : m_limits.readAheadBytes;
            if (m_socket->bytesAvailable() > 0 && pending() < limit)
                continue;
            break;
        }
        ++served;
        const bool close = !r.head.keepAlive || m_draining;
        const QByteArray answer = m_server.serve(r.head, r.body(input), close);
        m_inPos += r.frameSize;
        if (m_inPos == m_in.size()) {
            m_inPos = 0;
            // Keeps its capacity for the next request, unless a body made it big.
            if (m_in.capacity() > 2 * m_limits.readAheadBytes)
                m_in = QByteArray();
            else
                m_in.resize(0);
        } else if (m_in.capacity() > 2 * m_limits.readAheadBytes) {
            // A body made it big and the next request has begun: keep that
            // alone, in a buffer of its own size.
            m_in = m_in.sliced(m_inPos);
            m_inPos = 0;
        }
        m_resumeAt = 0;
        m_frameSize = 0;
        m_continueSent = false;
        m_requestStartMs = -1;
        m_idleSinceMs = nowMs();
        send(answer);
        if (close) {
            closeAfterAnswer();
            return;
        }
    }
}

void HttpConnection::send(const QByteArray &bytes)
{
    qsizetype sent = 0;
    if (m_socket->bytesToWrite() == 0) {
        const ssize_t n = ::send(int(m_socket->socketDescriptor()), bytes.constData(),
                                 size_t(bytes.size()), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent = n;
        m_writeProgressMs = nowMs(); // the kernel took everything until now
    }
    // What the kernel did not take waits in the socket's buffer, written
    // when the kernel has room (no flush: it has none now).
    if (sent < bytes.size())
        m_socket->write(bytes.constData() + sent, bytes.size() - sent);
}

void HttpConnection::onBytesWritten()
{
    m_writeProgressMs = nowMs();
    if (m_closing) {
        if (m_socket->bytesToWrite() == 0)
            shutdownWrite();
        return;
    }
    if (m_socket->bytesToWrite() == 0) {
        m_idleSinceMs = m_writeProgressMs;
        if (m_draining && !busy()) {
            m_socket->disconnectFromHost();
            return;
        }
    }
    // Below the mark again: carry on with what was held back.
    if (m_socket->bytesToWrite() < m_limits.unsentHighWater &&
        (pending() > 0 || m_socket->bytesAvailable() > 0))
        pump();
}

void HttpConnection::refuse(int status, const QString &message, const http::RequestHead &head)
{
    const qint64 now = nowMs();
    const qint64 started = m_requestStartMs >= 0 ? m_requestStartMs : now;
    const QByteArray id = m_server.refused(head.method, head.target, head.requestId, status,
                                           double(now - started) / 1000.0);
    send(serializeResponse(Response::error(status, message), id, true, true));
    closeAfterAnswer();
}

void HttpConnection::closeAfterAnswer()
{
    m_closing = true;
    discardInput();
    m_writeProgressMs = nowMs();
    if (m_socket->bytesToWrite() == 0)
        shutdownWrite();
}

void HttpConnection::shutdownWrite()
{
    // The answer is out: a FIN after it, and what the client still sends is
    // read and dropped (closing with unread input would reset the connection
    // and could destroy the answer before the client reads it).
    if (m_lingerUntilMs != 0)
        return;
    ::shutdown(int(m_socket->socketDescriptor()), SHUT_WR);
    m_lingerUntilMs = nowMs() + m_limits.lingerMs;
}

void HttpConnection::checkDeadline(qint64 now)
{
    if (m_lingerUntilMs != 0) {
        if (now >= m_lingerUntilMs)
            m_socket->abort();
        return;
    }
    if (m_socket->bytesToWrite() > 0) {
        // Answers waiting for a client that takes none of them.
        if (now - m_writeProgressMs >= m_limits.sendTimeoutMs) {
            Log::warning("deckhand.http",
                         QStringLiteral("closed a connection that stopped reading its answers"),
                         { { QStringLiteral("peer"), m_socket->peerAddress().toString() },
                           { QStringLiteral("unsent_bytes"), double(m_socket->bytesToWrite()) },
                           { QStringLiteral("seconds"), m_limits.sendTimeoutMs / 1000.0 } });
            m_socket->abort();
        }
        return;
    }
    if (m_closing)
        return;
    if (m_requestStartMs >= 0) {
        if (now - m_requestStartMs >= m_limits.requestTimeoutMs) {
            // A head read whole (the body is what is late) is counted and
            // logged under its route, with the caller's request id.
            const QByteArray input = m_in.sliced(m_inPos);
            const http::ParseResult r = http::parseRequest(input, m_parserLimits);
            refuse(408,
                   QStringLiteral("the request did not arrive whole within %1 s")
                       .arg(m_limits.requestTimeoutMs / 1000.0),
                   r.headComplete ? r.head : http::RequestHead {});
        }
        return;
    }
    if (m_socket->bytesAvailable() == 0 && now - m_idleSinceMs >= m_limits.idleTimeoutMs)
        m_socket->disconnectFromHost();
}

// ---------------------------------------------------------------------------

bool ConnectionBudget::tryAcquire()
{
    int used = m_used.load();
    while (used < m_max) {
        if (m_used.compare_exchange_weak(used, used + 1))
            return true;
    }
    return false;
}

void ConnectionBudget::release()
{
    m_used.fetch_sub(1);
    Q_EMIT released();
}

Listener::Listener(const HttpLimits &limits, ConnectionBudget &budget, HttpServer &server,
                   QObject *parent)
    : QTcpServer(parent)
    , m_limits(limits)
    , m_budget(budget)
    , m_server(server)
{
    connect(&budget, &ConnectionBudget::released, this, &Listener::onBudgetReleased);
    // Deadlines are checked a few times per timeout period: a timeout fires
    // up to a quarter late, and no timer is touched per request.
    const int shortest =
        std::min({ limits.idleTimeoutMs, limits.requestTimeoutMs, limits.sendTimeoutMs });
    m_sweep.setInterval(std::clamp(shortest / 4, 25, 1000));
    connect(&m_sweep, &QTimer::timeout, this, [this] {
        const qint64 now = HttpConnection::nowMs();
        const auto sockets = m_connections.keys();
        for (QTcpSocket *socket : sockets) {
            if (socket->state() == QAbstractSocket::UnconnectedState)
                socket->deleteLater();
            else
                m_connections.value(socket)->checkDeadline(now);
        }
    });
    m_sweep.start();
}

void Listener::incomingConnection(qintptr descriptor)
{
    auto *socket = new QTcpSocket(this);
    if (!socket->setSocketDescriptor(descriptor)) {
        delete socket;
        return;
    }
    if (m_draining) {
        socket->abort();
        socket->deleteLater();
        return;
    }
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    if (!m_budget.tryAcquire()) {
        // Over the cap (another loop took the last slot): hold it, reading at
        // most one request head, and stop accepting until a slot frees up.
        stopAccepting();
        socket->setReadBufferSize(m_limits.maxHeaderBytes + 4);
        if (m_waiting.size() >= 64) {
            socket->abort();
            socket->deleteLater();
            return;
        }
        m_waiting.append(socket);
        connect(socket, &QTcpSocket::disconnected, this, [this, socket] {
            if (m_waiting.removeOne(socket))
                socket->deleteLater();
        });
        return;
    }
    admit(socket);
    if (m_budget.exhausted())
        stopAccepting();
}

void Listener::stopAccepting()
{
    // QTcpServer keeps calling accept() in its read notification until the
    // kernel queue is empty, even after pauseAccepting(); with no room for
    // pending connections it stops at once and later clients wait in the
    // kernel's backlog instead.
    setMaxPendingConnections(0);
    pauseAccepting();
}

void Listener::admit(QTcpSocket *socket)
{
    auto *connection = new HttpConnection(socket, m_server, m_limits);
    m_connections.insert(socket, connection);
    connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
    // The connection dies with its socket.
    connect(connection, &QObject::destroyed, this, [this, socket] {
        m_connections.remove(socket);
        m_budget.release();
        if (m_draining && m_connections.isEmpty())
            Q_EMIT drained();
    });
    // What a client sent while it waited for a slot was announced before
    // anyone listened.
    connection->start();
}

void Listener::onBudgetReleased()
{
    if (m_draining)
        return;
    while (!m_waiting.isEmpty() && m_budget.tryAcquire()) {
        QTcpSocket *socket = m_waiting.takeFirst();
        socket->disconnect(this);
        admit(socket);
    }
    if (!m_budget.exhausted()) {
        setMaxPendingConnections(kPendingConnections);
        resumeAccepting();
    }
}

void Listener::drain()
{
    m_draining = true;
    close();
    for (QTcpSocket *socket : std::as_const(m_waiting)) {
        socket->abort();
        socket->deleteLater();
    }
    m_waiting.clear();
    if (m_connections.isEmpty()) {
        QMetaObject::invokeMethod(this, &Listener::drained, Qt::QueuedConnection);
        return;
    }
    const auto connections = m_connections.values();
    for (HttpConnection *connection : connections)
        connection->drain();
}

void Listener::abortAll()
{
    const auto sockets = m_connections.keys();
    for (QTcpSocket *socket : sockets)
        socket->abort();
}

// ---------------------------------------------------------------------------

namespace {

// Accept a caller's request id only when it is short and plain.
bool usableRequestId(QByteArrayView id)
{
    if (id.isEmpty() || id.size() > 64)
        return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.';
    });
}

// The method as a shared constant: no allocation per request.
QByteArray methodBytes(QByteArrayView method)
{
    static const QByteArray kGet = QByteArrayLiteral("GET");
    static const QByteArray kHead = QByteArrayLiteral("HEAD");
    static const QByteArray kPost = QByteArrayLiteral("POST");
    static const QByteArray kUnknown = QByteArrayLiteral("UNKNOWN");
    if (method == "GET")
        return kGet;
    if (method == "HEAD")
        return kHead;
    if (method == "POST")
        return kPost;
    return method.isEmpty() ? kUnknown : method.toByteArray();
}

// The path of a request target: origin-form or absolute-form, without the query.
QByteArrayView pathOf(QByteArrayView target)
{
    if (!target.startsWith('/')) {
        const qsizetype scheme = target.indexOf("://");
        if (scheme < 0)
            return {}; // "*"
        const qsizetype slash = target.indexOf('/', scheme + 3);
        target = slash < 0 ? QByteArrayView("/") : target.sliced(slash);
    }
    if (const qsizetype q = target.indexOf('?'); q >= 0)
        target = target.first(q);
    return target;
}

} // namespace

HttpServer::HttpServer(QObject *parent)
    : QObject(parent)
    , m_requestIdPrefix(
          QByteArray::number(QRandomGenerator::global()->generate(), 16).rightJustified(8, '0'))
{ }

void HttpServer::route(const QByteArray &method, const QString &pattern, Handler handler)
{
    if (pattern.endsWith(QLatin1String("{id}"))) {
        const QString prefix = pattern.chopped(4);
        for (auto &entry : m_prefixed) {
            if (entry.first == prefix) {
                entry.second.byMethod.insert(method, std::move(handler));
                return;
            }
        }
        Route r;
        r.pattern = pattern;
        r.byMethod.insert(method, std::move(handler));
        m_prefixed.append({ prefix, r });
        return;
    }
    Route &r = m_exact[pattern];
    r.pattern = pattern;
    r.byMethod.insert(method, std::move(handler));
    // Pointers into m_exact move when it grows: take them all again.
    m_exactBytes.clear();
    for (auto it = m_exact.cbegin(); it != m_exact.cend(); ++it)
        m_exactBytes.insert(it.key().toLatin1(), &it.value());
}

const HttpServer::Route *HttpServer::match(const QString &path, QString *parameter) const
{
    if (auto it = m_exact.constFind(path); it != m_exact.constEnd())
        return &it.value();
    for (const auto &[prefix, candidate] : m_prefixed) {
        if (path.startsWith(prefix)) {
            const QString rest = path.mid(prefix.size());
            if (!rest.isEmpty() && !rest.contains(QLatin1Char('/'))) {
                *parameter = rest;
                return &candidate;
            }
        }
    }
    return nullptr;
}

const HttpServer::Route *HttpServer::resolve(QByteArrayView target, Request &request) const
{
    const QByteArrayView path = pathOf(target);
    if (!path.contains('%')) {
        // The usual case, a plain exact path: found by its bytes, and the
        // request's path is the route's own string (shared, not built).
        if (const Route *route =
                m_exactBytes.value(QByteArray::fromRawData(path.data(), path.size()))) {
            request.path = route->pattern;
            return route;
        }
        request.path = QString::fromUtf8(path);
    } else {
        request.path = QString::fromUtf8(QByteArray::fromPercentEncoding(path.toByteArray()));
    }
    return match(request.path, &request.parameter);
}

QByteArray HttpServer::requestIdFor(QByteArrayView given)
{
    if (usableRequestId(given))
        return given.toByteArray();
    return m_requestIdPrefix + QByteArray::number(++m_requestCounter, 16);
}

QByteArray HttpServer::refused(QByteArrayView method, QByteArrayView target,
                               QByteArrayView requestId, int status, double seconds)
{
    Request request;
    request.method = methodBytes(method);
    const Route *route = resolve(target, request);
    const QByteArray id = requestIdFor(requestId);
    request.requestId = QString::fromLatin1(id);
    if (m_observer)
        m_observer(request, route ? route->pattern : QStringLiteral("unmatched"), status, seconds);
    return id;
}

Response HttpServer::invoke(const Route *route, const Request &request) const
{
    if (!route)
        return Response::error(404, QStringLiteral("no such endpoint: %1").arg(request.path));
    auto handler = route->byMethod.constFind(request.method);
    // HEAD is answered like GET, without the body.
    if (handler == route->byMethod.constEnd() && request.method == "HEAD")
        handler = route->byMethod.constFind("GET");
    if (handler == route->byMethod.constEnd()) {
        QList<QByteArray> allowed = route->byMethod.keys();
        std::sort(allowed.begin(), allowed.end());
        const QByteArray allow = allowed.join(", ");
        Response r = Response::error(405,
                                     QStringLiteral("%1 is not allowed on %2; use %3")
                                         .arg(QString::fromLatin1(request.method), route->pattern,
                                              QString::fromLatin1(allow)));
        r.headers.emplaceBack("Allow", allow);
        return r;
    }
    return (*handler)(request);
}

QByteArray HttpServer::serve(const http::RequestHead &head, QByteArrayView body, bool close)
{
    QElapsedTimer timer;
    timer.start();
    Request request;
    request.method = methodBytes(head.method);
    const Route *route = resolve(head.target, request);
    if (!body.isEmpty())
        request.body = body.toByteArray();
    if (!head.contentType.isEmpty())
        request.contentType = head.contentType.toByteArray();
    if (!head.authorization.isEmpty())
        request.authorization = head.authorization.toByteArray();
    const QByteArray id = requestIdFor(head.requestId);
    request.requestId = QString::fromLatin1(id);
    const Response response = invoke(route, request);
    // Recorded before the client can see the answer: a scrape it sends next,
    // even to another event loop, already counts this request.
    if (m_observer)
        m_observer(request, route ? route->pattern : QStringLiteral("unmatched"), response.status,
                   double(timer.nsecsElapsed()) / 1e9);
    return serializeResponse(response, id, request.method != "HEAD", close);
}

QByteArray serializeResponse(const Response &r, const QByteArray &requestId, bool withBody,
                             bool close)
{
    QByteArray out;
    out.reserve(160 + r.body.size());
    out += "HTTP/1.1 " + QByteArray::number(r.status) + ' ' + reasonPhrase(r.status) +
        "\r\nContent-Type: " + r.contentType + "\r\n";
    for (const auto &[name, value] : r.headers)
        out += name + ": " + value + "\r\n";
    if (!requestId.isEmpty())
        out += "X-Request-ID: " + requestId + "\r\n";
    if (close)
        out += "Connection: close\r\n";
    out += "Content-Length: " + QByteArray::number(r.body.size()) + "\r\n\r\n";
    if (withBody)
        out += r.body;
    return out;
}

} // namespace deckhand
