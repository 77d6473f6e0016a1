// Benchmark: the health monitor with 1,000 endpoints (served by a real
// deckhand) checked at 1 Hz. Prints the CPU the monitor's process uses and the
// largest event-loop stall, against the targets (< 10% of one core, no stall
// over 50 ms). A benchmark, not a test: it always exits 0 once measured.
#include "monitor/healthmonitor.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTimer>
#include <cstdio>
#include <sys/resource.h>

using namespace pilothouse;

namespace {

double cpuSeconds()
{
    rusage u {};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
        u.ru_stime.tv_usec / 1e6;
}

quint16 freePort()
{
    QTcpServer s;
    s.listen(QHostAddress::LocalHost);
    return s.serverPort();
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCommandLineParser p;
    p.addHelpOption();
    p.addOptions(
        { { QStringLiteral("deckhand"), QStringLiteral("deckhand binary"), QStringLiteral("PATH") },
          { QStringLiteral("endpoints"), QStringLiteral("how many (1000)"), QStringLiteral("N"),
            QStringLiteral("1000") },
          { QStringLiteral("seconds"), QStringLiteral("measured window (20)"), QStringLiteral("S"),
            QStringLiteral("20") } });
    p.process(app);
    const int n = p.value(QStringLiteral("endpoints")).toInt();
    const int seconds = p.value(QStringLiteral("seconds")).toInt();

    QTemporaryDir dir;
    const quint16 port = freePort();
    QProcess deckhand;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("PORT"), QString::number(port));
    env.insert(QStringLiteral("DATABASE_URL"), QStringLiteral("sqlite://%1/b.db").arg(dir.path()));
    env.insert(QStringLiteral("LOG_LEVEL"), QStringLiteral("error"));
    deckhand.setProcessEnvironment(env);
    deckhand.setStandardOutputFile(QProcess::nullDevice());
    deckhand.start(p.value(QStringLiteral("deckhand")), { QStringLiteral("serve") });
    if (!deckhand.waitForStarted()) {
        std::fprintf(stderr, "bench_monitor: cannot start deckhand: %s\n",
                     qPrintable(deckhand.errorString()));
        return 1;
    }
    QElapsedTimer wait;
    wait.start();
    for (;;) {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port);
        if (s.waitForConnected(200))
            break;
        if (wait.elapsed() > 10000) {
            std::fprintf(stderr, "bench_monitor: deckhand did not listen\n");
            return 1;
        }
    }

    HealthMonitor monitor;
    for (int i = 0; i < n; ++i) {
        HealthEndpoint e;
        // /readyz: health+json parsing on every answer, the realistic case.
        e.url = QUrl(QStringLiteral("http://127.0.0.1:%1/readyz?endpoint=%2").arg(port).arg(i));
        e.intervalMs = 1000;
        e.timeoutMs = 2000;
        monitor.addEndpoint(QStringLiteral("svc%1").arg(i % 50), e);
    }
    qint64 checks = 0;
    qint64 failures = 0;
    bool measuring = false;
    QObject::connect(&monitor, &HealthMonitor::endpointChecked, &monitor, [&](int id) {
        if (!measuring)
            return;
        ++checks;
        const auto st = monitor.endpoint(id)->status;
        if (st != EndpointStatus::Pass && st != EndpointStatus::Warn)
            ++failures;
    });

    // Event-loop stall: a 5 ms timer; how late does it fire at worst?
    QElapsedTimer tick;
    qint64 worstLateMs = 0;
    QTimer probe;
    probe.setTimerType(Qt::PreciseTimer);
    probe.setInterval(5);
    QObject::connect(&probe, &QTimer::timeout, &probe, [&] {
        const qint64 gap = tick.restart();
        if (measuring)
            worstLateMs = std::max(worstLateMs, gap - 5);
    });

    monitor.start();
    tick.start();
    probe.start();
    double cpu0 = 0;
    QElapsedTimer wall;
    QTimer::singleShot(3000, &app, [&] { // warm-up: connections open, first round spread
        measuring = true;
        cpu0 = cpuSeconds();
        wall.start();
        tick.restart();
    });
    QTimer::singleShot(3000 + seconds * 1000, &app, [&] { app.quit(); });
    app.exec();
    const double cpu = cpuSeconds() - cpu0;
    const double secs = wall.elapsed() / 1000.0;
    monitor.stop();
    deckhand.terminate();
    deckhand.waitForFinished(5000);

    const double cpuPct = 100.0 * cpu / secs;
    const double rate = checks / secs;
    std::printf("health monitor: %d endpoints at 1 Hz, %.0f s measured\n", n, secs);
    std::printf("  checks/s             %.0f (expected ~%d), not passing: %lld\n", rate, n,
                failures);
    std::printf("  CPU                  %.1f%% of one core   target < 10%%   %s\n", cpuPct,
                cpuPct < 10 ? "MET" : "MISSED");
    std::printf("  largest loop stall   %lld ms              target < 50 ms  %s\n", worstLateMs,
                worstLateMs < 50 ? "MET" : "MISSED");
    return 0;
}
