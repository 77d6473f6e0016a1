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
    // Atomically moves the source's tail element to the destination's head,
    // waiting up to timeoutSeconds (Redis 6.2+); nullopt when none came.
    Expected<std::optional<QByteArray>> blmove(const QByteArray &source,
                                               const QByteArray &destination, int timeoutSeconds);
    // Moves the source's tail element to the destination's tail, without waiting.
    Expected<std::optional<QByteArray>> lmoveToTail(const QByteArray &source,
                                                    const QByteArray &destination);
    Expected<qint64> lrem(const QByteArray &key, const QByteArray &value);
    Outcome setWithExpiry(const QByteArray &key, const QByteArray &value, int seconds);
    Expected<bool> exists(const QByteArray &key);
    Expected<qint64> del(const QByteArray &key);
    Expected<qint64> sadd(const QByteArray &key, const QByteArray &member);
    Expected<qint64> srem(const QByteArray &key, const QByteArray &member);
    Expected<QList<QByteArray>> smembers(const QByteArray &key);
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
    static bool isIdempotent(const QByteArray &command);
    static QString typeName(Reply::Type type);
    Expected<qint64> integer(const QList<QByteArray> &args); // commands with an integer reply
    Error dropWith(const QString &what);

    RedisUrl m_url;
    int m_timeoutMs;
    redisContext *m_context = nullptr;
    // The last failure was a timeout: the server may have run the command.
    bool m_timedOut = false;
    QString m_serverVersion;
};

// The Redis list the API pushes job ids on and the worker pops from.
inline constexpr char kJobQueueKey[] = "deckhand:jobs";
// Each worker moves what it pops into its own list until the job is done, and
// holds a lease key while alive; the set names every worker that registered.
inline constexpr char kProcessingKeyPrefix[] = "deckhand:jobs:processing:";
inline constexpr char kWorkerLeaseKeyPrefix[] = "deckhand:worker:";
inline constexpr char kWorkersKey[] = "deckhand:workers";

} // namespace deckhand
