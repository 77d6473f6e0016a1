// Screenshots of the window (run by tests/gui/screenshots.py under Xvfb):
// the `local` environment started for real (deckhand on SQLite), then every
// view and the settings dialog saved as PNG files.
//   shoot --out DIR [--suffix -dark] [--dark]
#include "core/workspace.h"
#include "databasepage.h"
#include "mainwindow.h"
#include "servers.h"
#include "servicespage.h"
#include "settingsdialog.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStyleFactory>
#include <QTableView>
#include <QTemporaryDir>
#include <QTimer>
#include <cstdio>
#include <functional>

using namespace pilothouse;

namespace {

QPalette darkPalette()
{
    QPalette p;
    const QColor window(0x2b, 0x2d, 0x30), base(0x1e, 0x1f, 0x22), text(0xdf, 0xe1, 0xe5);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, window);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, window);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::Highlight, QColor(0x2f, 0x6f, 0xb8));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::ToolTipBase, base);
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, text.darker(160));
    p.setColor(QPalette::Disabled, QPalette::Text, text.darker(170));
    p.setColor(QPalette::Disabled, QPalette::ButtonText, text.darker(170));
    p.setColor(QPalette::Disabled, QPalette::WindowText, text.darker(170));
    return p;
}

// Waits in the event loop until done() holds or the time is up.
bool waitFor(const std::function<bool()> &done, int timeoutMs)
{
    QElapsedTimer t;
    t.start();
    while (!done()) {
        if (t.elapsed() > timeoutMs)
            return false;
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    }
    return true;
}

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QCommandLineParser p;
    p.addOptions({ { QStringLiteral("out"), QStringLiteral("folder for the PNG files"),
                     QStringLiteral("DIR") },
                   { QStringLiteral("suffix"), QStringLiteral("added to each file name"),
                     QStringLiteral("TEXT") },
                   { QStringLiteral("dark"), QStringLiteral("a dark palette") } });
    p.process(app);
    const QString out = p.value(QStringLiteral("out"));
    const QString suffix = p.value(QStringLiteral("suffix"));
    if (out.isEmpty()) {
        std::fprintf(stderr, "shoot: --out DIR is needed\n");
        return 2;
    }
    if (p.isSet(QStringLiteral("dark"))) {
        QApplication::setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
        QApplication::setPalette(darkPalette());
    }
    QTemporaryDir dir;
    for (const char *var : { "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME" })
        qputenv(var, dir.filePath(QString::fromLatin1(var)).toUtf8());
    qputenv("XDG_RUNTIME_DIR", dir.path().toUtf8());
    QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));

    // The built-in environments, with `local` on a free port and its own database.
    QFile builtIn(defaultEnvironmentsResource());
    builtIn.open(QIODevice::ReadOnly);
    QJsonObject root = QJsonDocument::fromJson(builtIn.readAll()).object();
    QJsonArray envs = root.value(u"environments").toArray();
    const quint16 port = fixtures::freePort();
    const QString db = QStringLiteral("sqlite://%1/local.db").arg(dir.path());
    const auto sourceDir = QDir(QStringLiteral(PILOTHOUSE_SOURCE_DIR));
    for (qsizetype i = 0; i < envs.size(); ++i) {
        QJsonObject e = envs.at(i).toObject();
        const QString text =
            QString::fromUtf8(QJsonDocument(e).toJson())
                .replace(QStringLiteral("127.0.0.1:8000"), QStringLiteral("127.0.0.1:%1").arg(port))
                .replace(QStringLiteral("\"8000\""), QStringLiteral("\"%1\"").arg(port))
                .replace(QStringLiteral("sqlite://${DATA_DIR}/local/deckhand.db"), db);
        e = QJsonDocument::fromJson(text.toUtf8()).object();
        if (e.contains(u"compose")) {
            QJsonObject c = e.value(u"compose").toObject();
            c.insert(QStringLiteral("files"),
                     QJsonArray { sourceDir.absoluteFilePath(QStringLiteral("compose.yaml")) });
            e.insert(QStringLiteral("compose"), c);
        }
        envs.replace(i, e);
    }
    root.insert(QStringLiteral("environments"), envs);
    const QString config = dir.filePath(QStringLiteral("environments.json"));
    QFile f(config);
    f.open(QIODevice::WriteOnly);
    f.write(QJsonDocument(root).toJson());
    f.close();

    Workspace workspace;
    if (const Outcome r = workspace.load(config); !r) {
        std::fprintf(stderr, "shoot: %s\n", qPrintable(r.error()));
        return 3;
    }
    gui::MainWindow window(&workspace);
    window.resize(1180, 720);
    window.selectEnvironment(QStringLiteral("local"));
    window.show();
    if (!waitFor([&] { return workspace.isLive(); }, 10000))
        return 4;
    workspace.up(QStringLiteral("local"));
    StackSession *session = workspace.session(QStringLiteral("local"));
    if (!waitFor([&] { return session->aggregate() == ServiceHealth::Healthy; }, 20000)) {
        std::fprintf(stderr, "shoot: local did not become healthy\n");
        return 5;
    }
    // Enough latency samples for the sparkline, and a database probe.
    waitFor(
        [&] {
            const EndpointState *e =
                session->monitor()->endpoint(session->monitor()->ids().value(0));
            return e && e->history.size() >= 25;
        },
        20000);
    window.databasePage()->refresh();
    waitFor([&] { return session->databaseProbe()->facts().reachable(); }, 10000);
    QDir().mkpath(out);
    const auto save = [&](QWidget *w, const char *name) {
        waitFor([] { return false; }, 300); // let the last changes paint
        const QString file = QStringLiteral("%1/%2%3.png").arg(out, QLatin1String(name), suffix);
        if (!w->grab().save(file))
            std::fprintf(stderr, "shoot: cannot write %s\n", qPrintable(file));
        else
            std::printf("%s\n", qPrintable(file));
    };
    window.showPage(gui::MainWindow::Services);
    window.servicesPage()->view()->selectRow(0);
    save(&window, "main");
    window.showPage(gui::MainWindow::Health);
    save(&window, "health");
    window.showPage(gui::MainWindow::Database);
    save(&window, "database");
    window.showPage(gui::MainWindow::Logs);
    save(&window, "logs");
    window.openSettings();
    auto *settings = window.findChild<gui::SettingsDialog *>();
    if (settings) {
        settings->resize(900, 680);
        save(settings, "settings");
        settings->close();
    }
    bool stopped = false;
    QObject::connect(&workspace, &Workspace::shutdownFinished, [&stopped] { stopped = true; });
    workspace.shutdown();
    waitFor([&] { return stopped; }, 15000);
    return 0;
}
