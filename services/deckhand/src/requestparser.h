#pragma once

#include <QByteArrayView>
#include <QString>

// deckhand's one HTTP/1.1 request framer (RFC 9110, 9112): a pure function
// over the bytes a connection has received, which tells whether they start
// with a whole request, how long that request is, or why it is refused.
// Nothing else in deckhand looks at request bytes, so no two parsers can
// disagree on where a request ends.
namespace deckhand::http {

struct ParserLimits
{
    int maxHeaderBytes = 16 * 1024; // request line and fields, without the empty line
    qint64 maxBodyBytes = 1024 * 1024;
};

// What the head says. Views point into the buffer given to parseRequest().
struct RequestHead
{
    QByteArrayView method;
    QByteArrayView target;
    QByteArrayView version;
    QByteArrayView contentType;
    QByteArrayView authorization;
    QByteArrayView requestId; // the first X-Request-ID, as sent
    qint64 contentLength = 0;
    bool keepAlive = true;
    bool expectContinue = false; // "Expect: 100-continue"
};

struct ParseResult
{
    enum class Status {
        NeedMore, // no whole request yet; nothing wrong so far
        Complete, // a whole request: frameSize bytes
        Refused, // not a request deckhand serves: answer `status`, then close
    };
    Status status = Status::NeedMore;
    RequestHead head; // Complete; NeedMore once headComplete; Refused as far as it was read
    bool headComplete = false;
    // Complete, or NeedMore once the head is complete: the bytes the request
    // takes, from the buffer's start (empty lines before it, head, body).
    qsizetype frameSize = 0;
    qsizetype bodyOffset = 0; // where the body starts
    // NeedMore before the head is complete: the next call may start looking
    // for the head's end here, since nothing before it can change the answer.
    qsizetype resumeAt = 0;
    int refusal = 0; // the HTTP status for Refused
    QString message; // for Refused: what is wrong and what to send instead

    QByteArrayView body(QByteArrayView buffer) const
    {
        return buffer.sliced(bodyOffset, frameSize - bodyOffset);
    }
};

// Up to two empty lines (CRLF) before a request line are skipped (RFC 9112
// 2.2); more are the start of a malformed request.
inline constexpr int kMaxLeadingEmptyLines = 2;

// The bytes of the empty lines at the buffer's start that parseRequest()
// skips: when that is the whole buffer, no request has begun.
qsizetype leadingEmptyLines(QByteArrayView buffer);

// Frames the request at the start of `buffer`. `resumeAt` is the previous
// NeedMore result's, for the same buffer grown at its end (0 for a new one);
// it keeps a head that arrives byte by byte from being searched again each
// time. Refusals: 400 (malformed line, bare LF, obs-fold, control character,
// bad or conflicting Content-Length, duplicate Host, Content-Type or
// Authorization), 411 (Transfer-Encoding), 413, 417, 431, 501 (method), 505.
ParseResult parseRequest(QByteArrayView buffer, const ParserLimits &limits, qsizetype resumeAt = 0);

} // namespace deckhand::http
