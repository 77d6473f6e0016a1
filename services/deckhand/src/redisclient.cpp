#include "redisclient.h"

#include <QElapsedTimer>
#include <cerrno>
#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <vector>

namespace deckhand {

namespace {
timeval toTimeval(int ms)
{
    timeval tv {};
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}
} // namespace

RedisClient::RedisClient(const RedisUrl &url, int timeoutMs)
    : m_url(url)
    , m_timeoutMs(timeoutMs)
{ }

RedisClient::~RedisClient()
{
    disconnect();
}

void RedisClient::disconnect()
{
    if (m_context) {
        redisFree(m_context);
        m_context = nullptr;
    }
}

Error RedisClient::dropWith(const QString &what)
{
    disconnect();
    return Error { what };
}

Outcome RedisClient::connect()
{
    if (m_context)
        return success();
    const QByteArray host = m_url.host.toUtf8();
    redisContext *c = redisConnectWithTimeout(host.constData(), m_url.port, toTimeval(m_timeoutMs));
    if (!c)
        return Error { QStringLiteral("cannot allocate a Redis connection") };
    if (c->err) {
        const QString why = QString::fromLocal8Bit(c->errstr);
        redisFree(c);
        return Error { QStringLiteral("cannot connect to %1: %2").arg(m_url.redacted(), why) };
    }
    m_context = c;
    if (!m_url.password.isEmpty()) {
        QList<QByteArray> auth { "AUTH" };
        if (!m_url.username.isEmpty())
            auth << m_url.username.toUtf8();
        auth << m_url.password.toUtf8();
        auto r = commandOnce(auth, m_timeoutMs);
        if (!r)
            return dropWith(QStringLiteral("Redis authentication failed: %1").arg(r.error()));
    }
    if (m_url.db != 0) {
        auto r = commandOnce({ "SELECT", QByteArray::number(m_url.db) }, m_timeoutMs);
        if (!r)
            return dropWith(
                QStringLiteral("Redis SELECT %1 failed: %2").arg(m_url.db).arg(r.error()));
    }
    if (m_serverVersion.isEmpty()) {
        auto info = commandOnce({ "INFO", "server" }, m_timeoutMs);
        if (!info && !m_context) // the connection died under us: not connected
            return Error { info.error() };
        if (info) {
            for (const QByteArray &line : info->string.split('\n')) {
                if (line.startsWith("redis_version:"))
                    m_serverVersion =
                        QStringLiteral("Redis ") + QString::fromLatin1(line.mid(14).trimmed());
            }
        }
    }
    return success();
}

Expected<RedisClient::Reply> RedisClient::command(const QList<QByteArray> &args, int timeoutMs)
{
    const bool reused = m_context != nullptr;
    auto reply = commandOnce(args, timeoutMs);
    // A connection that sat idle may have died unseen (server restart):
    // one retry on a fresh connection. Protocol errors are not retried, and
    // neither is a write that timed out: the server may have done it, and a
    // second LPUSH would queue the job twice.
    if (!reply && reused && !m_context && (isIdempotent(args.value(0)) || !m_timedOut))
        reply = commandOnce(args, timeoutMs);
    return reply;
}

QString RedisClient::typeName(Reply::Type type)
{
    switch (type) {
    case Reply::Type::Nil:
        return QStringLiteral("nil");
    case Reply::Type::Integer:
        return QStringLiteral("an integer");
    case Reply::Type::String:
        return QStringLiteral("a string");
    case Reply::Type::Status:
        return QStringLiteral("a status");
    case Reply::Type::Array:
        return QStringLiteral("an array");
    }
    return QStringLiteral("something else");
}

bool RedisClient::isIdempotent(const QByteArray &command)
{
    // Reads, and writes whose repetition changes nothing (set semantics, SET
    // of the same value, DEL, LREM of every copy).
    static const QByteArrayList safe { "PING", "LLEN", "EXISTS", "SMEMBERS", "SET",
                                       "DEL",  "SADD", "SREM",   "LREM" };
    return safe.contains(command.toUpper());
}

Expected<RedisClient::Reply> RedisClient::commandOnce(const QList<QByteArray> &args, int timeoutMs)
{
    m_timedOut = false;
    if (!m_context) {
        if (auto r = connect(); !r)
            return Error { r.error() };
        if (!m_context)
            return Error { QStringLiteral("Redis closed the connection") };
    }
    redisSetTimeout(m_context, toTimeval(timeoutMs));
    std::vector<const char *> argv;
    std::vector<size_t> lengths;
    for (const QByteArray &a : args) {
        argv.push_back(a.constData());
        lengths.push_back(size_t(a.size()));
    }
    auto *raw = static_cast<redisReply *>(
        redisCommandArgv(m_context, int(argv.size()), argv.data(), lengths.data()));
    if (!raw) {
        const int savedErrno = errno;
        // hiredis 0.14 says a timeout as an I/O error with EAGAIN.
        m_timedOut = m_context->err == REDIS_ERR_IO &&
            (savedErrno == EAGAIN || savedErrno == EWOULDBLOCK ||
             QByteArray(m_context->errstr).contains("temporarily unavailable"));
        const QString why =
            m_context->err ? QString::fromLocal8Bit(m_context->errstr) : QStringLiteral("no reply");
        return dropWith(
            QStringLiteral("Redis %1 failed: %2").arg(QString::fromLatin1(args.value(0)), why));
    }
    Reply reply;
    QString error;
    switch (raw->type) {
    case REDIS_REPLY_NIL:
        reply.type = Reply::Type::Nil;
        break;
    case REDIS_REPLY_INTEGER:
        reply.type = Reply::Type::Integer;
        reply.integer = raw->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        reply.type = raw->type == REDIS_REPLY_STRING ? Reply::Type::String : Reply::Type::Status;
        reply.string = QByteArray(raw->str, qsizetype(raw->len));
        break;
    case REDIS_REPLY_ARRAY:
        reply.type = Reply::Type::Array;
        for (size_t i = 0; i < raw->elements; ++i) {
            const redisReply *e = raw->element[i];
            reply.elements << (e && e->str ? QByteArray(e->str, qsizetype(e->len)) : QByteArray());
        }
        break;
    case REDIS_REPLY_ERROR:
        error = QString::fromUtf8(raw->str, qsizetype(raw->len));
        break;
    default:
        break;
    }
    freeReplyObject(raw);
    if (!error.isEmpty())
        return Error {
            QStringLiteral("Redis %1: %2").arg(QString::fromLatin1(args.value(0)), error)
        };
    return reply;
}

Expected<qint64> RedisClient::integer(const QList<QByteArray> &args)
{
    auto r = command(args, m_timeoutMs);
    if (!r)
        return Error { r.error() };
    // Every reply's type is checked: a proxy or a wrong server answering
    // something else is an error, not a zero.
    if (r->type != Reply::Type::Integer)
        return Error { QStringLiteral("Redis %1 answered %2, not an integer")
                           .arg(QString::fromLatin1(args.value(0)), typeName(r->type)) };
    return r->integer;
}

Expected<double> RedisClient::ping()
{
    QElapsedTimer timer;
    timer.start();
    auto r = command({ "PING" }, m_timeoutMs);
    if (!r)
        return Error { r.error() };
    if (r->type != Reply::Type::Status || r->string != "PONG")
        return Error { QStringLiteral("unexpected PING reply (%1)").arg(typeName(r->type)) };
    return double(timer.nsecsElapsed()) / 1e6;
}

Expected<qint64> RedisClient::lpush(const QByteArray &key, const QByteArray &value)
{
    return integer({ "LPUSH", key, value });
}

Expected<qint64> RedisClient::rpush(const QByteArray &key, const QByteArray &value)
{
    return integer({ "RPUSH", key, value });
}

Expected<qint64> RedisClient::llen(const QByteArray &key)
{
    return integer({ "LLEN", key });
}

Expected<std::optional<QByteArray>>
RedisClient::blmove(const QByteArray &source, const QByteArray &destination, int timeoutSeconds)
{
    auto r = command(
        { "BLMOVE", source, destination, "RIGHT", "LEFT", QByteArray::number(timeoutSeconds) },
        timeoutSeconds * 1000 + m_timeoutMs);
    if (!r)
        return Error { r.error() };
    if (r->type == Reply::Type::String)
        return std::optional<QByteArray>(r->string);
    if (r->type != Reply::Type::Nil)
        return Error {
            QStringLiteral("Redis list move answered %1, not an id or nil").arg(typeName(r->type))
        };
    return std::optional<QByteArray>();
}

Expected<std::optional<QByteArray>> RedisClient::lmoveToTail(const QByteArray &source,
                                                             const QByteArray &destination)
{
    auto r = command({ "LMOVE", source, destination, "RIGHT", "RIGHT" }, m_timeoutMs);
    if (!r)
        return Error { r.error() };
    if (r->type == Reply::Type::String)
        return std::optional<QByteArray>(r->string);
    if (r->type != Reply::Type::Nil)
        return Error {
            QStringLiteral("Redis list move answered %1, not an id or nil").arg(typeName(r->type))
        };
    return std::optional<QByteArray>();
}

Expected<qint64> RedisClient::lrem(const QByteArray &key, const QByteArray &value)
{
    return integer({ "LREM", key, "0", value });
}

Outcome RedisClient::setWithExpiry(const QByteArray &key, const QByteArray &value, int seconds)
{
    auto r = command({ "SET", key, value, "EX", QByteArray::number(seconds) }, m_timeoutMs);
    if (!r)
        return Error { r.error() };
    if (r->type != Reply::Type::Status || r->string != "OK")
        return Error { QStringLiteral("Redis SET answered %1, not OK").arg(typeName(r->type)) };
    return success();
}

Expected<bool> RedisClient::exists(const QByteArray &key)
{
    auto n = integer({ "EXISTS", key });
    if (!n)
        return Error { n.error() };
    return *n > 0;
}

Expected<qint64> RedisClient::del(const QByteArray &key)
{
    return integer({ "DEL", key });
}

Expected<qint64> RedisClient::sadd(const QByteArray &key, const QByteArray &member)
{
    return integer({ "SADD", key, member });
}

Expected<qint64> RedisClient::srem(const QByteArray &key, const QByteArray &member)
{
    return integer({ "SREM", key, member });
}

Expected<QList<QByteArray>> RedisClient::smembers(const QByteArray &key)
{
    auto r = command({ "SMEMBERS", key }, m_timeoutMs);
    if (!r)
        return Error { r.error() };
    if (r->type != Reply::Type::Array)
        return Error {
            QStringLiteral("Redis SMEMBERS answered %1, not an array").arg(typeName(r->type))
        };
    return r->elements;
}

} // namespace deckhand
