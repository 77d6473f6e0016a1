// The health monitor's plain-HTTP probe: against a real deckhand (keep-alive,
// a bounded pool) and a raw TCP server in this process for the answer shapes
// deckhand never sends (chunked, HTTP/1.0 until close, a server closing an idle
// connection, a huge body, not HTTP at all).
#include "monitor/httpprobe.h"
#include "servers.h"

#include <QTcpServer>
#include <QTcpSocket>
#include <QtTest>

using namespace pilothouse;
using namespace pilothouse::fixtures;

namespace {

// Answers every request on a connection with the next canned answer.
class RawServer final : public QObject
{
public:
    explicit RawServer(QList<QByteArray> answers, bool closeAfterEach = false)
        : m_answers(std::move(answers))
        , m_close(closeAfterEach)
    {
        m_server.listen(QHostAddress::LocalHost);
        connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket *s = m_server.nextPendingConnection()) {
                ++connections;
                connect(s, &QTcpSocket::disconnected, s, &QObject::deleteLater);
                connect(s, &QTcpSocket::readyRead, this, [this, s] {
                    m_pending[s] += s->readAll();
                    while (m_pending[s].contains("\r\n\r\n")) {
                        m_pending[s].remove(0, m_pending[s].indexOf("\r\n\r\n") + 4);
                        ++requests;
                        s->write(m_answers.value(
                            std::min<qsizetype>(requests - 1, m_answers.size() - 1)));
                        if (m_close)
                            s->disconnectFromHost();
                    }
                });
            }
        });
    }
    quint16 port() const { return m_server.serverPort(); }
    QUrl url(const char *path = "/readyz") const
    {
        return QUrl(QStringLiteral("http://127.0.0.1:%1%2").arg(port()).arg(QLatin1String(path)));
    }
    // Closes every open connection, as a server's idle timeout would.
    void closeAll()
    {
        for (QTcpSocket *s : m_server.findChildren<QTcpSocket *>())
            s->disconnectFromHost();
    }
    int connections = 0;
    int requests = 0;

private:
    QTcpServer m_server;
    QList<QByteArray> m_answers;
    QHash<QTcpSocket *, QByteArray> m_pending;
    bool m_close;
};

ProbeResult fetch(HttpProbe &probe, const QUrl &url, int timeoutMs = 5000)
{
    std::optional<ProbeResult> got;
    probe.get(url, "application/health+json", [&got](const ProbeResult &r) { got = r; });
    if (!QTest::qWaitFor([&got] { return got.has_value(); }, timeoutMs)) {
        ProbeResult r;
        r.failure = ProbeResult::Failure::Other;
        r.error = QStringLiteral("test: no answer");
        return r;
    }
    return *got;
}

} // namespace

class TestProbe final : public QObject
{
    Q_OBJECT

private:
    std::unique_ptr<Deckhand> m_deckhand;
    quint16 m_port = 0;

private slots:
    void initTestCase()
    {
        m_port = freePort();
        m_deckhand = std::make_unique<Deckhand>(deckhandEnvironment(m_port));
        QString error;
        QVERIFY2(m_deckhand->start(&error), qPrintable(error));
        // Ready, not only alive: /readyz answers 503 until deckhand's first checks ran.
        QVERIFY(m_deckhand->waitFor(m_port, "/readyz", 200, 10000));
    }

    void keepAliveOnOneConnection()
    {
        HttpProbe probe;
        const QUrl url(QStringLiteral("http://127.0.0.1:%1/readyz").arg(m_port));
        for (int i = 0; i < 200; ++i) {
            const ProbeResult r = fetch(probe, url);
            QCOMPARE(int(r.failure), int(ProbeResult::Failure::None));
            QCOMPARE(r.status, 200);
            QVERIFY(r.contentType.startsWith("application/health+json"));
            QVERIFY(r.body.contains("\"status\""));
        }
        QCOMPARE(probe.connectionsMade(), quint64(1));
    }

    void manyAtOnceShareABoundedPool()
    {
        HttpProbe probe;
        int answered = 0;
        for (int i = 0; i < 300; ++i) {
            probe.get(QUrl(QStringLiteral("http://127.0.0.1:%1/livez?n=%2").arg(m_port).arg(i)),
                      "*/*", [&answered](const ProbeResult &r) {
                          if (r.failure == ProbeResult::Failure::None && r.status == 200)
                              ++answered;
                      });
        }
        QTRY_COMPARE_WITH_TIMEOUT(answered, 300, 15000);
        QVERIFY(probe.connectionsMade() <= quint64(HttpProbe::kConnectionsPerHost));
        QCOMPARE(probe.openConnections(), int(probe.connectionsMade()));
    }

    void statusesAndNotFound()
    {
        HttpProbe probe;
        const ProbeResult r =
            fetch(probe, QUrl(QStringLiteral("http://127.0.0.1:%1/nope").arg(m_port)));
        QCOMPARE(r.status, 404);
        QVERIFY(r.body.contains("no such endpoint"));
    }

    void chunkedAnswers()
    {
        RawServer server({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Type: application/health+json\r\n\r\n"
                           "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n" });
        HttpProbe probe;
        for (int i = 0; i < 3; ++i) {
            const ProbeResult r = fetch(probe, server.url());
            QCOMPARE(r.status, 200);
            QCOMPARE(r.body, QByteArray("hello world"));
        }
        QCOMPARE(server.connections, 1); // kept alive across chunked answers
    }

    void http10UntilClose()
    {
        RawServer server({ "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n"
                           "down for maintenance" },
                         true);
        HttpProbe probe;
        for (int i = 0; i < 2; ++i) {
            const ProbeResult r = fetch(probe, server.url());
            QCOMPARE(r.status, 503);
            QCOMPARE(r.body, QByteArray("down for maintenance"));
        }
        QCOMPARE(server.connections, 2);
    }

    // HTTP/1.0 with a length and no Connection header: not kept, so never
    // reused after the server closed it.
    void http10WithALengthIsNotKeptAlive()
    {
        RawServer server({ "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok" }, true);
        HttpProbe probe;
        for (int i = 0; i < 3; ++i) {
            const ProbeResult r = fetch(probe, server.url());
            QCOMPARE(int(r.failure), int(ProbeResult::Failure::None));
            QCOMPARE(r.body, QByteArray("ok"));
        }
        QCOMPARE(server.connections, 3);
        QCOMPARE(probe.openConnections(), 0);
    }

    void anIdleConnectionClosedByTheServerIsRetried()
    {
        RawServer server({ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" });
        HttpProbe probe;
        QCOMPARE(fetch(probe, server.url()).status, 200);
        server.closeAll();
        // The next request may find the closed connection first: asked again, not failed.
        const ProbeResult r = fetch(probe, server.url());
        QCOMPARE(int(r.failure), int(ProbeResult::Failure::None));
        QCOMPARE(r.status, 200);
        QCOMPARE(server.connections, 2);
    }

    void failures()
    {
        HttpProbe probe;
        const ProbeResult refused =
            fetch(probe, QUrl(QStringLiteral("http://127.0.0.1:%1/readyz").arg(freePort())));
        QCOMPARE(int(refused.failure), int(ProbeResult::Failure::Refused));
        QVERIFY(refused.error.contains(QLatin1String("refused")));

        RawServer garbage({ "SSH-2.0-OpenSSH_9.2\r\n" });
        const ProbeResult notHttp = fetch(probe, garbage.url());
        QCOMPARE(int(notHttp.failure), int(ProbeResult::Failure::Other));
        QVERIFY2(notHttp.error.contains(QLatin1String("not an HTTP answer")),
                 qPrintable(notHttp.error));

        const QByteArray big(HttpProbe::kMaxBodyBytes * 2, 'x');
        RawServer huge({ "HTTP/1.1 200 OK\r\nContent-Length: " + QByteArray::number(big.size()) +
                         "\r\n\r\n" + big });
        const ProbeResult truncated = fetch(probe, huge.url());
        QCOMPARE(truncated.status, 200);
        QCOMPARE(truncated.body.size(), HttpProbe::kMaxBodyBytes);

        RawServer badChunks({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\nokXX0\r\n\r\n" });
        const ProbeResult chunks = fetch(probe, badChunks.url());
        QCOMPARE(int(chunks.failure), int(ProbeResult::Failure::Other));
        QVERIFY(chunks.error.contains(QLatin1String("chunked")));

        RawServer moved(
            { "HTTP/1.1 301 Moved\r\nLocation: https://x/readyz\r\nContent-Length: 0\r\n\r\n" });
        const ProbeResult redirect = fetch(probe, moved.url());
        QCOMPARE(redirect.status, 301);
        QCOMPARE(redirect.location, QByteArray("https://x/readyz"));
    }

    void abortedRequestsNeverAnswer()
    {
        // A server that never answers; the caller gives up.
        QTcpServer silent;
        QVERIFY(silent.listen(QHostAddress::LocalHost));
        HttpProbe probe;
        bool called = false;
        const quint64 ticket =
            probe.get(QUrl(QStringLiteral("http://127.0.0.1:%1/").arg(silent.serverPort())), "*/*",
                      [&called](const ProbeResult &) { called = true; });
        QTRY_VERIFY(silent.hasPendingConnections() || probe.openConnections() == 1);
        probe.abort(ticket);
        QCOMPARE(probe.openConnections(), 0);
        // Still nothing after the server would have had time to do anything.
        QVERIFY(!QTest::qWaitFor([&called] { return called; }, 300));
    }

    void cleanupTestCase() { m_deckhand.reset(); }
};

QTEST_GUILESS_MAIN(TestProbe)
#include "tst_probe.moc"
