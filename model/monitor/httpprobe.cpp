#include "monitor/httpprobe.h"

#include <QPointer>
#include <QTcpSocket>
#include <optional>

namespace pilothouse {

struct HttpProbe::Connection
{
    enum class Stage { Status, Headers, Body, ChunkSize, ChunkData, ChunkEnd, Trailer, UntilClose };

    QTcpSocket *socket = nullptr;
    std::shared_ptr<Host> host;
    std::optional<Request> active;
    bool connected = false;
    bool reused = false; // served a request before: the server may have closed it meanwhile
    bool gotBytes = false; // of the active request's answer
    QByteArray buffer;
    Stage stage = Stage::Status;
    ProbeResult result;
    qint64 contentLength = -1;
    qint64 chunkLeft = 0;
    qsizetype headerBytes = 0;
    bool chunked = false;
    bool closeAfter = false;
    bool http10 = false;
    bool keepAliveAsked = false;
};

namespace {

QString hostKey(const QUrl &url)
{
    return url.host() + QLatin1Char(':') + QString::number(url.port(80));
}

} // namespace

HttpProbe::HttpProbe(QObject *parent)
    : QObject(parent)
{ }

HttpProbe::~HttpProbe()
{
    for (const auto &h : std::as_const(m_hosts)) {
        for (Connection *c : std::as_const(h->connections)) {
            c->socket->disconnect(this);
            c->socket->abort();
            delete c; // the sockets are children of this object
        }
        h->connections.clear();
    }
}

int HttpProbe::openConnections() const
{
    int n = 0;
    for (const auto &h : m_hosts)
        n += int(h->connections.size());
    return n;
}

HttpProbe::Host &HttpProbe::hostFor(const QUrl &url)
{
    const QString key = hostKey(url);
    auto it = m_hosts.find(key);
    if (it == m_hosts.end()) {
        auto h = std::make_shared<Host>();
        h->host = url.host();
        h->port = quint16(url.port(80));
        it = m_hosts.insert(key, h);
    }
    return **it;
}

quint64 HttpProbe::get(const QUrl &url, const QByteArray &accept, Done done)
{
    Request r;
    r.ticket = m_nextTicket++;
    r.url = url;
    r.accept = accept;
    r.done = std::move(done);
    Host &host = hostFor(url);
    const quint64 ticket = r.ticket;
    host.queue.push_back(std::move(r));
    pump(host);
    return ticket;
}

void HttpProbe::pump(Host &host)
{
    while (!host.queue.empty()) {
        const bool retried = host.queue.front().retried;
        Connection *idle = nullptr;
        for (Connection *c : std::as_const(host.connections)) {
            // A request asked again goes on a connection never used before:
            // another kept-alive one may be just as closed.
            if (!c->active && c->connected && !(retried && c->reused)) {
                idle = c;
                break;
            }
        }
        if (idle) {
            Request r = std::move(host.queue.front());
            host.queue.pop_front();
            startOn(idle, std::move(r));
            continue;
        }
        if (host.connections.size() >= kConnectionsPerHost && retried) {
            // Full: make room by closing an idle reused connection.
            for (Connection *c : std::as_const(host.connections)) {
                if (!c->active) {
                    drop(c);
                    break;
                }
            }
        }
        if (host.connections.size() >= kConnectionsPerHost)
            return; // all busy: the queue waits for the next free connection
        auto *c = new Connection;
        c->socket = new QTcpSocket(this);
        c->host = m_hosts.value(host.host + QLatin1Char(':') + QString::number(host.port));
        c->active = std::move(host.queue.front()); // written once connected
        host.queue.pop_front();
        host.connections.append(c);
        ++m_connectionsMade;
        connect(c->socket, &QTcpSocket::connected, this, [this, c] {
            c->connected = true;
            // Small requests on a kept-alive connection: no Nagle delay.
            c->socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
            if (c->active)
                startOn(c, std::move(*c->active));
        });
        connect(c->socket, &QTcpSocket::readyRead, this, [this, c] { onReadable(c); });
        connect(c->socket, &QTcpSocket::disconnected, this, [this, c] {
            onClosed(c, tr("the connection closed without an answer"),
                     ProbeResult::Failure::Closed);
        });
        connect(c->socket, &QTcpSocket::errorOccurred, this,
                [this, c](QAbstractSocket::SocketError e) {
                    switch (e) {
                    case QAbstractSocket::RemoteHostClosedError:
                        return; // disconnected() says it
                    case QAbstractSocket::ConnectionRefusedError:
                        onClosed(c, tr("connection refused (is the service running?)"),
                                 ProbeResult::Failure::Refused);
                        return;
                    case QAbstractSocket::HostNotFoundError:
                        onClosed(c, tr("host %1 not found").arg(c->host->host),
                                 ProbeResult::Failure::HostNotFound);
                        return;
                    default:
                        onClosed(c, c->socket->errorString(), ProbeResult::Failure::Other);
                    }
                });
        // Connected from the event loop: a connect() that fails at once then
        // reports after get() has returned, never inside it.
        QPointer<QTcpSocket> socket = c->socket;
        const QString name = host.host;
        const quint16 port = host.port;
        QMetaObject::invokeMethod(
            this,
            [this, socket, name, port] {
                if (socket && socket->parent() == this)
                    socket->connectToHost(name, port);
            },
            Qt::QueuedConnection);
    }
}

void HttpProbe::startOn(Connection *c, Request request)
{
    c->active = std::move(request);
    c->result = {};
    c->stage = Connection::Stage::Status;
    c->contentLength = -1;
    c->chunkLeft = 0;
    c->headerBytes = 0;
    c->chunked = false;
    c->closeAfter = false;
    c->http10 = false;
    c->keepAliveAsked = false;
    c->gotBytes = false;
    const QUrl &url = c->active->url;
    QByteArray target = url.path(QUrl::FullyEncoded).toLatin1();
    if (target.isEmpty())
        target = "/";
    if (url.hasQuery())
        target += '?' + url.query(QUrl::FullyEncoded).toLatin1();
    QByteArray hostHeader = url.host(QUrl::FullyEncoded).toLatin1();
    if (hostHeader.contains(':'))
        hostHeader = '[' + hostHeader + ']'; // an IPv6 literal
    if (url.port() > 0)
        hostHeader += ':' + QByteArray::number(url.port());
    QByteArray wire;
    wire.reserve(160 + target.size());
    wire += "GET " + target + " HTTP/1.1\r\nHost: " + hostHeader +
        "\r\nAccept: " + c->active->accept +
        "\r\nUser-Agent: pilothouse-health\r\nConnection: keep-alive\r\n\r\n";
    c->socket->write(wire);
}

bool HttpProbe::onReadable(Connection *c)
{
    c->buffer += c->socket->readAll();
    if (!c->active) {
        // Bytes nobody asked for: the connection is out of step; start afresh.
        drop(c);
        return false;
    }
    c->gotBytes = true;
    using Stage = Connection::Stage;
    ProbeResult &r = c->result;
    // Returns whether the connection still exists (finish() may drop it).
    const auto fail = [this, c](const QString &why) {
        ProbeResult bad;
        bad.failure = ProbeResult::Failure::Other;
        bad.error = why;
        finish(c, bad, false);
        return false;
    };
    const auto done = [this, c](const ProbeResult &result, bool keepAlive) {
        const bool kept = keepAlive && c->buffer.isEmpty();
        finish(c, result, keepAlive);
        return kept;
    };
    for (;;) {
        switch (c->stage) {
        case Stage::Status:
        case Stage::Headers:
        case Stage::Trailer: {
            const qsizetype eol = c->buffer.indexOf("\r\n");
            if (eol < 0) {
                if (c->headerBytes + c->buffer.size() > kMaxHeaderBytes)
                    return fail(tr("the answer's headers are over %1 bytes").arg(kMaxHeaderBytes));
                return true; // more to come
            }
            const QByteArray line = c->buffer.left(eol);
            c->buffer.remove(0, eol + 2);
            c->headerBytes += eol + 2;
            if (c->headerBytes > kMaxHeaderBytes)
                return fail(tr("the answer's headers are over %1 bytes").arg(kMaxHeaderBytes));
            if (c->stage == Stage::Status) {
                // "HTTP/1.1 200 OK"
                if (!line.startsWith("HTTP/1.") || line.size() < 12)
                    return fail(tr("not an HTTP answer: %1")
                                    .arg(QString::fromLatin1(line.left(60)).simplified()));
                c->http10 = line.at(7) == '0';
                bool ok = false;
                r.status = line.mid(9, 3).toInt(&ok);
                if (!ok)
                    return fail(tr("a malformed HTTP status line"));
                c->stage = Stage::Headers;
                continue;
            }
            if (c->stage == Stage::Trailer) {
                if (line.isEmpty())
                    return done(r, !c->closeAfter);
                continue; // trailer fields are ignored
            }
            if (!line.isEmpty()) {
                const qsizetype colon = line.indexOf(':');
                if (colon <= 0)
                    continue;
                const QByteArray name = line.left(colon).trimmed().toLower();
                const QByteArray value = line.mid(colon + 1).trimmed();
                if (name == "content-length")
                    c->contentLength = value.toLongLong();
                else if (name == "transfer-encoding")
                    c->chunked = value.toLower().contains("chunked");
                else if (name == "content-type")
                    r.contentType = value;
                else if (name == "location")
                    r.location = value;
                else if (name == "connection") {
                    c->closeAfter = value.toLower().contains("close");
                    c->keepAliveAsked = value.toLower().contains("keep-alive");
                }
                continue;
            }
            // End of the headers.
            // HTTP/1.0 closes unless it said keep-alive.
            if (c->http10 && !c->keepAliveAsked)
                c->closeAfter = true;
            if (r.status >= 100 && r.status < 200) {
                c->stage = Stage::Status; // 100 Continue and friends: the real answer follows
                continue;
            }
            if (r.status == 204 || r.status == 304 || c->contentLength == 0)
                return done(r, !c->closeAfter);
            if (c->chunked) {
                c->stage = Stage::ChunkSize;
            } else if (c->contentLength > 0) {
                c->stage = Stage::Body;
            } else {
                c->stage = Stage::UntilClose;
                c->closeAfter = true;
            }
            continue;
        }
        case Stage::Body: {
            const qint64 want = c->contentLength - r.body.size();
            const qsizetype take = qsizetype(std::min<qint64>(want, c->buffer.size()));
            r.body += c->buffer.left(take);
            c->buffer.remove(0, take);
            if (r.body.size() > kMaxBodyBytes) {
                // Enough to judge; the rest is not worth reading (nor the connection).
                r.body.truncate(kMaxBodyBytes);
                return done(r, false);
            }
            if (r.body.size() == c->contentLength)
                return done(r, !c->closeAfter);
            return true;
        }
        case Stage::ChunkSize: {
            const qsizetype eol = c->buffer.indexOf("\r\n");
            if (eol < 0) {
                if (c->buffer.size() > 1024)
                    return fail(tr("a malformed chunked answer"));
                return true;
            }
            bool ok = false;
            const QByteArray size = c->buffer.left(eol).split(';').first().trimmed();
            c->chunkLeft = size.toLongLong(&ok, 16);
            c->buffer.remove(0, eol + 2);
            if (!ok || c->chunkLeft < 0)
                return fail(tr("a malformed chunked answer"));
            c->stage = c->chunkLeft == 0 ? Stage::Trailer : Stage::ChunkData;
            continue;
        }
        case Stage::ChunkData: {
            const qsizetype take = qsizetype(std::min<qint64>(c->chunkLeft, c->buffer.size()));
            r.body += c->buffer.left(take);
            c->buffer.remove(0, take);
            c->chunkLeft -= take;
            if (r.body.size() > kMaxBodyBytes) {
                r.body.truncate(kMaxBodyBytes);
                return done(r, false);
            }
            if (c->chunkLeft > 0)
                return true;
            c->stage = Stage::ChunkEnd;
            continue;
        }
        case Stage::ChunkEnd:
            if (c->buffer.size() < 2)
                return true;
            if (!c->buffer.startsWith("\r\n"))
                return fail(tr("a malformed chunked answer"));
            c->buffer.remove(0, 2); // the CRLF after a chunk
            c->stage = Stage::ChunkSize;
            continue;
        case Stage::UntilClose:
            r.body += c->buffer;
            c->buffer.clear();
            if (r.body.size() > kMaxBodyBytes) {
                r.body.truncate(kMaxBodyBytes);
                return done(r, false);
            }
            return true; // done when the server closes
        }
    }
}

void HttpProbe::onClosed(Connection *c, const QString &why, ProbeResult::Failure failure)
{
    if (!c->active) {
        drop(c);
        return;
    }
    if (c->stage == Connection::Stage::UntilClose) {
        // Whatever is left in the socket; it may finish (and drop) it itself.
        if (onReadable(c) && c->active)
            finish(c, c->result, false);
        return;
    }
    // A kept-alive connection the server closed just as it was reused:
    // nothing was answered, so asking once more on a new one is safe (GET).
    if (c->reused && !c->gotBytes && !c->active->retried &&
        failure == ProbeResult::Failure::Closed) {
        Request again = std::move(*c->active);
        again.retried = true;
        c->active.reset();
        std::shared_ptr<Host> host = c->host;
        drop(c);
        host->queue.push_front(std::move(again));
        pump(*host);
        return;
    }
    ProbeResult bad;
    bad.failure = failure;
    bad.error = why;
    finish(c, bad, false);
}

void HttpProbe::finish(Connection *c, ProbeResult result, bool keepAlive)
{
    Request request = std::move(*c->active);
    c->active.reset();
    c->reused = true;
    std::shared_ptr<Host> host = c->host;
    if (!keepAlive || !c->buffer.isEmpty())
        drop(c);
    if (request.done)
        request.done(result);
    pump(*host);
}

void HttpProbe::drop(Connection *c)
{
    c->host->connections.removeOne(c);
    c->socket->disconnect(this);
    c->socket->abort();
    c->socket->deleteLater();
    delete c;
}

void HttpProbe::abortAll()
{
    for (const auto &host : std::as_const(m_hosts)) {
        host->queue.clear();
        const auto connections = host->connections;
        for (Connection *c : connections) {
            if (c->active) {
                c->active.reset();
                drop(c);
            }
        }
    }
}

void HttpProbe::abort(quint64 ticket)
{
    for (const auto &host : std::as_const(m_hosts)) {
        for (auto it = host->queue.begin(); it != host->queue.end(); ++it) {
            if (it->ticket == ticket) {
                host->queue.erase(it);
                return;
            }
        }
        for (Connection *c : std::as_const(host->connections)) {
            if (c->active && c->active->ticket == ticket) {
                c->active.reset();
                drop(c); // an answer may still be on its way: the connection cannot be reused
                pump(*host);
                return;
            }
        }
    }
}

} // namespace pilothouse
