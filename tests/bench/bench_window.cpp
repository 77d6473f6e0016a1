// Benchmark: the window stays responsive with 1,000 health endpoints (served
// by a real deckhand) checked at 1 Hz and shown on its Health page, sparklines
// and all. Prints the largest event-loop stall (target < 50 ms) and the CPU
// of the whole process. Run by tests/bench/bench_window.py; exits 0 once measured.
#include "core/workspace.h"
#include "mainwindow.h"

#include <QAbstractItemView>
#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
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
    QApplication app(argc, argv);
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
    for (const char *var : { "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME" })
        qputenv(var, dir.filePath(QString::fromLatin1(var)).toUtf8());
    qputenv("XDG_RUNTIME_DIR", dir.path().toUtf8());
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
        std::fprintf(stderr, "bench_window: cannot start deckhand\n");
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
            std::fprintf(stderr, "bench_window: deckhand did not listen\n");
            return 1;
        }
    }

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
    tick.start();
    probe.start();
    double cpu0 = 0;
    QElapsedTimer wall;
    QTimer::singleShot(4000, &app, [&] { // warm-up: the first round spread, rows laid out
        measuring = true;
        cpu0 = cpuSeconds();
        wall.start();
        tick.restart();
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
    std::printf("  largest loop stall   %lld ms   target < 50 ms  %s\n", worstLateMs,
                worstLateMs < 50 ? "MET" : "MISSED");
    std::printf("BENCH window_stall_ms %lld\n", worstLateMs);
    return 0;
}
