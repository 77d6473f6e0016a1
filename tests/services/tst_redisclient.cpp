// deckhand's Redis client against a scripted RESP server: the failure modes a
// real Redis cannot be made to show on demand (a write it applies and then
// never answers, a reply of the wrong type). A non-idempotent write that
// timed out is not sent again (a second LPUSH would queue a job twice); an
// idempotent read is retried once on a fresh connection; every reply's type
// is checked.
#include "redisclient.h"

#include <QtTest>
#include <arpa/inet.h>
#include <atomic>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace deckhand;

namespace {

// Answers INFO and PING; for every other command does what `script` says:
// "hang" (read it, never answer) or a raw RESP reply. Counts each command.
class ScriptedRedis
{
public:
    explicit ScriptedRedis(std::map<std::string, std::string> script)
        : m_script(std::move(script))
    {
        m_listen = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a {};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(m_listen, reinterpret_cast<sockaddr *>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(m_listen, reinterpret_cast<sockaddr *>(&a), &len);
        m_port = ntohs(a.sin_port);
        ::listen(m_listen, 8);
        m_acceptor = std::thread([this] { acceptLoop(); });
    }
    ~ScriptedRedis()
    {
        m_stopping = true;
        ::shutdown(m_listen, SHUT_RDWR);
        ::close(m_listen);
        m_acceptor.join();
        std::lock_guard lock(m_mutex);
        for (int fd : m_clients)
            ::shutdown(fd, SHUT_RDWR);
        for (std::thread &t : m_workers)
            t.join();
    }
    int port() const { return m_port; }
    int count(const std::string &command)
    {
        std::lock_guard lock(m_mutex);
        return m_counts[command];
    }

private:
    void acceptLoop()
    {
        while (!m_stopping) {
            const int fd = ::accept(m_listen, nullptr, nullptr);
            if (fd < 0)
                return;
            std::lock_guard lock(m_mutex);
            m_clients.push_back(fd);
            m_workers.emplace_back([this, fd] { serve(fd); });
        }
    }
    void serve(int fd)
    {
        std::string buffer;
        char chunk[4096];
        for (;;) {
            const ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n <= 0)
                break;
            buffer.append(chunk, size_t(n));
            std::vector<std::string> args;
            while (parse(buffer, &args)) {
                std::string name = args.empty() ? std::string() : args.front();
                for (char &c : name)
                    c = char(std::toupper(static_cast<unsigned char>(c)));
                {
                    std::lock_guard lock(m_mutex);
                    ++m_counts[name];
                }
                std::string reply;
                if (name == "INFO")
                    reply = "$22\r\nredis_version:7.0.15\r\n\r\n";
                else if (name == "PING")
                    reply = "+PONG\r\n";
                else if (auto it = m_script.find(name); it != m_script.end())
                    reply = it->second == "hang" ? std::string() : it->second;
                else
                    reply = "-ERR unknown command\r\n";
                if (!reply.empty())
                    (void)::write(fd, reply.data(), reply.size());
                args.clear();
            }
        }
        ::close(fd);
    }
    // One whole RESP array of bulk strings off the front of `b`.
    static bool parse(std::string &b, std::vector<std::string> *args)
    {
        size_t pos = 0;
        const auto line = [&b, &pos](std::string *out) {
            const size_t end = b.find("\r\n", pos);
            if (end == std::string::npos)
                return false;
            *out = b.substr(pos, end - pos);
            pos = end + 2;
            return true;
        };
        std::string head;
        if (!line(&head) || head.empty() || head[0] != '*')
            return false;
        const int n = std::stoi(head.substr(1));
        for (int i = 0; i < n; ++i) {
            std::string len;
            if (!line(&len))
                return false;
            const size_t l = size_t(std::stoul(len.substr(1)));
            if (b.size() < pos + l + 2)
                return false;
            args->push_back(b.substr(pos, l));
            pos += l + 2;
        }
        b.erase(0, pos);
        return true;
    }

    std::map<std::string, std::string> m_script;
    int m_listen = -1;
    int m_port = 0;
    std::atomic<bool> m_stopping { false };
    std::thread m_acceptor;
    std::mutex m_mutex;
    std::vector<int> m_clients;
    std::vector<std::thread> m_workers;
    std::map<std::string, int> m_counts;
};

RedisUrl urlFor(int port)
{
    RedisUrl url;
    url.host = QStringLiteral("127.0.0.1");
    url.port = port;
    return url;
}

} // namespace

class TestRedisClient final : public QObject
{
    Q_OBJECT
private slots:
    void timedOutWriteIsNotSentTwice()
    {
        ScriptedRedis redis({ { "LPUSH", "hang" }, { "LLEN", "hang" } });
        RedisClient client(urlFor(redis.port()), 300);
        QVERIFY(client.ping().ok()); // a connection in use: a retry would be allowed
        const auto pushed = client.lpush("deckhand:jobs", "job-1");
        QVERIFY(!pushed.ok());
        QCOMPARE(redis.count("LPUSH"), 1); // not again on a fresh connection
        // A read is safe to repeat: once more, on a fresh connection.
        QVERIFY(client.ping().ok());
        QVERIFY(!client.llen("deckhand:jobs").ok());
        QCOMPARE(redis.count("LLEN"), 2);
    }

    void replyTypesAreChecked()
    {
        ScriptedRedis redis({ { "LPUSH", "+OK\r\n" },
                              { "SMEMBERS", ":3\r\n" },
                              { "LMOVE", ":1\r\n" },
                              { "SET", "$2\r\nOK\r\n" } });
        RedisClient client(urlFor(redis.port()), 1000);
        const auto pushed = client.lpush("deckhand:jobs", "job-1");
        QVERIFY(!pushed.ok());
        QVERIFY2(pushed.error().contains(QLatin1String("LPUSH answered a status, not an integer")),
                 qPrintable(pushed.error()));
        const auto members = client.smembers("workers");
        QVERIFY(!members.ok() && members.error().contains(QLatin1String("not an array")));
        QVERIFY(!client.lmoveToTail("a", "b").ok());
        QVERIFY(!client.setWithExpiry("k", "v", 5).ok());
    }
};

QTEST_GUILESS_MAIN(TestRedisClient)
#include "tst_redisclient.moc"
