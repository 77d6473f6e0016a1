#include "httpserver.h"

#include <QHttpServerResponder>
#include <QJsonDocument>
#include <QRandomGenerator>
#include <QTcpSocket>
#include <sys/socket.h>

namespace deckhand {

QByteArray reasonPhrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
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

ConnectionGuard::ConnectionGuard(QTcpSocket *socket, const HttpLimits &limits)
    : QObject(socket)
    , m_socket(socket)
    , m_limits(limits)
{
    m_timer.setSingleShot(true);
    // Connected before QHttpServer's own slot, so every new byte passes here first.
    connect(socket, &QTcpSocket::readyRead, this, &ConnectionGuard::onReadyRead);
    connect(socket, &QTcpSocket::bytesWritten, this, &ConnectionGuard::onBytesWritten);
    connect(&m_timer, &QTimer::timeout, this, &ConnectionGuard::onTimeout);
    rearm();
}

bool ConnectionGuard::busy() const
{
    return m_state != State::Idle || m_socket->bytesToWrite() > 0;
}

void ConnectionGuard::drain()
{
    m_draining = true;
    closeIfDrainingAndIdle();
}

void ConnectionGuard::closeIfDrainingAndIdle()
{
    if (m_draining && !m_rejected && !busy())
        m_socket->disconnectFromHost();
}

void ConnectionGuard::rearm()
{
    if (m_rejected)
        return;
    if (m_state == State::Idle)
        m_timer.start(m_limits.idleTimeoutMs);
    // A request in progress keeps the deadline set when its first byte came:
    // dribbling one byte at a time does not buy more time.
}

void ConnectionGuard::onReadyRead()
{
    if (m_rejected) {
        m_socket->readAll();
        return;
    }
    // QHttpServer reads everything on each readyRead, so what is buffered now is new.
    const QByteArray bytes = m_socket->peek(m_socket->bytesAvailable());
    if (!scan(bytes))
        return;
    rearm();
}

void ConnectionGuard::onBytesWritten()
{
    if (m_rejected) {
        if (m_socket->bytesToWrite() == 0)
            ::shutdown(int(m_socket->socketDescriptor()), SHUT_WR);
        return;
    }
    if (m_socket->bytesToWrite() == 0) {
        rearm();
        closeIfDrainingAndIdle();
    }
}

void ConnectionGuard::onTimeout()
{
    if (m_rejected) {
        m_socket->abort();
        return;
    }
    if (m_state != State::Idle) {
        reject(408, "Request Timeout",
               QStringLiteral("the request did not arrive whole within %1 s")
                   .arg(m_limits.requestTimeoutMs / 1000.0));
        return;
    }
    // Idle keep-alive connection; a peer that stopped reading its response goes too.
    if (m_socket->bytesToWrite() > 0)
        m_socket->abort();
    else
        m_socket->disconnectFromHost();
}

bool ConnectionGuard::scan(const QByteArray &bytes)
{
    qsizetype pos = 0;
    while (pos < bytes.size()) {
        if (m_state == State::Body) {
            const qint64 take = qMin<qint64>(m_bodyRemaining, bytes.size() - pos);
            pos += take;
            m_bodyRemaining -= take;
            if (m_bodyRemaining == 0)
                m_state = State::Idle;
            continue;
        }
        if (m_state == State::Idle) {
            m_state = State::Headers;
            m_timer.start(m_limits.requestTimeoutMs);
        }
        const qsizetype before = m_head.size();
        const qsizetype searchFrom = qMax<qsizetype>(0, before - 3);
        m_head.append(bytes.constData() + pos, bytes.size() - pos);
        const qsizetype end = m_head.indexOf("\r\n\r\n", searchFrom);
        if (end < 0) {
            if (m_head.size() > m_limits.maxHeaderBytes) {
                reject(431, "Request Header Fields Too Large",
                       QStringLiteral("request headers exceed %1 KiB")
                           .arg(m_limits.maxHeaderBytes / 1024));
                return false;
            }
            return true; // wait for the rest of the headers
        }
        const qsizetype headLength = end + 4;
        if (headLength > m_limits.maxHeaderBytes + 4) {
            reject(431, "Request Header Fields Too Large",
                   QStringLiteral("request headers exceed %1 KiB")
                       .arg(m_limits.maxHeaderBytes / 1024));
            return false;
        }
        pos += headLength - before;
        const QByteArray head = m_head.left(headLength);
        m_head.clear();
        if (!headersComplete(head))
            return false;
        m_state = m_bodyRemaining > 0 ? State::Body : State::Idle;
    }
    return true;
}

bool ConnectionGuard::headersComplete(const QByteArray &head)
{
    const qsizetype lineEnd = head.indexOf("\r\n");
    const QByteArray requestLine = head.left(lineEnd);
    const QList<QByteArray> parts = requestLine.split(' ');
    const bool methodOk = !parts.isEmpty() && !parts[0].isEmpty() &&
        std::all_of(parts[0].begin(), parts[0].end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (parts.size() != 3 || !methodOk || parts[1].isEmpty()) {
        reject(400, "Bad Request",
               QStringLiteral("malformed request line; expected e.g. \"GET /livez HTTP/1.1\""));
        return false;
    }
    if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
        reject(505, "HTTP Version Not Supported",
               QStringLiteral("only HTTP/1.0 and HTTP/1.1 are served"));
        return false;
    }

    qint64 contentLength = 0;
    bool haveLength = false;
    qsizetype start = lineEnd + 2;
    while (start < head.size() - 2) {
        const qsizetype end = head.indexOf("\r\n", start);
        const QByteArray line = head.mid(start, end - start);
        start = end + 2;
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0) {
            reject(400, "Bad Request", QStringLiteral("malformed header line"));
            return false;
        }
        const QByteArray name = line.left(colon).trimmed().toLower();
        const QByteArray value = line.mid(colon + 1).trimmed();
        if (name == "content-length") {
            bool ok = false;
            const qint64 n = value.toLongLong(&ok);
            if (!ok || n < 0 || (haveLength && n != contentLength)) {
                reject(400, "Bad Request", QStringLiteral("invalid Content-Length"));
                return false;
            }
            contentLength = n;
            haveLength = true;
        } else if (name == "transfer-encoding") {
            reject(411, "Length Required",
                   QStringLiteral("send the body with a Content-Length header; Transfer-Encoding "
                                  "is not accepted"));
            return false;
        }
    }
    if (contentLength > m_limits.maxBodyBytes) {
        reject(413, "Content Too Large",
               QStringLiteral("request body of %1 bytes exceeds the %2 KiB limit")
                   .arg(contentLength)
                   .arg(m_limits.maxBodyBytes / 1024));
        return false;
    }
    m_bodyRemaining = contentLength;
    return true;
}

void ConnectionGuard::reject(int status, const QByteArray &reason, const QString &message)
{
    m_rejected = true;
    m_state = State::Idle;
    m_head.clear();
    // Take the connection away from QHttpServer: it must not parse what follows.
    QObject::disconnect(m_socket, &QTcpSocket::readyRead, nullptr, nullptr);
    connect(m_socket, &QTcpSocket::readyRead, this, &ConnectionGuard::onReadyRead);
    m_socket->readAll();

    const QByteArray body =
        QJsonDocument(QJsonObject { { QStringLiteral("error"), QString::fromLatin1(reason) },
                                    { QStringLiteral("message"), message } })
            .toJson(QJsonDocument::Compact);
    QByteArray response = "HTTP/1.1 " + QByteArray::number(status) + ' ' + reason +
        "\r\nContent-Type: application/json\r\nContent-Length: " + QByteArray::number(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    m_socket->write(response);
    m_socket->flush();
    // Lingering close: stop sending once the response is out, keep discarding
    // what the client still sends for a moment, so it reads the answer
    // instead of a connection reset.
    if (m_socket->bytesToWrite() == 0)
        ::shutdown(int(m_socket->socketDescriptor()), SHUT_WR);
    m_timer.start(2000);
}

// ---------------------------------------------------------------------------

Listener::Listener(const HttpLimits &limits, QObject *parent)
    : QTcpServer(parent)
    , m_limits(limits)
{ }

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
    auto *guard = new ConnectionGuard(socket, m_limits);
    m_guards.insert(socket, guard);
    connect(socket, &QObject::destroyed, this, [this, socket] {
        m_guards.remove(socket);
        if (m_draining) {
            if (m_guards.isEmpty())
                Q_EMIT drained();
        } else if (m_guards.size() < m_limits.maxConnections) {
            resumeAccepting();
        }
    });
    addPendingConnection(socket);
    // At the cap, new clients wait in the kernel's backlog until one leaves.
    if (m_guards.size() >= m_limits.maxConnections)
        pauseAccepting();
}

void Listener::drain()
{
    m_draining = true;
    close();
    if (m_guards.isEmpty()) {
        QMetaObject::invokeMethod(this, &Listener::drained, Qt::QueuedConnection);
        return;
    }
    const auto guards = m_guards.values();
    for (ConnectionGuard *guard : guards)
        guard->drain();
}

void Listener::abortAll()
{
    const auto sockets = m_guards.keys();
    for (QTcpSocket *socket : sockets)
        socket->abort();
}

// ---------------------------------------------------------------------------

namespace {

QByteArray methodName(QHttpServerRequest::Method method)
{
    using M = QHttpServerRequest::Method;
    switch (method) {
    case M::Get:
        return "GET";
    case M::Put:
        return "PUT";
    case M::Delete:
        return "DELETE";
    case M::Post:
        return "POST";
    case M::Head:
        return "HEAD";
    case M::Options:
        return "OPTIONS";
    case M::Patch:
        return "PATCH";
    case M::Connect:
        return "CONNECT";
    case M::Trace:
        return "TRACE";
    default:
        return "UNKNOWN";
    }
}

// Accept a caller's request id only when it is short and plain.
bool usableRequestId(const QByteArray &id)
{
    if (id.isEmpty() || id.size() > 64)
        return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.';
    });
}

} // namespace

HttpServer::HttpServer(QObject *parent)
    : QAbstractHttpServer(parent)
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
}

Response HttpServer::dispatch(Request &request, QString *routeName) const
{
    const Route *route = nullptr;
    if (auto it = m_exact.constFind(request.path); it != m_exact.constEnd()) {
        route = &it.value();
    } else {
        for (const auto &[prefix, candidate] : m_prefixed) {
            if (request.path.startsWith(prefix)) {
                const QString rest = request.path.mid(prefix.size());
                if (!rest.isEmpty() && !rest.contains(QLatin1Char('/'))) {
                    request.parameter = rest;
                    route = &candidate;
                    break;
                }
            }
        }
    }
    if (!route) {
        *routeName = QStringLiteral("unmatched");
        return Response::error(404, QStringLiteral("no such endpoint: %1").arg(request.path));
    }
    *routeName = route->pattern;
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

void HttpServer::serve(const QHttpServerRequest &httpRequest, QHttpServerResponder &responder)
{
    QElapsedTimer timer;
    timer.start();
    Request request;
    request.method = methodName(httpRequest.method());
    request.path = httpRequest.url().path();
    request.body = httpRequest.body();
    request.contentType = httpRequest.value("content-type");
    const QByteArray givenId = httpRequest.value("x-request-id");
    const QByteArray requestId = usableRequestId(givenId)
        ? givenId
        : m_requestIdPrefix + '-' + QByteArray::number(++m_requestCounter, 16);
    request.requestId = QString::fromLatin1(requestId);

    QString routeName;
    const Response response = dispatch(request, &routeName);

    responder.writeStatusLine(QHttpServerResponder::StatusCode(response.status));
    responder.writeHeader("Content-Type", response.contentType);
    for (const auto &[name, value] : response.headers)
        responder.writeHeader(name, value);
    responder.writeHeader("X-Request-ID", requestId);
    responder.writeHeader("Content-Length", QByteArray::number(response.body.size()));
    if (request.method == "HEAD")
        responder.writeBody("", 0);
    else
        responder.writeBody(response.body);

    if (m_observer)
        m_observer(request, routeName, response.status, double(timer.nsecsElapsed()) / 1e9);
}

#if QT_VERSION < QT_VERSION_CHECK(6, 5, 0)
bool HttpServer::handleRequest(const QHttpServerRequest &request, QTcpSocket *socket)
{
    QHttpServerResponder responder = makeResponder(request, socket);
    serve(request, responder);
    return true;
}

void HttpServer::missingHandler(const QHttpServerRequest &request, QTcpSocket *socket)
{
    QHttpServerResponder responder = makeResponder(request, socket);
    serve(request, responder);
}
#else
bool HttpServer::handleRequest(const QHttpServerRequest &request, QHttpServerResponder &responder)
{
    serve(request, responder);
    return true;
}

void HttpServer::missingHandler(const QHttpServerRequest &request, QHttpServerResponder &&responder)
{
    serve(request, responder);
}
#endif

} // namespace deckhand
