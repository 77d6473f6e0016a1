#pragma once

#include <QAbstractHttpServer>
#include <QByteArray>
#include <QElapsedTimer>
#include <QHash>
#include <QHttpServerRequest>
#include <QJsonArray>
#include <QJsonObject>
#include <QTcpServer>
#include <QTimer>
#include <atomic>
#include <functional>
#include <optional>

class QTcpSocket;

namespace deckhand {

struct HttpLimits
{
    int maxHeaderBytes = 16 * 1024;
    qint64 maxBodyBytes = 1024 * 1024;
    int idleTimeoutMs = 15000;
    int requestTimeoutMs = 10000;
};

// Watches one connection's bytes before QHttpServer parses them, and enforces
// what QHttpServer 6.4 cannot: header and body limits (431, 413), a deadline
// for a request to arrive whole (408), an idle keep-alive timeout, and a
// graceful close once the connection is idle during shutdown.
// Writes a whole answer, straight to the kernel when it can.
void sendNow(QTcpSocket *socket, const QByteArray &bytes);

// Answers a simple request (GET or HEAD, no body, one in the buffer) without
// QtHttpServer's parser; nullopt: let QtHttpServer serve it.
using FastPath = std::function<std::optional<QByteArray>(
    QByteArrayView method, QByteArrayView target, QByteArrayView requestId)>;
// Told of each request the guard refuses itself (400, 408, 411, 413, 431,
// 501, 505) so that it is counted and logged like any other; method, target
// and the caller's X-Request-ID are empty when not read. Returns the request
// id for the answer.
using Refusal = std::function<QByteArray(QByteArrayView method, QByteArrayView target,
                                         QByteArrayView requestId, int status, double seconds)>;

class ConnectionGuard final : public QObject
{
public:
    ConnectionGuard(QTcpSocket *socket, const HttpLimits &limits, FastPath fast = {},
                    Refusal refusal = {});
    ~ConnectionGuard() override;
    // True while a request is partly received or a response is still being sent.
    bool busy() const;
    // Closes now if idle, else as soon as the current exchange completes.
    void drain();
    // Acts on an expired deadline (request timeout, idle timeout, linger);
    // called by the listener's sweep, so no timer is restarted per request.
    void checkDeadline(qint64 nowMs);
    static qint64 nowMs();
    // QtHttpServer has just taken one whole request off the socket whose
    // bytes are being read on this thread (it reads only inside readyRead,
    // where this socket's guard always runs first): what it left in the
    // buffer was scanned already.
    static void serverTookRequest();

private:
    enum class State { Idle, Headers, Body };
    void onReadyRead();
    void onBytesWritten();
    void expire();
    void discardInput();
    // Consumes new bytes; false when the request was rejected.
    bool scan(QByteArrayView bytes);
    bool headersComplete(QByteArrayView head);
    void reject(int status, const QString &message, QByteArrayView method = {},
                QByteArrayView target = {}, QByteArrayView requestId = {});
    // The first LF in text[from..] not preceded by a CR, or -1.
    static qsizetype bareLineFeed(QByteArrayView text, qsizetype from);
    bool rejectBareLineFeed();
    void rearm();
    void closeIfDrainingAndIdle();

    QTcpSocket *m_socket;
    HttpLimits m_limits;
    qint64 m_deadlineMs = 0;
    State m_state = State::Idle;
    QByteArray m_head;
    qint64 m_bodyRemaining = 0;
    static constexpr int kMaxBlankBytes = 4; // CR/LF before a request line: two empty lines
    int m_blankBytes = 0;
    // Bytes at the front of the read buffer that were scanned already:
    // QtHttpServer takes one request per read and announces the rest again.
    qsizetype m_scannedInBuffer = 0;
    // The guard whose socket's readyRead is being handled on this thread.
    static thread_local ConnectionGuard *t_reading;
    bool m_draining = false;
    bool m_rejected = false;
    bool m_closeAfterResponse = false; // "Connection: close" or HTTP/1.0
    FastPath m_fast;
    Refusal m_refusal;
    // Of the last request head scanned, for the fast path.
    int m_headsInScan = 0;
    QByteArrayView m_method;
    QByteArrayView m_target;
    QByteArrayView m_requestId;
    bool m_plain = false; // GET/HEAD, HTTP/1.1, no body, nothing unusual asked
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

// The listening socket. Hands accepted sockets to QHttpServer with a guard
// attached first, holds back clients over the connection cap, and drains on
// shutdown.
class Listener final : public QTcpServer
{
    Q_OBJECT
public:
    Listener(const HttpLimits &limits, ConnectionBudget &budget, QObject *parent = nullptr);
    // Given to every connection's guard from now on.
    void setFastPath(FastPath fast) { m_fast = std::move(fast); }
    void setRefusal(Refusal refusal) { m_refusal = std::move(refusal); }
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
    FastPath m_fast;
    Refusal m_refusal;
    QHash<QTcpSocket *, ConnectionGuard *> m_guards;
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

// Routes requests to handlers and writes their responses. A thin layer over
// QAbstractHttpServer: the request/responder hand-over is the one place where
// QtHttpServer's API differs between 6.4 and later versions.
class HttpServer final : public QAbstractHttpServer
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
    Response dispatch(Request &request, QString *routeName) const;
    // The probe-and-scrape path: a plain GET or HEAD of an exact route,
    // answered and observed exactly as through QtHttpServer, without its
    // parser (which costs more than everything else a /livez does).
    std::optional<QByteArray> serveSimple(QByteArrayView method, QByteArrayView target,
                                          QByteArrayView requestId);
    // A request the connection guard answered itself: observed (counted,
    // logged) under the route its target names; returns its request id.
    QByteArray refused(QByteArrayView method, QByteArrayView target, QByteArrayView requestId,
                       int status, double seconds);

protected:
#if QT_VERSION < QT_VERSION_CHECK(6, 5, 0)
    bool handleRequest(const QHttpServerRequest &request, QTcpSocket *socket) override;
    void missingHandler(const QHttpServerRequest &request, QTcpSocket *socket) override;
#else
    bool handleRequest(const QHttpServerRequest &request, QHttpServerResponder &responder) override;
#if QT_VERSION >= QT_VERSION_CHECK(6, 8, 0)
    void missingHandler(const QHttpServerRequest &request,
                        QHttpServerResponder &responder) override;
#else
    void missingHandler(const QHttpServerRequest &request,
                        QHttpServerResponder &&responder) override;
#endif
#endif

private:
    struct Exchange
    {
        Request request;
        Response response;
        QString route;
        QByteArray requestId;
        QElapsedTimer timer;
    };
    Exchange process(const QHttpServerRequest &request);
    // The caller's X-Request-ID when it is short and plain, else a new one.
    QByteArray requestIdFor(QByteArrayView given);
    void finish(const Exchange &exchange);
    static QByteArray wire(const Exchange &exchange);
#if QT_VERSION >= QT_VERSION_CHECK(6, 5, 0)
    static void respond(const Exchange &exchange, QHttpServerResponder &responder);
#endif

    struct Route
    {
        QString pattern;
        QHash<QByteArray, Handler> byMethod;
    };
    QHash<QString, Route> m_exact;
    // The same routes by their path's bytes, for serveSimple (no conversion per request).
    QHash<QByteArray, const Route *> m_exactBytes;
    QList<QPair<QString, Route>> m_prefixed; // prefix without "{id}"
    // The route whose pattern matches `path`, or nullptr; sets the {id} part.
    const Route *match(const QString &path, QString *parameter) const;
    Observer m_observer;
    quint64 m_requestCounter = 0;
    QByteArray m_requestIdPrefix;
};

} // namespace deckhand
