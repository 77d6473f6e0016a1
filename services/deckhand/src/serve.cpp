#include "api.h"
#include "commands.h"
#include "healthmonitor.h"
#include "httpserver.h"
#include "log.h"
#include "unixsignals.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QHostAddress>
#include <QTimer>
#include <csignal>

namespace deckhand {

int runServe(const Config &config)
{
    QElapsedTimer startup;
    startup.start();

    HttpLimits limits;
    limits.idleTimeoutMs = config.idleTimeoutMs;
    limits.requestTimeoutMs = config.requestTimeoutMs;
    limits.maxConnections = config.maxConnections;

    HealthMonitor health(config);
    Api api(config, health);
    HttpServer server;
    api.install(server);

    auto *listener = new Listener(limits, &server);
    const QHostAddress address = config.host == QLatin1String("localhost")
        ? QHostAddress(QHostAddress::LocalHost)
        : QHostAddress(config.host);
    if (!listener->listen(address, config.port)) {
        Log::error("deckhand", QStringLiteral("cannot listen"),
                   { { QStringLiteral("host"), config.host },
                     { QStringLiteral("port"), config.port },
                     { QStringLiteral("error"), listener->errorString() },
                     { QStringLiteral("hint"),
                       QStringLiteral("choose another PORT or stop what uses this one") } });
        return 1;
    }
    server.bind(listener);
    health.start();

    const QString url = QStringLiteral("http://%1:%2")
                            .arg(address.protocol() == QAbstractSocket::IPv6Protocol
                                     ? QLatin1Char('[') + config.host + QLatin1Char(']')
                                     : config.host)
                            .arg(listener->serverPort());
    Log::info("deckhand", QStringLiteral("listening"),
              { { QStringLiteral("url"), url },
                { QStringLiteral("host"), config.host },
                { QStringLiteral("port"), int(listener->serverPort()) },
                { QStringLiteral("database"), config.database.redacted() },
                { QStringLiteral("redis"),
                  config.redis ? config.redis->redacted() : QStringLiteral("off") },
                { QStringLiteral("startup_ms"), double(startup.nsecsElapsed()) / 1e6 } });

    int exitCode = 0;
    bool stopping = false;
    QTimer graceTimer;
    graceTimer.setSingleShot(true);
    QObject::connect(&graceTimer, &QTimer::timeout, &server, [&] {
        Log::warning("deckhand", QStringLiteral("grace period over; closing busy connections"),
                     { { QStringLiteral("open_connections"), listener->connectionCount() } });
        listener->abortAll();
        QCoreApplication::exit(exitCode);
    });
    QObject::connect(listener, &Listener::drained, &server, [&] {
        Log::info("deckhand", QStringLiteral("stopped"),
                  { { QStringLiteral("reason"), QStringLiteral("drained") } });
        QCoreApplication::exit(exitCode);
    });

    UnixSignals unixSignals({ SIGTERM, SIGINT });
    QObject::connect(&unixSignals, &UnixSignals::received, &server, [&](int signal) {
        if (stopping) {
            // A second signal: stop waiting.
            Log::warning("deckhand", QStringLiteral("second signal; exiting now"));
            listener->abortAll();
            QCoreApplication::exit(exitCode);
            return;
        }
        stopping = true;
        Log::info("deckhand", QStringLiteral("shutting down"),
                  { { QStringLiteral("signal"),
                      signal == SIGTERM ? QStringLiteral("SIGTERM") : QStringLiteral("SIGINT") },
                    { QStringLiteral("open_connections"), listener->connectionCount() },
                    { QStringLiteral("grace_seconds"), config.shutdownGraceMs / 1000.0 } });
        health.setDraining();
        listener->drain();
        graceTimer.start(config.shutdownGraceMs);
    });

    const int code = QCoreApplication::exec();
    health.stop();
    return code;
}

} // namespace deckhand
