#include "requestparser.h"

#include <algorithm>
#include <array>

namespace deckhand::http {

namespace {

// RFC 9110 5.6.2 token characters: what a method and a field name consist of.
bool isTokenChar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        QByteArrayView("!#$%&'*+-.^_`|~").contains(c);
}

bool isToken(QByteArrayView text)
{
    return !text.isEmpty() && std::all_of(text.begin(), text.end(), isTokenChar);
}

// RFC 9110 5.5: a field value is visible characters, spaces and tabs (and
// obs-text); NUL, a lone CR, the other C0 controls and DEL are refused, not
// passed on to code that may cut or split at them. The request line has no
// tabs either.
bool hasControl(QByteArrayView text, bool tabAllowed)
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

// Case-insensitive equality with a lower-case ASCII literal, length first.
template<qsizetype N> bool is(QByteArrayView text, const char (&lower)[N])
{
    if (text.size() != N - 1)
        return false;
    for (qsizetype i = 0; i < N - 1; ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            c = char(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return true;
}

// Spaces and tabs around a field value are not part of it (RFC 9112 5.1).
QByteArrayView trimmedValue(QByteArrayView v)
{
    while (!v.isEmpty() && (v.front() == ' ' || v.front() == '\t'))
        v = v.sliced(1);
    while (!v.isEmpty() && (v.back() == ' ' || v.back() == '\t'))
        v.chop(1);
    return v;
}

// The first LF in text[from..to) not preceded by a CR, or -1.
qsizetype bareLineFeed(QByteArrayView text, qsizetype from, qsizetype to)
{
    for (qsizetype i = text.indexOf('\n', from); i >= 0 && i < to; i = text.indexOf('\n', i + 1)) {
        if (i == 0 || text[i - 1] != '\r')
            return i;
    }
    return -1;
}

ParseResult refuse(ParseResult r, int status, QString message)
{
    r.status = ParseResult::Status::Refused;
    r.refusal = status;
    r.message = std::move(message);
    return r;
}

bool knownMethod(QByteArrayView method)
{
    static constexpr std::array<const char *, 7> kMethods { "GET",    "HEAD",    "POST", "PUT",
                                                            "DELETE", "OPTIONS", "PATCH" };
    return std::any_of(kMethods.begin(), kMethods.end(),
                       [&](const char *m) { return method == m; });
}

bool validTarget(QByteArrayView method, QByteArrayView target)
{
    if (target.startsWith('/'))
        return true; // origin-form
    if (target == "*")
        return method == "OPTIONS"; // asterisk-form
    // absolute-form, as sent to a proxy (RFC 9112 3.2.2); the path is used.
    const auto scheme = [&](QByteArrayView prefix) {
        return target.size() > prefix.size() &&
            target.first(prefix.size()).compare(prefix, Qt::CaseInsensitive) == 0;
    };
    return scheme("http://") || scheme("https://");
}

// The complete empty lines (CRLF) at the start, at most two.
qsizetype skipEmptyLines(QByteArrayView buffer)
{
    qsizetype start = 0;
    while (start < 2 * kMaxLeadingEmptyLines && start + 1 < buffer.size() &&
           buffer[start] == '\r' && buffer[start + 1] == '\n')
        start += 2;
    return start;
}
} // namespace

qsizetype leadingEmptyLines(QByteArrayView buffer)
{
    qsizetype start = skipEmptyLines(buffer);
    // A CR whose LF is still on its way.
    if (start < 2 * kMaxLeadingEmptyLines && start + 1 == buffer.size() && buffer[start] == '\r')
        ++start;
    return start;
}

ParseResult parseRequest(QByteArrayView buffer, const ParserLimits &limits, qsizetype resumeAt)
{
    ParseResult r;
    const qsizetype start = skipEmptyLines(buffer);
    if (start == buffer.size())
        return r; // empty lines alone so far

    const qsizetype from = std::max(start, resumeAt);
    const qsizetype end = buffer.indexOf("\r\n\r\n", from);
    const qsizetype scanned = end < 0 ? buffer.size() : end + 4;
    // Someone else's parser would take a lone LF as a line end: refused at
    // once, whole head or not, rather than disagree on where it ends.
    if (bareLineFeed(buffer, from, scanned) >= 0)
        return refuse(r, 400, QStringLiteral("header lines must end in CRLF, not a bare LF"));
    const auto tooLarge = [&] {
        return refuse(
            r, 431,
            QStringLiteral("request headers exceed %1 KiB").arg(limits.maxHeaderBytes / 1024.0));
    };
    if (end < 0) {
        // The head (with its CRLF) could still end within the limit only
        // while fewer than limit + 2 bytes of it are here.
        if (buffer.size() - start >= limits.maxHeaderBytes + 2)
            return tooLarge();
        r.resumeAt = std::max(start, buffer.size() - 3);
        return r;
    }
    if (end + 2 - start > limits.maxHeaderBytes)
        return tooLarge();

    // The request line: method SP request-target SP HTTP-version.
    const QByteArrayView head = buffer.sliced(start, end + 2 - start);
    const qsizetype lineEnd = head.indexOf("\r\n");
    const QByteArrayView line = head.first(lineEnd);
    const qsizetype sp1 = line.indexOf(' ');
    const qsizetype sp2 = sp1 > 0 ? line.lastIndexOf(' ') : -1;
    if (sp1 <= 0 || sp2 <= sp1 + 1 || line.sliced(sp1 + 1, sp2 - sp1 - 1).contains(' ') ||
        hasControl(line, false) || !isToken(line.first(sp1)))
        return refuse(
            r, 400,
            QStringLiteral("malformed request line; expected e.g. \"GET /livez HTTP/1.1\""));
    const QByteArrayView method = line.first(sp1);
    const QByteArrayView target = line.sliced(sp1 + 1, sp2 - sp1 - 1);
    const QByteArrayView version = line.sliced(sp2 + 1);
    r.head.target = target;
    if (!knownMethod(method))
        return refuse(r, 501,
                      QStringLiteral("method not implemented; deckhand serves GET, HEAD and POST"));
    r.head.method = method;
    if (version.size() != 8 || !version.startsWith("HTTP/") || version[6] != '.' ||
        !isDigits(version.sliced(5, 1)) || !isDigits(version.sliced(7, 1)))
        return refuse(
            r, 400,
            QStringLiteral("malformed request line; expected e.g. \"GET /livez HTTP/1.1\""));
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return refuse(r, 505, QStringLiteral("only HTTP/1.0 and HTTP/1.1 are served"));
    r.head.version = version;
    if (!validTarget(method, target))
        return refuse(r, 400,
                      QStringLiteral("malformed request target; expected a path such as /livez"));

    bool close = false;
    bool keepAlive = false;
    bool haveLength = false;
    bool haveHost = false;
    bool haveType = false;
    bool haveAuthorization = false;
    for (qsizetype at = lineEnd + 2; at < head.size();) {
        const qsizetype next = head.indexOf("\r\n", at);
        const QByteArrayView field = head.sliced(at, next - at);
        at = next + 2;
        if (field.front() == ' ' || field.front() == '\t')
            return refuse(r, 400,
                          QStringLiteral("a header line starts with whitespace (obs-fold, RFC "
                                         "9112 5.2); send each field on one line"));
        const qsizetype colon = field.indexOf(':');
        const QByteArrayView name = colon > 0 ? field.first(colon) : QByteArrayView();
        if (!isToken(name))
            return refuse(r, 400, QStringLiteral("malformed header line"));
        const QByteArrayView raw = field.sliced(colon + 1);
        if (hasControl(raw, true))
            return refuse(
                r, 400,
                QStringLiteral("header field \"%1\" has a control character in its "
                               "value (NUL, CR, another C0 control or DEL); only "
                               "visible characters, spaces and tabs are accepted")
                    .arg(QString::fromLatin1(name.first(std::min<qsizetype>(name.size(), 64)))));
        const QByteArrayView value = trimmedValue(raw);
        const auto once = [&](bool &seen) {
            const bool first = !seen;
            seen = true;
            return first;
        };
        const auto duplicate = [&] {
            return refuse(r, 400,
                          QStringLiteral("the header field \"%1\" is sent twice; send it once")
                              .arg(QString::fromLatin1(name)));
        };
        switch (name.size()) { // by length first: most fields are none of these
        case 4:
            if (is(name, "host") && !once(haveHost))
                return duplicate();
            break;
        case 6:
            if (is(name, "expect")) {
                if (!is(value, "100-continue"))
                    return refuse(r, 417,
                                  QStringLiteral("only \"Expect: 100-continue\" is understood"));
                r.head.expectContinue = true;
            }
            break;
        case 10:
            if (is(name, "connection")) {
                // A list of options (RFC 9110 7.6.1); "close" wins.
                for (qsizetype optionAt = 0; optionAt <= value.size();) {
                    qsizetype comma = value.indexOf(',', optionAt);
                    if (comma < 0)
                        comma = value.size();
                    const QByteArrayView option =
                        trimmedValue(value.sliced(optionAt, comma - optionAt));
                    close = close || is(option, "close");
                    keepAlive = keepAlive || is(option, "keep-alive");
                    optionAt = comma + 1;
                }
            }
            break;
        case 12:
            if (is(name, "content-type")) {
                if (!once(haveType))
                    return duplicate();
                r.head.contentType = value;
            } else if (is(name, "x-request-id") && r.head.requestId.isEmpty()) {
                r.head.requestId = value;
            }
            break;
        case 13:
            if (is(name, "authorization")) {
                if (!once(haveAuthorization))
                    return duplicate();
                r.head.authorization = value;
            }
            break;
        case 14:
            if (is(name, "content-length")) {
                const qint64 n = isDigits(value) && value.size() <= 18 ? value.toLongLong() : -1;
                if (n < 0 || (haveLength && n != r.head.contentLength))
                    return refuse(r, 400, QStringLiteral("invalid Content-Length"));
                r.head.contentLength = n;
                haveLength = true;
            }
            break;
        case 17:
            if (is(name, "transfer-encoding"))
                return refuse(r, 411,
                              QStringLiteral("send the body with a Content-Length header; "
                                             "Transfer-Encoding is not accepted"));
            break;
        default:
            break;
        }
    }
    if (r.head.contentLength > limits.maxBodyBytes)
        return refuse(r, 413,
                      QStringLiteral("request body of %1 bytes exceeds the %2 KiB limit")
                          .arg(r.head.contentLength)
                          .arg(limits.maxBodyBytes / 1024));
    r.head.keepAlive = !close && (version == "HTTP/1.1" || keepAlive);
    r.headComplete = true;
    r.bodyOffset = end + 4;
    r.frameSize = r.bodyOffset + r.head.contentLength;
    r.status = buffer.size() >= r.frameSize ? ParseResult::Status::Complete
                                            : ParseResult::Status::NeedMore;
    return r;
}

} // namespace deckhand::http
