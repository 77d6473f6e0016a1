// Benchmark: the health monitor with 1,000 endpoints (served by a real
// deckhand) checked at 1 Hz. Prints the CPU the monitor's process uses and the
// largest event-loop stall, against the targets (< 10% of one core, no stall
// over 50 ms). A benchmark, not a test: it always exits 0 once measured.
#include "bench_support.h"
#include "monitor/healthmonitor.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QTimer>
#include <cstdio>

using namespace pilothouse;
using namespace pilothouse::bench;

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const Options options = parseOptions(app);
    const int n = options.endpoints;
    const int seconds = options.seconds;

    QTemporaryDir dir;
    const quint16 port = freePort();
    QProcess deckhand;
    if (!startDeckhand(deckhand, options.deckhand, dir.path(), port, "bench_monitor"))
        return 1;

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
    StallProbe stall;

    monitor.start();
    double cpu0 = 0;
    QElapsedTimer wall;
    QTimer::singleShot(3000, &app, [&] { // warm-up: connections open, first round spread
        measuring = true;
        cpu0 = cpuSeconds();
        wall.start();
        stall.measure();
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
    std::printf("  largest loop stall   %lld ms              target < 50 ms  %s\n",
                stall.worstLateMs(), stall.worstLateMs() < 50 ? "MET" : "MISSED");
    return 0;
}
