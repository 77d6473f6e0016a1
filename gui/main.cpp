// pilothouse: the desktop panel. A thin entry point over the Workspace
// (model/) and the main window (gui/).
#include "core/terminationsignals.h"
#include "core/workspace.h"
#include "mainwindow.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QEventLoop>
#include <QSettings>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <unistd.h>

using namespace pilothouse;

namespace {

void describe(QCommandLineParser &p)
{
    p.setApplicationDescription(QStringLiteral("Pilothouse: start, watch, deploy and roll back "
                                               "a backend stack."));
    p.addHelpOption();
    p.addVersionOption();
    p.addOptions({
        { QStringLiteral("env"), QStringLiteral("the environment to show first"),
          QStringLiteral("NAME") },
        { QStringLiteral("config"),
          QStringLiteral("environments file (default: the user's, else the built-in)"),
          QStringLiteral("FILE") },
        { QStringLiteral("start"),
          QStringLiteral("start the environment given with --env once the window shows") },
    });
}

void nameApplication()
{
    QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));
    QCoreApplication::setApplicationVersion(QStringLiteral(PILOTHOUSE_VERSION));
}

} // namespace

int main(int argc, char *argv[])
{
    // Without a display Qt would abort with its own message; say what to do instead.
    if (qEnvironmentVariableIsEmpty("DISPLAY") && qEnvironmentVariableIsEmpty("WAYLAND_DISPLAY") &&
        qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
        // --help and --version need no display: answered as usual (exit 0).
        for (int i = 1; i < argc; ++i) {
            const QByteArray a(argv[i]);
            if (a == "-h" || a == "--help" || a == "--help-all" || a == "-v" || a == "--version" ||
                a == "-?") {
                QCoreApplication core(argc, argv);
                nameApplication();
                QCommandLineParser p;
                describe(p);
                p.process(core); // prints and exits
                return 0;
            }
        }
        std::fprintf(stderr,
                     "pilothouse: no display (DISPLAY or WAYLAND_DISPLAY is not set); "
                     "run the environment headless with: pilothousectl up --env local\n");
        return 2;
    }
    QApplication app(argc, argv);
    nameApplication();
    QApplication::setApplicationDisplayName(QStringLiteral("Pilothouse"));
    QApplication::setDesktopFileName(QStringLiteral("io.pilothouse.Pilothouse"));
    // With a tray, closing the window keeps Pilothouse running there.
    QApplication::setQuitOnLastWindowClosed(false);

    QCommandLineParser p;
    describe(p);
    p.process(app);

    Workspace workspace;
    QString startupError;
    const QString config = p.value(QStringLiteral("config"));
    if (const Outcome loaded = workspace.load(config); !loaded) {
        // A broken file must not keep the panel closed: the built-in
        // environments, with the problems shown on top.
        startupError =
            QApplication::translate("main",
                                    "The environments file has problems, so the built-in "
                                    "environments are shown until it is fixed (Settings):\n%1")
                .arg(loaded.error());
        if (const Outcome fallback = workspace.loadBuiltInInstead(); !fallback) {
            std::fprintf(stderr, "pilothouse: %s\n", qPrintable(fallback.error()));
            return 3;
        }
    }
    gui::MainWindow window(&workspace);
    if (!startupError.isEmpty())
        window.setStartupError(startupError);
    if (p.isSet(QStringLiteral("env"))) {
        const QString name = p.value(QStringLiteral("env"));
        if (!workspace.environments().find(name)) {
            std::fprintf(stderr, "pilothouse: no environment \"%s\" (there are: %s)\n",
                         qPrintable(name),
                         qPrintable(workspace.environments().names().join(QStringLiteral(", "))));
            return 2;
        }
        window.selectEnvironment(name);
    }
    if (p.isSet(QStringLiteral("start")) && !p.isSet(QStringLiteral("env"))) {
        std::fprintf(stderr, "pilothouse: --start needs --env NAME\n");
        return 2;
    }
    // A signal stops what this window runs, as Quit does; a second one leaves
    // at once (the children still end with it: core/childprocess.h).
    TerminationSignals heard;
    QObject::connect(&heard, &TerminationSignals::received, &window, [&window](int signo, int n) {
        const QByteArray name = TerminationSignals::name(signo).toLatin1();
        if (n > 1) {
            std::fprintf(stderr, "pilothouse: %s again: leaving now\n", name.constData());
            ::_exit(128 + signo);
        }
        std::fprintf(stderr, "pilothouse: %s: stopping what this window runs, then leaving\n",
                     name.constData());
        window.quit();
    });
    window.show();
    if (p.isSet(QStringLiteral("start")))
        QTimer::singleShot(0, &workspace, [&workspace, name = p.value(QStringLiteral("env"))] {
            workspace.up(name);
        });
    const int rc = app.exec();
    // Left without Quit (the session ending): stop what runs natively all the same.
    if (workspace.hasRunningNative() || workspace.hasRunningDeployment()) {
        QEventLoop wait;
        QObject::connect(&workspace, &Workspace::shutdownFinished, &wait, &QEventLoop::quit);
        // A deployment's revert must not be cut short (its compose call would
        // be ended with us): as long as its gate may take, then some.
        int waitMs = 30000;
        if (workspace.hasRunningDeployment()) {
            for (const Environment &e : workspace.environments().environments)
                waitMs = std::max(waitMs, e.deployTimeoutMs + e.healthWindowMs + 60000);
        }
        QTimer::singleShot(waitMs, &wait, &QEventLoop::quit);
        workspace.shutdown();
        wait.exec();
    }
    return rc;
}
