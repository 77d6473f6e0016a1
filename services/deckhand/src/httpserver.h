#pragma once

#include "requestparser.h"

#include <QByteArray>
#include <QHash>
#include <QJsonArray>
#include <QJsonObject>
#include <QTcpServer>
#include <QTimer>
#include <atomic>
#include <functional>

class QTcpSocket;

namespace deckhand {

struct HttpLimits
{
    int maxHeaderBytes = 16 * 1024;
    qint64 maxBodyBytes = 1024 * 1024;
    int idleTimeoutMs = 15000;
    int requestTimeoutMs = 10000;
    // A connection whose answers wait unread this long, with none taken by
    // the client meanwhile, is closed.
    int sendTimeoutMs = 10000;
    // Backpressure, per connection. Requests received but not answered yet:
    // this many bytes of them (more only for the one request whose body is
    // arriving); the rest stays in the kernel, which slows the client down.
    qsizetype readAheadBytes = 64 * 1024;
    // Answers the client has not taken yet: past this many bytes no further
    // request is answered, or read, until it takes some.
    qsizetype unsentHighWater = 64 * 1024;
    // Requests one connection is answered in a row before the event loop
    // turns to the others.
    int requestsPerTurn = 16;
    // After a last answer with "Connection: close": how long what the client
    // still sends is read and dropped, so that it reads the answer rather
    // than a reset.
    int lingerMs = 2000;
};

class HttpServer;

// One client connection: frames requests with http::parseRequest (nothing
// else reads request bytes), hands them to the server in order, writes the
// answers, and enforces the limits: header and body size (431, 413), a
// deadline for a request to arrive whole (408), an idle keep-alive timeout,
// backpressure on a client that does not read its answers, and a graceful
// close once idle during shutdown.
class HttpConnection final : public QObject
{
public:
    HttpConnection(QTcpSocket *socket, HttpServer &server, const HttpLimits &limits);
    // True while a request is partly received or an answer is still being sent.
    bool busy() const;
    // Closes now if idle, else as soon as the request under way is answered.
    void drain();
    // Serves whatever the socket already holds (a client admitted late).
    void start();
    // Acts on an expired deadline (request, idle, send, linger); called by
    // the listener's sweep, so that no timer is restarted per request.
    void checkDeadline(qint64 nowMs);
    static qint64 nowMs();

private:
    void pump();
    void schedulePump();
    void onBytesWritten();
    // Writes straight to the kernel when nothing is queued: a small answer
    // is taken whole, and the socket's write notifier is never switched on
    // and off (each switch wakes the event loop through an eventfd).
    void send(const QByteArray &bytes);
    void refuse(int status, const QString &message, const http::RequestHead &head = {});
    // After the last answer: stop sending once it is out, drop what still
    // comes for a while, then close.
    void closeAfterAnswer();
    void shutdownWrite();
    void discardInput();
    qsizetype pending() const { return m_in.size() - m_inPos; }
    // Bytes of a request are here, not only empty lines before one.
    bool requestBegun() const;

    QTcpSocket *m_socket;
    HttpServer &m_server;
    HttpLimits m_limits;
    http::ParserLimits m_parserLimits;
    QByteArray m_in; // received, not yet answered, from m_inPos on
    qsizetype m_inPos = 0;
    qsizetype m_resumeAt = 0; // the parser's, for the request under way
    qsizetype m_frameSize = 0; // of the request under way once its head is whole
    bool m_continueSent = false;
    qint64 m_requestStartMs = -1; // first byte of the request under way
    qint64 m_idleSinceMs = 0;
    qint64 m_writeProgressMs = 0;
    qint64 m_lingerUntilMs = 0;
    bool m_closing = false; // the last answer is written or being written
    bool m_draining = false;
    bool m_pumpQueued = false;
};

// The process-wide connection cap, shared by every listener (each HTTP thread
// has its own, and the kernel spreads clients across them without regard
// to how busy each is). Thread-safe.
class ConnectionBudget final : public QObject
{
    Q_OBJECT
public:
    explicit ConnectionBudget(int max)
        : m_max(max)
    { }
    bool tryAcquire();
    void release();
    bool exhausted() const { return m_used.load() >= m_max; }

Q_SIGNALS:
    void released();

private:
    const int m_max;
    std::atomic<int> m_used { 0 };
};

// The listening socket. Gives each accepted socket its connection, holds
// back clients over the connection cap, and drains on shutdown.
class Listener final : public QTcpServer
{
    Q_OBJECT
public:
    Listener(const HttpLimits &limits, ConnectionBudget &budget, HttpServer &server,
             QObject *parent = nullptr);
    // Stops accepting and closes every connection once idle; drained() when none are left.
    void drain();
    // Closes whatever is still open, busy or not.
    void abortAll();

Q_SIGNALS:
    void drained();

protected:
    void incomingConnection(qintptr descriptor) override;

private:
    void admit(QTcpSocket *socket);
    void stopAccepting();
    static constexpr int kPendingConnections = 30; // QTcpServer's default
    void onBudgetReleased();

    HttpLimits m_limits;
    ConnectionBudget &m_budget;
    HttpServer &m_server;
    QHash<QTcpSocket *, HttpConnection *> m_connections;
    QList<QTcpSocket *> m_waiting; // accepted over the cap, not yet served
    QTimer m_sweep;
    bool m_draining = false;
};

// One HTTP exchange as the route handlers see it.
struct Request
{
    QByteArray method;
    QString path;
    QString parameter; // the {id} part of a parameterised route
    QByteArray body;
    QByteArray contentType;
    QByteArray authorization; // the Authorization header, as sent
    QString requestId;
};

struct Response
{
    int status = 200;
    QByteArray contentType = QByteArrayLiteral("application/json"); // static: no allocation
    QByteArray body;
    QList<QPair<QByteArray, QByteArray>> headers;

    static Response json(int status, const QJsonObject &object);
    // {"error": <reason phrase>, "message": <what to do>, "details": [...]}
    static Response error(int status, const QString &message, const QJsonArray &details = {});
};

QByteArray reasonPhrase(int status);

// A whole HTTP/1.1 response as it goes on the wire, for one socket write.
QByteArray serializeResponse(const Response &response, const QByteArray &requestId, bool withBody,
                             bool close);

// Routes requests to handlers and turns their responses into bytes. Knows
// nothing of sockets: a connection hands it each request it framed.
class HttpServer final : public QObject
{
public:
    using Handler = std::function<Response(const Request &)>;
    // Called after each response with the route's pattern and the handler time.
    using Observer =
        std::function<void(const Request &, const QString &route, int status, double seconds)>;

    explicit HttpServer(QObject *parent = nullptr);
    // pattern: an exact path, or a prefix ending in "{id}" for one parameter.
    void route(const QByteArray &method, const QString &pattern, Handler handler);
    void setObserver(Observer observer) { m_observer = std::move(observer); }
    // Answers one framed request: the whole response as it goes on the wire
    // ("Connection: close" in it when `close`). Observed (counted, logged)
    // before it is returned, so a scrape sent after it counts it.
    QByteArray serve(const http::RequestHead &head, QByteArrayView body, bool close);
    // A request the connection refused itself (400, 408, 411, 413, 417, 431,
    // 501, 505): observed under the route its target names, method and target
    // empty when not read; returns the request id for the answer.
    QByteArray refused(QByteArrayView method, QByteArrayView target, QByteArrayView requestId,
                       int status, double seconds);

private:
    struct Route
    {
        QString pattern;
        QHash<QByteArray, Handler> byMethod;
    };
    // The caller's X-Request-ID when it is short and plain, else a new one.
    QByteArray requestIdFor(QByteArrayView given);
    // The route whose pattern matches `path` (percent-decoded), or nullptr; sets the {id} part.
    const Route *match(const QString &path, QString *parameter) const;
    // Matches the target's path (origin- or absolute-form, without the
    // query) and fills request.path and request.parameter.
    const Route *resolve(QByteArrayView target, Request &request) const;
    Response invoke(const Route *route, const Request &request) const;

    QHash<QString, Route> m_exact;
    // The same routes by their path's bytes: no conversion for a plain path.
    QHash<QByteArray, const Route *> m_exactBytes;
    QList<QPair<QString, Route>> m_prefixed; // prefix without "{id}"
    Observer m_observer;
    quint64 m_requestCounter = 0;
    QByteArray m_requestIdPrefix;
};

} // namespace deckhand
