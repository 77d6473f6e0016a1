// deckhand's HTTP/1.1 request framer, byte by byte: every split point of a
// set of requests, pipelined sequences cut anywhere, and each refusal.
#include "requestparser.h"

#include <QTest>

using deckhand::http::parseRequest;
using deckhand::http::ParseResult;
using deckhand::http::ParserLimits;
using Status = ParseResult::Status;

namespace {

// One framed request, copied out of the buffer it was parsed from.
struct Framed
{
    QByteArray method;
    QByteArray target;
    QByteArray body;
    QByteArray requestId;
    bool keepAlive = true;
    bool operator==(const Framed &o) const
    {
        return method == o.method && target == o.target && body == o.body &&
            requestId == o.requestId && keepAlive == o.keepAlive;
    }
};

char *toString(const Framed &f)
{
    const QByteArray text = f.method + ' ' + f.target + " body=" + f.body + " id=" + f.requestId +
        (f.keepAlive ? " keep-alive" : " close");
    return qstrdup(text.constData());
}

// Drives the parser as a connection does: bytes arrive in the given pieces,
// each parse call resumes where the last one left off, and every whole
// request is taken off the front. Stops at the first refusal.
struct Outcome
{
    QList<Framed> requests;
    int refusal = 0;
    QString message;
    qsizetype leftOver = 0;
};

Outcome drive(const QList<QByteArray> &pieces, const ParserLimits &limits = {})
{
    Outcome out;
    QByteArray buffer;
    qsizetype resumeAt = 0;
    for (const QByteArray &piece : pieces) {
        buffer += piece;
        for (;;) {
            const ParseResult r = parseRequest(buffer, limits, resumeAt);
            if (r.status == Status::Refused) {
                out.refusal = r.refusal;
                out.message = r.message;
                return out;
            }
            if (r.status == Status::NeedMore) {
                resumeAt = r.headComplete ? 0 : r.resumeAt;
                break;
            }
            out.requests.append({ r.head.method.toByteArray(), r.head.target.toByteArray(),
                                  r.body(buffer).toByteArray(), r.head.requestId.toByteArray(),
                                  r.head.keepAlive });
            buffer.remove(0, r.frameSize);
            resumeAt = 0;
        }
    }
    out.leftOver = buffer.size();
    return out;
}

QList<QByteArray> bytewise(const QByteArray &bytes)
{
    QList<QByteArray> pieces;
    for (char c : bytes)
        pieces.append(QByteArray(1, c));
    return pieces;
}

const QByteArray kLivez = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
const QByteArray kPost = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "X-Request-ID: job-1\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\\n\"}";

} // namespace

class TestRequestParser : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void wholeRequestsAtEverySplitPoint_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<Framed>("expected");
        QTest::newRow("GET") << kLivez << Framed { "GET", "/livez", {}, {}, true };
        QTest::newRow("POST with a body")
            << kPost << Framed { "POST", "/v1/jobs", "{\"a\":\"b\\n\"}", "job-1", true };
        QTest::newRow("HTTP/1.0") << QByteArray("GET /version HTTP/1.0\r\n\r\n")
                                  << Framed { "GET", "/version", {}, {}, false };
        QTest::newRow("HTTP/1.0 keep-alive")
            << QByteArray("HEAD /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            << Framed { "HEAD", "/health", {}, {}, true };
        QTest::newRow("close among options")
            << QByteArray("GET /livez HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")
            << Framed { "GET", "/livez", {}, {}, false };
        QTest::newRow("two empty lines first")
            << QByteArray("\r\n\r\n" + kLivez) << Framed { "GET", "/livez", {}, {}, true };
        QTest::newRow("absolute-form")
            << QByteArray("GET http://deckhand:8000/readyz?x=1 HTTP/1.1\r\nHost: deckhand\r\n\r\n")
            << Framed { "GET", "http://deckhand:8000/readyz?x=1", {}, {}, true };
        QTest::newRow("tab and obs-text in a value, spaces around it")
            << QByteArray("GET /livez HTTP/1.1\r\nX-Request-ID:  r-2 \t\r\nX-Note: a\tcaf\xc3\xa9"
                          "\r\n\r\n")
            << Framed { "GET", "/livez", {}, "r-2", true };
        QTest::newRow("same Content-Length twice")
            << QByteArray("POST /v1/jobs HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: "
                          "2\r\n\r\n{}")
            << Framed { "POST", "/v1/jobs", "{}", {}, true };
        QTest::newRow("Expect: 100-continue")
            << QByteArray("POST /v1/jobs HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: "
                          "2\r\n\r\n{}")
            << Framed { "POST", "/v1/jobs", "{}", {}, true };
    }

    // Every prefix is "need more", never a refusal nor a request; the whole
    // is one request; fed byte by byte with resumption the same.
    void wholeRequestsAtEverySplitPoint()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(Framed, expected);
        for (qsizetype cut = 0; cut < bytes.size(); ++cut) {
            const ParseResult r = parseRequest(bytes.first(cut), {});
            QVERIFY2(r.status == Status::NeedMore, qPrintable(QStringLiteral("at %1").arg(cut)));
            // Two pieces, the second parse resuming where the first stopped.
            const Outcome two = drive({ bytes.first(cut), bytes.sliced(cut) });
            QCOMPARE(two.refusal, 0);
            QCOMPARE(two.requests, QList<Framed> { expected });
            QCOMPARE(two.leftOver, 0);
        }
        const ParseResult whole = parseRequest(bytes, {});
        QVERIFY(whole.status == Status::Complete);
        QCOMPARE(whole.frameSize, bytes.size());
        const Outcome single = drive(bytewise(bytes));
        QCOMPARE(single.refusal, 0);
        QCOMPARE(single.requests, QList<Framed> { expected });
    }

    void headTellsTheFrameBeforeTheBodyArrives()
    {
        const qsizetype headEnd = kPost.indexOf("\r\n\r\n") + 4;
        const ParseResult r = parseRequest(kPost.first(headEnd + 3), {});
        QVERIFY(r.status == Status::NeedMore);
        QVERIFY(r.headComplete);
        QCOMPARE(r.frameSize, kPost.size());
        QCOMPARE(r.head.contentLength, 11);
        QCOMPARE(r.head.contentType, QByteArrayView("application/json"));
        const ParseResult expect = parseRequest(
            "POST /v1/jobs HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", {});
        QVERIFY(expect.headComplete && expect.head.expectContinue);
    }

    // Requests sent back to back, cut into two writes at every point, and
    // byte by byte: framed in order, nothing lost, nothing left over.
    void pipelinedSequences_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QList<QByteArray>>("targets");
        const QByteArray version = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
        QTest::newRow("three GETs")
            << kLivez + version + kLivez << QList<QByteArray> { "/livez", "/version", "/livez" };
        QTest::newRow("bodies between") << kPost + kLivez + kPost +
                version << QList<QByteArray> { "/v1/jobs", "/livez", "/v1/jobs", "/version" };
        QTest::newRow("empty lines between") << kLivez + "\r\n" + version + "\r\n\r\n" +
                kLivez << QList<QByteArray> { "/livez", "/version", "/livez" };
    }
    void pipelinedSequences()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QList<QByteArray>, targets);
        const auto targetsOf = [](const Outcome &o) {
            QList<QByteArray> t;
            for (const Framed &f : o.requests)
                t << f.target;
            return t;
        };
        for (qsizetype cut = 0; cut <= bytes.size(); ++cut) {
            const Outcome o = drive({ bytes.first(cut), bytes.sliced(cut) });
            QCOMPARE(o.refusal, 0);
            QCOMPARE(targetsOf(o), targets);
            QCOMPARE(o.leftOver, 0);
        }
        const Outcome o = drive(bytewise(bytes));
        QCOMPARE(targetsOf(o), targets);
        QCOMPARE(o.requests.value(0).method, targets.first() == "/v1/jobs" ? "POST" : "GET");
    }

    void refusals_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<int>("status");
        QTest::addColumn<QString>("says");
        const auto field = [](const QByteArray &line) -> QByteArray {
            return QByteArray("GET /livez HTTP/1.1\r\nHost: x\r\n") + line + "\r\n\r\n";
        };
        QTest::newRow("not HTTP") << QByteArray("this is not http\r\n\r\n") << 400
                                  << "malformed request line";
        QTest::newRow("two spaces")
            << QByteArray("GET  /livez HTTP/1.1\r\n\r\n") << 400 << "malformed request line";
        QTest::newRow("control in the request line")
            << QByteArray("GET /livez\x01 HTTP/1.1\r\n\r\n") << 400 << "malformed request line";
        QTest::newRow("tab in the request line")
            << QByteArray("GET\t/livez HTTP/1.1\r\n\r\n") << 400 << "malformed request line";
        QTest::newRow("target not a path")
            << QByteArray("GET livez HTTP/1.1\r\n\r\n") << 400 << "request target";
        QTest::newRow("version garbage")
            << QByteArray("GET /livez HTTP/one\r\n\r\n") << 400 << "malformed request line";
        QTest::newRow("HTTP/2.0") << QByteArray("GET /livez HTTP/2.0\r\n\r\n") << 505
                                  << "HTTP/1.0 and HTTP/1.1";
        QTest::newRow("unknown method")
            << QByteArray("BREW /pot HTTP/1.1\r\n\r\n") << 501 << "not implemented";
        QTest::newRow("CONNECT") << QByteArray("CONNECT a:443 HTTP/1.1\r\n\r\n") << 501
                                 << "not implemented";
        QTest::newRow("bare LF") << QByteArray("GET /livez HTTP/1.1\nHost: x\n\n") << 400
                                 << "bare LF";
        QTest::newRow("bare LF in a field") << field("X-A: b\nX-C: d") << 400 << "bare LF";
        QTest::newRow("five line ends first")
            << QByteArray("\r\n\r\n\r\n" + kLivez) << 400 << "malformed request line";
        QTest::newRow("bare LF empty lines first")
            << QByteArray("\n\n" + kLivez) << 400 << "bare LF";
        QTest::newRow("obs-fold") << field("X-A: b\r\n c") << 400 << "obs-fold";
        QTest::newRow("space before colon") << field("Host : x") << 400 << "malformed header";
        QTest::newRow("no colon") << field("Hostx") << 400 << "malformed header";
        QTest::newRow("NUL in a value")
            << field(QByteArray("X-A: a\0b", 8)) << 400 << "control character";
        QTest::newRow("lone CR in a value") << field("X-A: a\rb") << 400 << "control character";
        QTest::newRow("ESC in a value") << field("X-A: \x1b[31m") << 400 << "control character";
        QTest::newRow("DEL in a value") << field("X-A: a\x7f") << 400 << "control character";
        QTest::newRow("signed length") << field("Content-Length: +5") << 400 << "Content-Length";
        QTest::newRow("length list") << field("Content-Length: 5, 5") << 400 << "Content-Length";
        QTest::newRow("conflicting lengths")
            << field("Content-Length: 5\r\nContent-Length: 6") << 400 << "Content-Length";
        QTest::newRow("huge length")
            << field("Content-Length: 9999999999999999999") << 400 << "Content-Length";
        QTest::newRow("chunked") << field("Transfer-Encoding: chunked") << 411 << "Content-Length";
        QTest::newRow("chunked with a length")
            << field("Content-Length: 3\r\nTransfer-Encoding: chunked") << 411 << "Content-Length";
        QTest::newRow("two Hosts") << field("Host: y") << 400 << "sent twice";
        QTest::newRow("two Authorizations")
            << field("Authorization: Bearer a\r\nAuthorization: Bearer b") << 400 << "sent twice";
        QTest::newRow("unknown expectation") << field("Expect: 200-ok") << 417 << "100-continue";
        QTest::newRow("body too large") << field("Content-Length: 1048577") << 413 << "limit";
        QTest::newRow("headers too large")
            << field("X-Big: " + QByteArray(17 * 1024, 'h')) << 431 << "16 KiB";
    }

    // Refused as soon as the bytes show it, never framed as a request first,
    // wherever the bytes are cut.
    void refusals()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(int, status);
        QFETCH(QString, says);
        const Outcome whole = drive({ bytes });
        QCOMPARE(whole.refusal, status);
        QVERIFY2(whole.message.contains(says), qPrintable(whole.message));
        QVERIFY(whole.requests.isEmpty());
        const qsizetype step = std::max<qsizetype>(1, bytes.size() / 64);
        for (qsizetype cut = 0; cut <= bytes.size(); cut += step) {
            const Outcome two = drive({ bytes.first(cut), bytes.sliced(cut) });
            QCOMPARE(two.refusal, status);
            QVERIFY(two.requests.isEmpty());
        }
    }

    void refusedRequestsSayWhatWasRead()
    {
        // 501: the target, for the log; the method is not one to count under.
        ParseResult r = parseRequest("BREW /livez HTTP/1.1\r\n\r\n", {});
        QCOMPARE(r.head.target, QByteArrayView("/livez"));
        QVERIFY(r.head.method.isEmpty());
        // A field refused after X-Request-ID: the caller's id is known.
        r = parseRequest("GET /x HTTP/1.1\r\nX-Request-ID: mine\r\nTransfer-Encoding: "
                         "chunked\r\n\r\n",
                         {});
        QCOMPARE(r.refusal, 411);
        QCOMPARE(r.head.method, QByteArrayView("GET"));
        QCOMPARE(r.head.requestId, QByteArrayView("mine"));
    }

    // A bare LF is refused at once, before the head could end.
    void bareLineFeedIsRefusedBeforeTheHeadEnds()
    {
        const Outcome o = drive({ "GET /livez HTTP/1.1\r\nHo", "st: x\n" });
        QCOMPARE(o.refusal, 400);
    }

    void emptyLinesBeforeARequest()
    {
        using deckhand::http::leadingEmptyLines;
        QCOMPARE(leadingEmptyLines("\r\n\r\nGET"), 4);
        QCOMPARE(leadingEmptyLines("\r\n\r"), 3); // its LF may follow
        QCOMPARE(leadingEmptyLines("\r\n\r\n\r\n"), 4); // a third is a malformed request
        QCOMPARE(leadingEmptyLines("\n"), 0);
        QCOMPARE(leadingEmptyLines("\rX"), 0);
        QVERIFY(parseRequest("\r\n\r", {}).status == Status::NeedMore);
    }

    void headerLimitIsExact()
    {
        const ParserLimits limits { 64, 1024 };
        // Request line and fields with their CRLFs: exactly 64 bytes.
        const QByteArray line = "GET /livez HTTP/1.1\r\n"; // 21
        const QByteArray atLimit = line + "X-A: " + QByteArray(64 - 21 - 7, 'a') + "\r\n";
        QCOMPARE(atLimit.size(), 64);
        QVERIFY(parseRequest(QByteArray(atLimit + "\r\n"), limits).status == Status::Complete);
        const QByteArray over = line + "X-A: " + QByteArray(64 - 21 - 6, 'a') + "\r\n";
        QCOMPARE(parseRequest(QByteArray(over + "\r\n"), limits).refusal, 431);
        // Incomplete: refused once it can no longer end within the limit.
        QVERIFY(parseRequest(QByteArray(atLimit + "\r"), limits).status == Status::NeedMore);
        QCOMPARE(parseRequest(QByteArray(over + "\r"), limits).refusal, 431);
        QCOMPARE(parseRequest(QByteArray(66, 'a'), limits).refusal, 431);
        QVERIFY(parseRequest(QByteArray(65, 'a'), limits).status == Status::NeedMore);
    }

    // A head that arrives a byte at a time is not searched from its start
    // each time: the resume point moves along with it.
    void resumePointAdvances()
    {
        QByteArray buffer;
        qsizetype resumeAt = 0;
        const QByteArray head = "GET /livez HTTP/1.1\r\nX-Pad: " + QByteArray(1000, 'p');
        for (char c : head) {
            buffer += c;
            const ParseResult r = parseRequest(buffer, {}, resumeAt);
            QVERIFY(r.status == Status::NeedMore);
            QVERIFY(r.resumeAt >= resumeAt);
            QVERIFY(r.resumeAt >= buffer.size() - 3);
            resumeAt = r.resumeAt;
        }
    }
};

QTEST_APPLESS_MAIN(TestRequestParser)
#include "tst_requestparser.moc"
