#include "api.h"
#include "commands.h"
#include "healthmonitor.h"
#include "httpserver.h"
#include "log.h"
#include "unixsignals.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QHostAddress>
#include <QThread>
#include <QTimer>
#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace deckhand {

namespace {

// A listening socket with SO_REUSEPORT, so each HTTP thread has its own and
// the kernel spreads new connections across them. Returns -1 and sets *error.
int openListeningSocket(const QHostAddress &address, quint16 port, QString *error,
                        bool reusePort = true)
{
    sockaddr_storage storage {};
    socklen_t length = 0;
    const bool v6 = address.protocol() == QAbstractSocket::IPv6Protocol;
    if (v6) {
        auto *a = reinterpret_cast<sockaddr_in6 *>(&storage);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        const Q_IPV6ADDR bytes = address.toIPv6Address();
        std::memcpy(&a->sin6_addr, &bytes, sizeof bytes);
        length = sizeof *a;
    } else {
        auto *a = reinterpret_cast<sockaddr_in *>(&storage);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(address.toIPv4Address());
        length = sizeof *a;
    }
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = QString::fromLocal8Bit(strerror(errno));
        return -1;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (reusePort)
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (::bind(fd, reinterpret_cast<sockaddr *>(&storage), length) != 0 ||
        ::listen(fd, 1024) != 0) {
        *error = QString::fromLocal8Bit(strerror(errno));
        ::close(fd);
        return -1;
    }
    return fd;
}

void reportCannotListen(const Config &config, const QString &error)
{
    Log::error("deckhand", QStringLiteral("cannot listen"),
               { { QStringLiteral("host"), config.host },
                 { QStringLiteral("port"), config.port },
                 { QStringLiteral("error"), error },
                 { QStringLiteral("hint"),
                   QStringLiteral("choose another PORT or stop what uses this one") } });
}

quint16 boundPort(int fd)
{
    sockaddr_storage storage {};
    socklen_t length = sizeof storage;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&storage), &length);
    if (storage.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<sockaddr_in6 *>(&storage)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in *>(&storage)->sin_port);
}

} // namespace

// One HTTP event loop: its own listener, server and API (with its own
// database and Redis connections), living on its own thread.
class HttpLoop final : public QObject
{
    Q_OBJECT
public:
    HttpLoop(const Config &config, const HttpLimits &limits, const HealthMonitor &health,
             Metrics &metrics, ConnectionBudget &budget, int fd)
        : m_config(config)
        , m_limits(limits)
        , m_health(health)
        , m_metrics(metrics)
        , m_budget(budget)
        , m_fd(fd)
    { }

    // Runs on the loop's thread once it starts.
    void start()
    {
        m_api = std::make_unique<Api>(m_config, m_health, m_metrics);
        connect(&m_health, &HealthMonitor::changed, this, [this] { m_api->refreshHealth(); });
        m_api->refreshHealth(); // anything that changed before the connection
        m_server = new HttpServer(this);
        m_api->install(*m_server);
        m_listener = new Listener(m_limits, m_budget, *m_server, m_server);
        if (!m_listener->setSocketDescriptor(m_fd)) {
            // One loop not accepting would leave a server that half works: stop.
            Log::error("deckhand", QStringLiteral("cannot adopt the listening socket"),
                       { { QStringLiteral("error"), m_listener->errorString() } });
            QMetaObject::invokeMethod(
                QCoreApplication::instance(), [] { QCoreApplication::exit(1); },
                Qt::QueuedConnection);
            return;
        }
        connect(m_listener, &Listener::drained, this, &HttpLoop::drained);
    }
    void drain() { m_listener->drain(); }
    void abortAll() { m_listener->abortAll(); }
    ~HttpLoop() override { m_api.reset(); }

Q_SIGNALS:
    void drained();

private:
    Config m_config;
    HttpLimits m_limits;
    const HealthMonitor &m_health;
    Metrics &m_metrics;
    ConnectionBudget &m_budget;
    int m_fd;
    std::unique_ptr<Api> m_api;
    HttpServer *m_server = nullptr;
    Listener *m_listener = nullptr;
};

int runServe(const Config &config)
{
    QElapsedTimer startup;
    startup.start();

    const int threads =
        config.httpThreads > 0 ? config.httpThreads : std::clamp(QThread::idealThreadCount(), 1, 8);
    HttpLimits limits;
    limits.idleTimeoutMs = config.idleTimeoutMs;
    limits.requestTimeoutMs = config.requestTimeoutMs;
    limits.sendTimeoutMs = config.sendTimeoutMs;

    const QHostAddress address = config.host == QLatin1String("localhost")
        ? QHostAddress(QHostAddress::LocalHost)
        : QHostAddress(config.host);
    // SO_REUSEPORT would let us share a port another process already serves;
    // ask the kernel first with a plain bind, which refuses a port in use.
    if (config.port != 0) {
        QString error;
        const int probe = openListeningSocket(address, config.port, &error, false);
        if (probe < 0) {
            reportCannotListen(config, error);
            return 1;
        }
        ::close(probe);
    }
    QList<int> sockets;
    quint16 port = config.port;
    for (int i = 0; i < threads; ++i) {
        QString error;
        const int fd = openListeningSocket(address, port, &error);
        if (fd < 0) {
            reportCannotListen(config, error);
            for (int open : sockets)
                ::close(open);
            return 1;
        }
        port = boundPort(fd); // PORT=0 picks one; the other threads share it
        sockets << fd;
    }

    HealthMonitor health(config);
    Metrics metrics;
    ConnectionBudget budget(config.maxConnections);
    QList<QThread *> loopThreads;
    QList<HttpLoop *> loops;
    for (int fd : sockets) {
        auto *thread = new QThread;
        thread->setObjectName(QStringLiteral("http-%1").arg(loops.size()));
        auto *loop = new HttpLoop(config, limits, health, metrics, budget, fd);
        loop->moveToThread(thread);
        QObject::connect(thread, &QThread::started, loop, &HttpLoop::start);
        QObject::connect(thread, &QThread::finished, loop, &QObject::deleteLater);
        thread->start();
        loopThreads << thread;
        loops << loop;
    }
    health.start();

    const QString url = QStringLiteral("http://%1:%2")
                            .arg(address.protocol() == QAbstractSocket::IPv6Protocol
                                     ? QLatin1Char('[') + config.host + QLatin1Char(']')
                                     : config.host)
                            .arg(port);
    Log::info("deckhand", QStringLiteral("listening"),
              { { QStringLiteral("url"), url },
                { QStringLiteral("host"), config.host },
                { QStringLiteral("port"), int(port) },
                { QStringLiteral("http_threads"), threads },
                { QStringLiteral("database"), config.database.redacted() },
                { QStringLiteral("redis"),
                  config.redis ? config.redis->redacted() : QStringLiteral("off") },
                { QStringLiteral("startup_ms"), double(startup.nsecsElapsed()) / 1e6 } });

    QObject guard; // context for the lambdas below, on the main thread
    bool stopping = false;
    int drainedLoops = 0;
    QTimer graceTimer;
    graceTimer.setSingleShot(true);
    QObject::connect(&graceTimer, &QTimer::timeout, &guard, [&] {
        Log::warning("deckhand", QStringLiteral("grace period over; closing busy connections"));
        for (HttpLoop *loop : loops)
            QMetaObject::invokeMethod(loop, &HttpLoop::abortAll, Qt::QueuedConnection);
        QCoreApplication::exit(0);
    });
    for (HttpLoop *loop : loops) {
        QObject::connect(loop, &HttpLoop::drained, &guard, [&] {
            if (++drainedLoops == loops.size()) {
                Log::info("deckhand", QStringLiteral("stopped"),
                          { { QStringLiteral("reason"), QStringLiteral("drained") } });
                QCoreApplication::exit(0);
            }
        });
    }

    QTimer drainTimer;
    drainTimer.setSingleShot(true);
    QObject::connect(&drainTimer, &QTimer::timeout, &guard, [&] {
        for (HttpLoop *loop : loops)
            QMetaObject::invokeMethod(loop, &HttpLoop::drain, Qt::QueuedConnection);
        graceTimer.start(config.shutdownGraceMs);
    });

    UnixSignals unixSignals({ SIGTERM, SIGINT });
    QObject::connect(&unixSignals, &UnixSignals::received, &guard, [&](int signal) {
        if (stopping) {
            Log::warning("deckhand", QStringLiteral("second signal; exiting now"));
            for (HttpLoop *loop : loops)
                QMetaObject::invokeMethod(loop, &HttpLoop::abortAll, Qt::QueuedConnection);
            QCoreApplication::exit(0);
            return;
        }
        stopping = true;
        Log::info("deckhand", QStringLiteral("shutting down"),
                  { { QStringLiteral("signal"),
                      signal == SIGTERM ? QStringLiteral("SIGTERM") : QStringLiteral("SIGINT") },
                    { QStringLiteral("drain_seconds"), config.drainDelayMs / 1000.0 },
                    { QStringLiteral("grace_seconds"), config.shutdownGraceMs / 1000.0 } });
        // Readiness turns 503 first; requests are still served for the drain
        // delay (a proxy stops sending new ones once its checks see the 503),
        // then the listeners close and what is under way may finish.
        health.setDraining();
        drainTimer.start(config.drainDelayMs);
    });

    const int code = QCoreApplication::exec();
    bool stuck = false;
    for (QThread *thread : loopThreads) {
        thread->quit();
        if (thread->wait(2000))
            delete thread;
        else
            stuck = true; // a loop blocked in a driver call; see below
    }
    if (stuck) {
        // Destroying a running QThread aborts; the shutdown promise is exit 0
        // once the grace period is over, so leave without unwinding.
        Log::warning("deckhand",
                     QStringLiteral("an HTTP loop is blocked in a call; exiting without cleanup"));
        std::fflush(stdout);
        std::_Exit(code);
    }
    health.stop();
    return code;
}

} // namespace deckhand

#include "serve.moc"
