#pragma once

#include <QByteArray>
#include <QElapsedTimer>
#include <QHash>
#include <QList>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QUrl>
#include <deque>
#include <functional>
#include <memory>

class QTcpSocket;

// Plain-HTTP health checks at scale: GET on a small pool of keep-alive
// connections per host and port, answers read in as few system calls as the
// kernel allows. A thousand endpoints at 1 Hz cost a few percent of a core,
// where a general-purpose client spends several times that (the health
// monitor's HTTPS endpoints still go through its QNetworkAccessManager, which
// does TLS). Only what health checks need: no redirects, no cookies, no
// proxies, bodies up to a limit.
namespace pilothouse {

struct ProbeResult
{
    enum class Failure { None, Refused, HostNotFound, Closed, TooLarge, Other };
    Failure failure = Failure::None;
    QString error; // for a person, when failure != None
    int status = 0; // HTTP status when an answer came
    QByteArray contentType;
    QByteArray location; // of a redirect, to say where it points
    QByteArray body;
};

class HttpProbe final : public QObject
{
    Q_OBJECT
public:
    explicit HttpProbe(QObject *parent = nullptr);
    ~HttpProbe() override;

    using Done = std::function<void(const ProbeResult &)>;
    // Starts a GET; `done` runs once, unless abort() comes first. Returns a
    // ticket for abort().
    quint64 get(const QUrl &url, const QByteArray &accept, Done done);
    // Drops a request (a deadline passed): its connection is closed, done never runs.
    void abort(quint64 ticket);
    // Drops every request, queued or on its way (the monitor stops).
    void abortAll();

    static constexpr int kConnectionsPerHost = 6;
    static constexpr qsizetype kMaxBodyBytes = 256 * 1024;
    static constexpr qsizetype kMaxHeaderBytes = 32 * 1024;

    // For tests: connections open now, and how many were opened in all.
    int openConnections() const;
    quint64 connectionsMade() const { return m_connectionsMade; }

private:
    struct Request
    {
        quint64 ticket = 0;
        QUrl url;
        QByteArray accept;
        Done done;
        bool retried = false; // once on a fresh connection when a reused one was closed
    };
    struct Connection;
    struct Host
    {
        QString host;
        quint16 port = 0;
        std::deque<Request> queue;
        QList<Connection *> connections;
    };

    Host &hostFor(const QUrl &url);
    void pump(Host &host);
    void startOn(Connection *c, Request request);
    bool onReadable(Connection *c); // false: the connection is gone
    void onClosed(Connection *c, const QString &why, ProbeResult::Failure failure);
    void finish(Connection *c, ProbeResult result, bool keepAlive);
    void drop(Connection *c);

    QHash<QString, std::shared_ptr<Host>> m_hosts; // "host:port"; stable addresses
    quint64 m_nextTicket = 1;
    quint64 m_connectionsMade = 0;
};

} // namespace pilothouse
