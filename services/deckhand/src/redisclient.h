#pragma once

#include "config.h"
#include "expected.h"

#include <QByteArray>
#include <QList>
#include <optional>

struct redisContext;

namespace deckhand {

// A small synchronous Redis client over hiredis, for one thread. Every call
// has a hard timeout; after an error the connection is dropped and the next
// call reconnects, so a Redis that comes back is picked up by itself.
class RedisClient final
{
public:
    RedisClient(const RedisUrl &url, int timeoutMs);
    ~RedisClient();
    RedisClient(const RedisClient &) = delete;
    RedisClient &operator=(const RedisClient &) = delete;

    Outcome connect();
    void disconnect();
    bool isConnected() const { return m_context != nullptr; }

    Expected<double> ping(); // milliseconds
    Expected<qint64> lpush(const QByteArray &key, const QByteArray &value);
    Expected<qint64> rpush(const QByteArray &key, const QByteArray &value);
    Expected<qint64> llen(const QByteArray &key);
    // Blocks up to timeoutSeconds for an element; nullopt when none came.
    Expected<std::optional<QByteArray>> brpop(const QByteArray &key, int timeoutSeconds);
    QString serverVersion() const { return m_serverVersion; }

private:
    struct Reply
    {
        enum class Type { Nil, Integer, String, Status, Array } type = Type::Nil;
        qint64 integer = 0;
        QByteArray string;
        QList<QByteArray> elements;
    };
    Expected<Reply> command(const QList<QByteArray> &args, int timeoutMs);
    Expected<Reply> commandOnce(const QList<QByteArray> &args, int timeoutMs);
    Error dropWith(const QString &what);

    RedisUrl m_url;
    int m_timeoutMs;
    redisContext *m_context = nullptr;
    QString m_serverVersion;
};

// The Redis list the API pushes job ids on and the worker pops from.
inline constexpr char kJobQueueKey[] = "deckhand:jobs";

} // namespace deckhand
