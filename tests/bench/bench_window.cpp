// Benchmark: the window stays responsive with 1,000 health endpoints (served
// by a real deckhand) checked at 1 Hz and shown on its Health page, sparklines
// and all. Prints the largest event-loop stall (target < 50 ms) and the CPU
// of the whole process. Run by tests/bench/bench_window.py; exits 0 once measured.
#include "bench_support.h"
#include "core/workspace.h"
#include "mainwindow.h"

#include <QAbstractItemView>
#include <QApplication>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTimer>
#include <cstdio>

using namespace pilothouse;
using namespace pilothouse::bench;

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    const Options options = parseOptions(app);
    const int n = options.endpoints;
    const int seconds = options.seconds;

    QTemporaryDir dir;
    for (const char *var : { "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME" })
        qputenv(var, dir.filePath(QString::fromLatin1(var)).toUtf8());
    qputenv("XDG_RUNTIME_DIR", dir.path().toUtf8());
    const quint16 port = freePort();
    QProcess deckhand;
    if (!startDeckhand(deckhand, options.deckhand, dir.path(), port, "bench_window"))
        return 1;

    // One environment watching n endpoints: 50 services of n/50 each.
    QJsonArray services;
    for (int s = 0; s < 50; ++s) {
        QJsonArray health;
        for (int i = s; i < n; i += 50)
            health.append(QJsonObject {
                { QStringLiteral("url"),
                  QStringLiteral("http://127.0.0.1:%1/readyz?endpoint=%2").arg(port).arg(i) },
                { QStringLiteral("intervalSeconds"), 1 },
                { QStringLiteral("timeoutSeconds"), 2 } });
        services.append(QJsonObject { { QStringLiteral("name"), QStringLiteral("svc%1").arg(s) },
                                      { QStringLiteral("health"), health } });
    }
    const QJsonObject environment {
        { QStringLiteral("name"), QStringLiteral("many") },
        { QStringLiteral("kind"), QStringLiteral("native") },
        { QStringLiteral("processes"),
          QJsonArray {
              QJsonObject { { QStringLiteral("name"), QStringLiteral("idle") },
                            { QStringLiteral("program"), QStringLiteral("/bin/true") } } } },
        { QStringLiteral("services"), services },
    };
    const QString config = dir.filePath(QStringLiteral("envs.json"));
    QFile f(config);
    f.open(QIODevice::WriteOnly);
    f.write(QJsonDocument(
                QJsonObject { { QStringLiteral("version"), 1 },
                              { QStringLiteral("environments"), QJsonArray { environment } } })
                .toJson());
    f.close();

    Workspace workspace;
    if (const Outcome r = workspace.load(config); !r) {
        std::fprintf(stderr, "bench_window: %s\n", qPrintable(r.error()));
        return 1;
    }
    gui::MainWindow window(&workspace);
    window.resize(1180, 740);
    window.show();
    window.showPage(gui::MainWindow::Health);

    qint64 checks = 0;
    bool measuring = false;
    QObject::connect(workspace.session(QStringLiteral("many"))->monitor(),
                     &HealthMonitor::endpointChecked, &app, [&] {
                         if (measuring)
                             ++checks;
                     });
    StallProbe stall;
    double cpu0 = 0;
    QElapsedTimer wall;
    QTimer::singleShot(4000, &app, [&] { // warm-up: the first round spread, rows laid out
        measuring = true;
        cpu0 = cpuSeconds();
        wall.start();
        stall.measure();
    });
    // Scroll through the table meanwhile, as a person reading it would.
    QTimer scroll;
    int row = 0;
    QObject::connect(&scroll, &QTimer::timeout, &app, [&] {
        if (QAbstractItemView *v =
                window.findChild<QAbstractItemView *>(QStringLiteral("endpointsView"))) {
            row = (row + 37) % std::max(1, v->model()->rowCount());
            v->scrollTo(v->model()->index(row, 0));
        }
    });
    scroll.start(250);
    QTimer::singleShot(4000 + seconds * 1000, &app, [&] { app.quit(); });
    app.exec();
    const double cpu = cpuSeconds() - cpu0;
    const double secs = wall.elapsed() / 1000.0;
    deckhand.terminate();
    deckhand.waitForFinished(5000);
    std::printf("window with %d endpoints at 1 Hz on its Health page, %.0f s measured\n", n, secs);
    std::printf("  checks/s             %.0f (expected ~%d)\n", checks / secs, n);
    std::printf("  CPU (whole process)  %.1f%% of one core\n", 100.0 * cpu / secs);
    std::printf("  largest loop stall   %lld ms   target < 50 ms  %s\n", stall.worstLateMs(),
                stall.worstLateMs() < 50 ? "MET" : "MISSED");
    std::printf("BENCH window_stall_ms %lld\n", stall.worstLateMs());
    return 0;
}
