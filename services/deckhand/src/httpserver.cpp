#include "httpserver.h"

#include <QHttpServerResponder>
#if QT_VERSION >= QT_VERSION_CHECK(6, 8, 0)
#include <QHttpHeaders>
#endif
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

void sendNow(QTcpSocket *socket, const QByteArray &bytes)
{
    // Straight to the kernel when nothing is queued: a small answer is taken
    // whole, and the socket's write notifier is never switched on and off
    // again (each switch wakes the event loop through an eventfd). What the
    // kernel does not take goes the usual way.
    qsizetype sent = 0;
    if (socket->bytesToWrite() == 0) {
        const ssize_t n = ::send(int(socket->socketDescriptor()), bytes.constData(),
                                 size_t(bytes.size()), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent = n;
    }
    if (sent < bytes.size()) {
        socket->write(bytes.constData() + sent, bytes.size() - sent);
        socket->flush();
        return;
    }
    // As the socket would say after writing it: the guard closes a
    // "Connection: close" exchange or a draining connection on this.
    Q_EMIT socket->bytesWritten(sent);
}

ConnectionGuard::ConnectionGuard(QTcpSocket *socket, const HttpLimits &limits, FastPath fast,
                                 Refusal refusal)
    : QObject(socket)
    , m_socket(socket)
    , m_limits(limits)
    , m_fast(std::move(fast))
    , m_refusal(std::move(refusal))
{
    // Connected before QHttpServer's own slot, so every new byte passes here first.
    connect(socket, &QTcpSocket::readyRead, this, &ConnectionGuard::onReadyRead);
    connect(socket, &QTcpSocket::bytesWritten, this, &ConnectionGuard::onBytesWritten);
    rearm();
}

bool ConnectionGuard::busy() const
{
    return m_state != State::Idle || m_socket->bytesToWrite() > 0 || m_socket->bytesAvailable() > 0;
}

void ConnectionGuard::drain()
{
    m_draining = true;
    closeIfDrainingAndIdle();
}

void ConnectionGuard::closeIfDrainingAndIdle()
{
    if ((m_draining || m_closeAfterResponse) && !m_rejected && !busy())
        m_socket->disconnectFromHost();
}

void ConnectionGuard::rearm()
{
    if (m_rejected)
        return;
    if (m_state == State::Idle)
        m_deadlineMs = nowMs() + m_limits.idleTimeoutMs;
    // A request in progress keeps the deadline set when its first byte came:
    // dribbling one byte at a time does not buy more time.
}

void ConnectionGuard::onReadyRead()
{
    if (m_rejected) {
        discardInput();
        return;
    }
    t_reading = this;
    // What the buffer holds from before was scanned then. Inside QtHttpServer's
    // open read transaction (a request not yet whole) the buffer shows only
    // what follows the bytes it read, all of what it had; after it took a
    // whole request it left the rest, which serverTookRequest() counted.
    const QByteArray buffered = m_socket->peek(m_socket->bytesAvailable());
    const qsizetype old =
        m_socket->isTransactionStarted() ? 0 : std::min(m_scannedInBuffer, buffered.size());
    m_scannedInBuffer = buffered.size();
    const QByteArrayView bytes = QByteArrayView(buffered).sliced(old);
    const bool fresh = m_state == State::Idle && m_head.isEmpty() && old == 0;
    m_headsInScan = 0;
    if (!scan(bytes))
        return;
    // One whole, plain request and nothing else (the usual probe): answered
    // here; QtHttpServer then finds nothing to read. Anything else is its.
    if (m_fast && fresh && m_headsInScan == 1 && m_plain && m_state == State::Idle && !m_draining) {
        const auto answer = m_fast(m_method, m_target, m_requestId);
        // The views point into this read's bytes: not to be used after it.
        m_method = m_target = m_requestId = {};
        if (answer) {
            // QtHttpServer keeps a read transaction open between requests;
            // all it holds is this request, which is answered: drop it for real.
            if (m_socket->isTransactionStarted())
                m_socket->commitTransaction();
            m_socket->skip(bytes.size());
            m_scannedInBuffer = 0;
            sendNow(m_socket, *answer);
        }
    }
    rearm();
}

thread_local ConnectionGuard *ConnectionGuard::t_reading = nullptr;

ConnectionGuard::~ConnectionGuard()
{
    if (t_reading == this)
        t_reading = nullptr;
}

void ConnectionGuard::serverTookRequest()
{
    // Every request QtHttpServer takes must come through here, or what it
    // read would count as unscanned-but-seen: a QtHttpServer that answers on
    // its own (Qt 6.8's rate limit, which deckhand does not set) needs a
    // call from there too.
    if (t_reading)
        t_reading->m_scannedInBuffer = t_reading->m_socket->bytesAvailable();
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

void ConnectionGuard::discardInput()
{
    // Inside QtHttpServer's read transaction, reading only moves a cursor and
    // keeps the bytes: end the transaction so they are really dropped.
    if (m_socket->isTransactionStarted())
        m_socket->commitTransaction();
    m_socket->skip(m_socket->bytesAvailable());
    m_scannedInBuffer = 0;
}

qint64 ConnectionGuard::nowMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void ConnectionGuard::checkDeadline(qint64 now)
{
    if (now >= m_deadlineMs)
        expire();
}

void ConnectionGuard::expire()
{
    if (m_rejected) {
        m_socket->abort();
        return;
    }
    if (m_state != State::Idle) {
        reject(408,
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

bool ConnectionGuard::scan(QByteArrayView bytes)
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
            // An empty line or two before a request line is ignored (RFC 9112
            // 2.2), as QtHttpServer's parser does; more are the start of a
            // malformed request, so that nobody holds a connection, or fills
            // QtHttpServer's buffer, with line ends alone.
            while (pos < bytes.size() && (bytes[pos] == '\r' || bytes[pos] == '\n') &&
                   m_blankBytes < kMaxBlankBytes) {
                ++pos;
                ++m_blankBytes;
            }
            if (pos == bytes.size())
                break;
            m_state = State::Headers;
            m_deadlineMs = nowMs() + m_limits.requestTimeoutMs;
        }
        QByteArrayView head;
        qsizetype consumed = 0;
        if (m_head.isEmpty()) {
            // Fast path: the whole head arrived in this read; no copy.
            const QByteArrayView rest(bytes.constData() + pos, bytes.size() - pos);
            const qsizetype end = rest.indexOf("\r\n\r\n");
            if (end >= 0) {
                head = rest.first(end + 4);
                consumed = end + 4;
                if (bareLineFeed(head, 0) >= 0)
                    return rejectBareLineFeed();
            }
        }
        if (head.isEmpty()) {
            const qsizetype before = m_head.size();
            m_head.append(bytes.constData() + pos, bytes.size() - pos);
            const qsizetype end = m_head.indexOf("\r\n\r\n", qMax<qsizetype>(0, before - 3));
            if (bareLineFeed(QByteArrayView(m_head).first(end < 0 ? m_head.size() : end + 4),
                             before) >= 0)
                return rejectBareLineFeed();
            if (end < 0) {
                if (m_head.size() > m_limits.maxHeaderBytes) {
                    reject(431,
                           QStringLiteral("request headers exceed %1 KiB")
                               .arg(m_limits.maxHeaderBytes / 1024));
                    return false;
                }
                return true; // wait for the rest of the headers
            }
            head = QByteArrayView(m_head).first(end + 4);
            consumed = end + 4 - before;
        }
        if (head.size() > m_limits.maxHeaderBytes + 4) {
            reject(431,
                   QStringLiteral("request headers exceed %1 KiB")
                       .arg(m_limits.maxHeaderBytes / 1024));
            return false;
        }
        pos += consumed;
        m_blankBytes = 0;
        const bool ok = headersComplete(head);
        m_head.clear();
        if (!ok)
            return false;
        m_state = m_bodyRemaining > 0 ? State::Body : State::Idle;
    }
    return true;
}

namespace {

// RFC 9110 token characters: what a header name may consist of.
bool isToken(QByteArrayView text)
{
    if (text.isEmpty())
        return false;
    for (const char c : text) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || QByteArrayView("!#$%&'*+-.^_`|~").contains(c);
        if (!ok)
            return false;
    }
    return true;
}

// RFC 9110 5.5: a field value is visible characters, spaces and tabs (and
// obs-text); NUL, a lone CR, the other C0 controls and DEL are refused, not
// passed on to code that may cut or split at them.
bool hasControl(QByteArrayView text, bool tabAllowed = true)
{
    return std::any_of(text.begin(), text.end(), [tabAllowed](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && !(tabAllowed && c == '\t')) || c == 0x7f;
    });
}

bool isDigits(QByteArrayView text)
{
    return !text.isEmpty() &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

} // namespace

qsizetype ConnectionGuard::bareLineFeed(QByteArrayView text, qsizetype from)
{
    for (qsizetype i = text.indexOf('\n', from); i >= 0; i = text.indexOf('\n', i + 1)) {
        if (i == 0 || text[i - 1] != '\r')
            return i;
    }
    return -1;
}

bool ConnectionGuard::rejectBareLineFeed()
{
    // QtHttpServer takes a lone LF as a line end, the guard does not: they
    // would disagree on where the request ends.
    reject(400, QStringLiteral("header lines must end in CRLF, not a bare LF"));
    return false;
}

bool ConnectionGuard::headersComplete(QByteArrayView head)
{
    // Everything accepted here must also parse in QtHttpServer: a request its
    // parser refuses is dropped without an answer, so refuse it here, with one.
    const qsizetype lineEnd = head.indexOf("\r\n");
    const QByteArrayView line = head.first(lineEnd);
    const qsizetype sp1 = line.indexOf(' ');
    const qsizetype sp2 = sp1 > 0 ? line.lastIndexOf(' ') : -1;
    if (sp1 <= 0 || sp2 <= sp1 + 1 || line.sliced(sp1 + 1, sp2 - sp1 - 1).contains(' ') ||
        hasControl(line, false)) {
        reject(400,
               QStringLiteral("malformed request line; expected e.g. \"GET /livez HTTP/1.1\""));
        return false;
    }
    const QByteArrayView method = line.first(sp1);
    static constexpr std::array<const char *, 7> kMethods { "GET",    "HEAD",    "POST", "PUT",
                                                            "DELETE", "OPTIONS", "PATCH" };
    if (std::none_of(kMethods.begin(), kMethods.end(),
                     [&](const char *m) { return method == m; })) {
        reject(501, QStringLiteral("method not implemented; deckhand serves GET, HEAD and POST"),
               {}, line.sliced(sp1 + 1, sp2 - sp1 - 1));
        return false;
    }
    const QByteArrayView version = line.sliced(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        reject(505, QStringLiteral("only HTTP/1.0 and HTTP/1.1 are served"), method,
               line.sliced(sp1 + 1, sp2 - sp1 - 1));
        return false;
    }
    bool keepAlive = version == "HTTP/1.1";
    ++m_headsInScan;
    m_method = method;
    m_target = line.sliced(sp1 + 1, sp2 - sp1 - 1);
    m_requestId = {};
    m_plain = version == "HTTP/1.1" && (method == "GET" || method == "HEAD");

    qint64 contentLength = 0;
    bool haveLength = false;
    qsizetype start = lineEnd + 2;
    while (start < head.size() - 2) {
        const qsizetype end = head.indexOf("\r\n", start);
        const QByteArrayView field = head.sliced(start, end - start);
        start = end + 2;
        const qsizetype colon = field.indexOf(':');
        const QByteArrayView name = colon > 0 ? field.first(colon) : QByteArrayView();
        if (!isToken(name)) {
            reject(400, QStringLiteral("malformed header line"), m_method, m_target, m_requestId);
            return false;
        }
        if (hasControl(field.sliced(colon + 1))) {
            reject(400,
                   QStringLiteral("header field \"%1\" has a control character in its value "
                                  "(NUL, CR, another C0 control or DEL); only visible "
                                  "characters, spaces and tabs are accepted")
                       .arg(QString::fromLatin1(name.toByteArray().left(64))),
                   m_method, m_target, m_requestId);
            return false;
        }
        const QByteArrayView value = field.sliced(colon + 1).trimmed();
        if (name.compare("content-length", Qt::CaseInsensitive) == 0) {
            const qint64 n = isDigits(value) && value.size() <= 18 ? value.toLongLong() : -1;
            if (n < 0 || (haveLength && n != contentLength)) {
                reject(400, QStringLiteral("invalid Content-Length"), m_method, m_target,
                       m_requestId);
                return false;
            }
            contentLength = n;
            haveLength = true;
        } else if (name.compare("transfer-encoding", Qt::CaseInsensitive) == 0) {
            reject(411,
                   QStringLiteral("send the body with a Content-Length header; Transfer-Encoding "
                                  "is not accepted"),
                   m_method, m_target, m_requestId);
            return false;
        } else if (name.compare("connection", Qt::CaseInsensitive) == 0) {
            if (value.compare("close", Qt::CaseInsensitive) == 0)
                keepAlive = false;
            else if (value.compare("keep-alive", Qt::CaseInsensitive) == 0)
                keepAlive = true;
            else
                m_plain = false; // "upgrade" and the like: QtHttpServer's to judge
        } else if (name.compare("x-request-id", Qt::CaseInsensitive) == 0) {
            if (m_requestId.isEmpty())
                m_requestId = value; // the first one, as QtHttpServer takes it
        } else if (name.compare("expect", Qt::CaseInsensitive) == 0 ||
                   name.compare("upgrade", Qt::CaseInsensitive) == 0) {
            m_plain = false;
        }
    }
    m_plain = m_plain && keepAlive && contentLength == 0;
    if (contentLength > m_limits.maxBodyBytes) {
        reject(413,
               QStringLiteral("request body of %1 bytes exceeds the %2 KiB limit")
                   .arg(contentLength)
                   .arg(m_limits.maxBodyBytes / 1024),
               m_method, m_target, m_requestId);
        return false;
    }
    m_bodyRemaining = contentLength;
    // The client asked to close after this exchange: once the response is out.
    m_closeAfterResponse = m_closeAfterResponse || !keepAlive;
    return true;
}

void ConnectionGuard::reject(int status, const QString &message, QByteArrayView method,
                             QByteArrayView target, QByteArrayView requestId)
{
    // A request under way has had its deadline since its first byte.
    const qint64 now = nowMs();
    const qint64 started = m_state != State::Idle ? m_deadlineMs - m_limits.requestTimeoutMs : now;
    const QByteArray id = m_refusal
        ? m_refusal(method, target, requestId, status, double(now - started) / 1000.0)
        : QByteArray();
    m_rejected = true;
    m_state = State::Idle;
    m_head.clear();
    // Take the connection away from QHttpServer: it must not parse what follows.
    QObject::disconnect(m_socket, &QTcpSocket::readyRead, nullptr, nullptr);
    connect(m_socket, &QTcpSocket::readyRead, this, &ConnectionGuard::onReadyRead);
    discardInput();

    m_socket->write(serializeResponse(Response::error(status, message), id, true, true));
    m_socket->flush();
    // Lingering close: stop sending once the response is out, keep discarding
    // what the client still sends for a moment, so it reads the answer
    // instead of a connection reset.
    if (m_socket->bytesToWrite() == 0)
        ::shutdown(int(m_socket->socketDescriptor()), SHUT_WR);
    m_deadlineMs = nowMs() + 2000;
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

Listener::Listener(const HttpLimits &limits, ConnectionBudget &budget, QObject *parent)
    : QTcpServer(parent)
    , m_limits(limits)
    , m_budget(budget)
{
    connect(&budget, &ConnectionBudget::released, this, &Listener::onBudgetReleased);
    // Deadlines are checked a few times per timeout period: a timeout fires
    // up to a quarter late, and no timer is touched per request.
    const int shortest = std::min(limits.idleTimeoutMs, limits.requestTimeoutMs);
    m_sweep.setInterval(std::clamp(shortest / 4, 25, 1000));
    connect(&m_sweep, &QTimer::timeout, this, [this] {
        const qint64 now = ConnectionGuard::nowMs();
        const auto sockets = m_guards.keys();
        for (QTcpSocket *socket : sockets) {
            // QtHttpServer disconnects every slot of a socket it cannot parse,
            // its own deleteLater included: closed sockets are collected here.
            if (socket->state() == QAbstractSocket::UnconnectedState)
                socket->deleteLater();
            else
                m_guards.value(socket)->checkDeadline(now);
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
    addPendingConnection(socket);
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
    socket->setReadBufferSize(0);
    auto *guard = new ConnectionGuard(socket, m_limits, m_fast, m_refusal);
    m_guards.insert(socket, guard);
    // The guard dies with its socket; unlike the socket's own signals, this
    // connection survives QtHttpServer calling socket->disconnect().
    connect(guard, &QObject::destroyed, this, [this, socket] {
        m_guards.remove(socket);
        m_budget.release();
        if (m_draining && m_guards.isEmpty())
            Q_EMIT drained();
    });
}

void Listener::onBudgetReleased()
{
    if (m_draining)
        return;
    QList<QTcpSocket *> admitted;
    while (!m_waiting.isEmpty() && m_budget.tryAcquire()) {
        QTcpSocket *socket = m_waiting.takeFirst();
        socket->disconnect(this);
        admit(socket);
        addPendingConnection(socket);
        admitted << socket;
    }
    if (!admitted.isEmpty())
        Q_EMIT newConnection(); // QHttpServer takes pending connections on this signal
    // What these clients sent while they waited was announced before anyone
    // listened: announce it again.
    for (QTcpSocket *socket : std::as_const(admitted)) {
        if (socket->bytesAvailable() > 0)
            QMetaObject::invokeMethod(socket, &QTcpSocket::readyRead, Qt::QueuedConnection);
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
bool usableRequestId(QByteArrayView id)
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
    request.method = method.isEmpty() ? QByteArrayLiteral("UNKNOWN") : method.toByteArray();
    if (const qsizetype q = target.indexOf('?'); q >= 0)
        target = target.first(q);
    request.path = QString::fromLatin1(target);
    const Route *route = match(request.path, &request.parameter);
    const QString routeName = route ? route->pattern : QStringLiteral("unmatched");
    const QByteArray id = requestIdFor(requestId);
    request.requestId = QString::fromLatin1(id);
    if (m_observer)
        m_observer(request, routeName, status, seconds);
    return id;
}

Response HttpServer::dispatch(Request &request, QString *routeName) const
{
    const Route *route = match(request.path, &request.parameter);
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

std::optional<QByteArray> HttpServer::serveSimple(QByteArrayView method, QByteArrayView target,
                                                  QByteArrayView requestId)
{
    // The path as QtHttpServer's QUrl would give it: without the query; an
    // encoded one is left to QtHttpServer.
    QByteArrayView path = target;
    if (const qsizetype q = path.indexOf('?'); q >= 0)
        path = path.first(q);
    if (path.isEmpty() || path.front() != '/' || path.contains('%'))
        return std::nullopt;
    const Route *route = m_exactBytes.value(QByteArray::fromRawData(path.data(), path.size()));
    if (!route)
        return std::nullopt;
    // HEAD is answered like GET; anything else a route lacks is QtHttpServer's (405).
    static const QByteArray kGet = QByteArrayLiteral("GET");
    static const QByteArray kHead = QByteArrayLiteral("HEAD");
    const bool head = method == "HEAD";
    const auto handler = route->byMethod.constFind(head ? kHead : kGet);
    const auto get = route->byMethod.constFind(kGet);
    if (handler == route->byMethod.constEnd() && get == route->byMethod.constEnd())
        return std::nullopt;
    Exchange x;
    x.timer.start();
    x.request.method = head ? kHead : kGet;
    x.request.path = route->pattern;
    x.route = route->pattern;
    x.requestId = requestIdFor(requestId);
    x.request.requestId = QString::fromLatin1(x.requestId);
    x.response = (handler != route->byMethod.constEnd() ? *handler : *get)(x.request);
    const QByteArray bytes = wire(x);
    finish(x); // counted before the answer leaves, as on QtHttpServer's path
    return bytes;
}

HttpServer::Exchange HttpServer::process(const QHttpServerRequest &httpRequest)
{
    ConnectionGuard::serverTookRequest();
    Exchange x;
    x.timer.start();
    x.request.method = methodName(httpRequest.method());
    x.request.path = httpRequest.url().path();
    x.request.body = httpRequest.body();
    x.request.contentType = httpRequest.value("content-type");
    x.request.authorization = httpRequest.value("authorization");
    x.requestId = requestIdFor(httpRequest.value("x-request-id"));
    x.request.requestId = QString::fromLatin1(x.requestId);
    x.response = dispatch(x.request, &x.route);
    return x;
}

void HttpServer::finish(const Exchange &x)
{
    if (m_observer)
        m_observer(x.request, x.route, x.response.status, double(x.timer.nsecsElapsed()) / 1e9);
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

QByteArray HttpServer::wire(const Exchange &x)
{
    return serializeResponse(x.response, x.requestId, x.request.method != "HEAD", false);
}

#if QT_VERSION < QT_VERSION_CHECK(6, 5, 0)
// Qt 6.4 hands over the socket: write the response ourselves in one go.
bool HttpServer::handleRequest(const QHttpServerRequest &request, QTcpSocket *socket)
{
    const Exchange x = process(request);
    const QByteArray bytes = wire(x);
    // Recorded before the client can see the answer: a scrape it sends next,
    // even to another event loop, already counts this request.
    finish(x);
    sendNow(socket, bytes); // now, rather than on the next write-notifier round trip
    return true;
}

void HttpServer::missingHandler(const QHttpServerRequest &request, QTcpSocket *socket)
{
    handleRequest(request, socket);
}
#else
// Qt 6.5 and later hand over a responder instead of the socket.
void HttpServer::respond(const Exchange &x, QHttpServerResponder &responder)
{
    const Response &r = x.response;
    const auto status = QHttpServerResponder::StatusCode(r.status);
#if QT_VERSION >= QT_VERSION_CHECK(6, 8, 0)
    QHttpHeaders headers;
    headers.append(QHttpHeaders::WellKnownHeader::ContentType, r.contentType);
    for (const auto &[name, value] : r.headers)
        headers.append(name, value);
    headers.append("X-Request-ID", x.requestId);
    responder.write(x.request.method == "HEAD" ? QByteArray() : r.body, headers, status);
#else
    responder.writeStatusLine(status);
    responder.writeHeader("Content-Type", r.contentType);
    for (const auto &[name, value] : r.headers)
        responder.writeHeader(name, value);
    responder.writeHeader("X-Request-ID", x.requestId);
    responder.writeHeader("Content-Length", QByteArray::number(r.body.size()));
    responder.writeBody(x.request.method == "HEAD" ? QByteArray() : r.body);
#endif
}

bool HttpServer::handleRequest(const QHttpServerRequest &request, QHttpServerResponder &responder)
{
    const Exchange x = process(request);
    finish(x); // before the answer leaves, as above
    respond(x, responder);
    return true;
}

#if QT_VERSION >= QT_VERSION_CHECK(6, 8, 0)
void HttpServer::missingHandler(const QHttpServerRequest &request, QHttpServerResponder &responder)
#else
void HttpServer::missingHandler(const QHttpServerRequest &request, QHttpServerResponder &&responder)
#endif
{
    handleRequest(request, responder);
}
#endif

} // namespace deckhand
