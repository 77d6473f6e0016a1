// The window as a person uses it, offscreen, on a real deckhand: Start on a
// native environment through the toolbar until the services table shows it
// running and healthy, Stop; the environment switcher and shortcuts; the
// health, database and logs views; notifications when a service goes down and
// recovers; the settings dialog's validation; the rollback confirmation; the
// last known state before the first paint; and Quit stopping what it runs.
#include "core/workspace.h"
#include "databasepage.h"
#include "deploy/historystore.h"
#include "deploymentspage.h"
#include "healthpage.h"
#include "logspage.h"
#include "mainwindow.h"
#include "rollbackdialog.h"
#include "servers.h"
#include "servicespage.h"
#include "settingsdialog.h"

#include <QAbstractButton>
#include <QAbstractItemModelTester>
#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDockWidget>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QSet>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTcpServer>
#include <QTextBrowser>
#include <QToolBar>
#include <QToolButton>
#include <QTreeWidget>
#include <QtTest>
#include <csignal>

using namespace pilothouse;
using namespace pilothouse::gui;

class TestWindow final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_config;
    QString m_local;
    QString m_compose;
    quint16 m_port = 0;
    std::unique_ptr<Workspace> m_workspace;
    std::unique_ptr<MainWindow> m_window;

    QJsonObject localEnvironment() const
    {
        const QString db = QStringLiteral("sqlite://%1/gui.db").arg(m_dir.path());
        return QJsonObject {
            { QStringLiteral("name"), m_local },
            { QStringLiteral("kind"), QStringLiteral("native") },
            { QStringLiteral("description"), QStringLiteral("deckhand for the GUI test") },
            { QStringLiteral("processes"),
              QJsonArray { QJsonObject {
                  { QStringLiteral("name"), QStringLiteral("deckhand") },
                  { QStringLiteral("program"), QStringLiteral("deckhand") },
                  { QStringLiteral("args"), QJsonArray { QStringLiteral("serve") } },
                  { QStringLiteral("env"),
                    QJsonObject {
                        { QStringLiteral("PORT"), QString::number(m_port) },
                        { QStringLiteral("HOST"), QStringLiteral("127.0.0.1") },
                        { QStringLiteral("DATABASE_URL"), db },
                        { QStringLiteral("CHECK_INTERVAL_SECONDS"), QStringLiteral("0.5") } } },
                  { QStringLiteral("stopGraceSeconds"), 5 } } } },
            { QStringLiteral("services"),
              QJsonArray {
                  QJsonObject { { QStringLiteral("name"), QStringLiteral("deckhand") },
                                { QStringLiteral("health"),
                                  QJsonArray { QJsonObject {
                                      { QStringLiteral("url"),
                                        QStringLiteral("http://127.0.0.1:%1/readyz").arg(m_port) },
                                      { QStringLiteral("intervalSeconds"), 0.2 },
                                      { QStringLiteral("timeoutSeconds"), 1 } } } } } } },
            { QStringLiteral("database"), QJsonObject { { QStringLiteral("dsn"), db } } },
        };
    }

    QJsonObject composeEnvironment() const
    {
        // An engine that is certainly not there: the window must say so.
        return QJsonObject {
            { QStringLiteral("name"), m_compose },
            { QStringLiteral("kind"), QStringLiteral("compose") },
            { QStringLiteral("docker"),
              QJsonObject { { QStringLiteral("host"),
                              QStringLiteral("unix://%1/no-docker.sock").arg(m_dir.path()) } } },
            { QStringLiteral("compose"),
              QJsonObject { { QStringLiteral("files"),
                              QJsonArray { m_dir.filePath(QStringLiteral("compose.yaml")) } },
                            { QStringLiteral("project"), m_compose } } },
            { QStringLiteral("services"),
              QJsonArray { QJsonObject { { QStringLiteral("name"), QStringLiteral("api") } } } },
            { QStringLiteral("image"),
              QJsonObject { { QStringLiteral("repository"),
                              QStringLiteral("127.0.0.1:1/pilothouse/deckhand") },
                            { QStringLiteral("service"), QStringLiteral("api") } } },
        };
    }

    void writeConfig(const QString &path, const QJsonArray &envs)
    {
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QJsonDocument(QJsonObject { { QStringLiteral("version"), 1 },
                                            { QStringLiteral("environments"), envs } })
                    .toJson());
    }

    QToolButton *toolButton(QAction *action) const
    {
        for (QToolBar *bar : m_window->findChildren<QToolBar *>()) {
            if (auto *b = qobject_cast<QToolButton *>(bar->widgetForAction(action)))
                return b;
        }
        return nullptr;
    }

    // The services table as shown (through its sorting proxy).
    QString cell(int column) const
    {
        QTableView *view = m_window->servicesPage()->view();
        if (view->model()->rowCount() == 0)
            return {};
        return view->model()->index(0, column).data().toString();
    }

    qint64 deckhandPid() const
    {
        StackSession *s = m_workspace->session(m_local);
        const auto st = s ? s->stateOf(QStringLiteral("deckhand")) : std::nullopt;
        return st ? st->pid : 0;
    }

    static bool alive(qint64 pid) { return pid > 0 && ::kill(pid_t(pid), 0) == 0; }

private slots:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        // The panel's own files (history, last state, settings) stay in the temp dir.
        for (const char *var : { "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME" })
            qputenv(var, m_dir.filePath(QString::fromLatin1(var)).toUtf8());
        qputenv("XDG_RUNTIME_DIR", m_dir.path().toUtf8());
        QFile compose(m_dir.filePath(QStringLiteral("compose.yaml")));
        QVERIFY(compose.open(QIODevice::WriteOnly));
        compose.write("services:\n  api:\n    image: busybox\n");
        compose.close();
        m_port = fixtures::freePort();
        m_local = QStringLiteral("guilocal%1").arg(QCoreApplication::applicationPid());
        m_compose = QStringLiteral("guicompose%1").arg(QCoreApplication::applicationPid());
        m_config = m_dir.filePath(QStringLiteral("envs.json"));
        writeConfig(m_config, { localEnvironment(), composeEnvironment() });
    }

    // Before the first frame the window shows what it knew last time, and
    // asks nothing of any process, socket or database.
    void lastKnownStateBeforeTheFirstPaint()
    {
        // What an earlier run left.
        ServiceRow row;
        row.state.service = QStringLiteral("deckhand");
        row.state.state = RunState::Running;
        row.health = ServiceHealth::Healthy;
        const QString path = Workspace::snapshotPath();
        QVERIFY(QDir().mkpath(QFileInfo(path).absolutePath()));
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QJsonDocument(
                    QJsonObject {
                        { m_local,
                          QJsonObject {
                              { QStringLiteral("at"), QStringLiteral("2026-11-30T10:00:00Z") },
                              { QStringLiteral("health"), QStringLiteral("healthy") },
                              { QStringLiteral("services"), QJsonArray { toJson(row) } } } } })
                    .toJson());
        f.close();

        m_workspace = std::make_unique<Workspace>();
        const Outcome loaded = m_workspace->load(m_config);
        QVERIFY2(loaded.ok(), qPrintable(loaded ? QString() : loaded.error()));
        m_window = std::make_unique<MainWindow>(m_workspace.get());
        m_window->selectEnvironment(m_local);
        QVERIFY(!m_workspace->isLive());
        QVERIFY(!m_workspace->session(m_local)->monitor()->isRunning());
        QVERIFY(m_window->servicesPage()->model()->isStale());
        QCOMPARE(cell(ServiceModel::State), QStringLiteral("running"));
        QCOMPARE(cell(ServiceModel::Health), QStringLiteral("healthy"));
        QCOMPARE(toString(m_workspace->health(m_local)), toString(ServiceHealth::Healthy));

        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        QTRY_VERIFY(m_window->hasPainted());
        QTRY_VERIFY(m_workspace->isLive());
        QVERIFY(m_workspace->session(m_local)->monitor()->isRunning());
        // Live now: nothing listens on the port, so it is down, and no longer stale.
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::Health), QStringLiteral("down"), 5000);
        QVERIFY(!m_window->servicesPage()->model()->isStale());
        QVERIFY(m_window->windowTitle().contains(m_local));
    }

    void startThroughTheToolbarUntilHealthy()
    {
        QToolButton *start = toolButton(m_window->startAction());
        QVERIFY(start);
        QVERIFY(start->isEnabled());
        // Nothing runs (no owner anywhere): Stop and Restart have nothing to act on.
        QTRY_VERIFY(!m_window->stopAction()->isEnabled() &&
                    !m_window->restartAction()->isEnabled() && start->isEnabled());
        const qsizetype noticesBefore = m_window->notices().size();
        QSignalSpy finished(m_workspace.get(), &Workspace::operationFinished);
        QTest::mouseClick(start, Qt::LeftButton);
        // The click returns at once; the window stays responsive while it starts.
        QVERIFY(!m_window->startAction()->isEnabled() || !finished.isEmpty());
        QVERIFY(finished.wait(20000));
        QVERIFY2(finished.first().at(1).value<OperationResult>().ok(),
                 qPrintable(finished.first().at(1).value<OperationResult>().message));
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::State), QStringLiteral("running"), 10000);
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::Health), QStringLiteral("healthy"), 15000);
        QCOMPARE(cell(ServiceModel::Service), QStringLiteral("deckhand"));
        QVERIFY(alive(deckhandPid()));
        // The sidebar's badge says it too, in words.
        const QModelIndex first = m_window->sidebar()->model()->index(0, 0);
        QCOMPARE(first.siblingAtColumn(EnvironmentModel::Status).data().toString(),
                 QStringLiteral("healthy"));
        QVERIFY(m_window->statusText().contains(QLatin1String("up done")));
        // A start the user asked for is not a recovery: it is "started by you".
        QVERIFY2(!m_window->notices()
                      .mid(noticesBefore)
                      .join(u'\n')
                      .contains(QLatin1String("recovered")),
                 qPrintable(m_window->notices().mid(noticesBefore).join(u'\n')));
        QTRY_VERIFY(m_window->notices()
                        .mid(noticesBefore)
                        .join(u'\n')
                        .contains(QLatin1String("started by you: ")));
        // Running: Start has nothing to do; Stop and Restart do.
        QTRY_VERIFY(!m_window->startAction()->isEnabled());
        QVERIFY(m_window->stopAction()->isEnabled() && m_window->restartAction()->isEnabled());
        // The environment is this window's: pilothousectl would find its socket.
        QVERIFY(m_workspace->hasRunningNative());
    }

    void healthDatabaseAndLogsViews()
    {
        m_window->showPage(MainWindow::Health);
        QTableView *endpoints = m_window->healthPage()->view();
        QTRY_COMPARE(endpoints->model()->rowCount(), 1);
        QTRY_VERIFY_WITH_TIMEOUT(
            endpoints->model()->index(0, EndpointModel::Status).data().toString() !=
                QLatin1String("unknown"),
            5000);
        endpoints->setCurrentIndex(endpoints->model()->index(0, 0));
        QTRY_VERIFY(m_window->healthPage()->details()->toPlainText().contains(
            QStringLiteral("127.0.0.1:%1/readyz").arg(m_port)));
        // Latency samples for the sparkline.
        QTRY_VERIFY(!endpoints->model()
                         ->index(0, EndpointModel::Trend)
                         .data(HistoryRole)
                         .value<QList<float>>()
                         .isEmpty());

        m_window->showPage(MainWindow::Database);
        m_window->databasePage()->refresh();
        auto *facts = qobject_cast<DatabaseModel *>(m_window->databasePage()->view()->model());
        QVERIFY(facts);
        QTRY_VERIFY_WITH_TIMEOUT(facts->facts().reachable(), 10000);
        QVERIFY(
            !m_window->databasePage()->status()->text().contains(QLatin1String("not reachable")));
        QVERIFY(facts->rowCount() >= 5); // version, latency, size, migration, tables
        QCOMPARE(facts->facts().migrationVersion, 1);
        // Back up now, while deckhand runs on it: verified, listed, with the
        // schema version of the moment.
        DatabasePage *db = m_window->databasePage();
        QCOMPARE(db->backupList()->topLevelItemCount(), 0);
        const qsizetype noticesBeforeBackup = m_window->notices().size();
        QTest::mouseClick(db->backupButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(db->backupList()->topLevelItemCount() == 1, 20000);
        QVERIFY2(db->backupStatus()->text().contains(QLatin1String("Backed up and verified")),
                 qPrintable(db->backupStatus()->text()));
        const QTreeWidgetItem *backup = db->backupList()->topLevelItem(0);
        QCOMPARE(backup->text(2), QStringLiteral("1"));
        QCOMPARE(backup->text(3), QStringLiteral("verified"));
        QVERIFY(QFileInfo::exists(backup->text(4)));
        QVERIFY(backup->text(4).startsWith(m_dir.path())); // under XDG_DATA_HOME
        QVERIFY(db->backupButton()->text().contains(QLatin1String("Back up now")));
        // It ended: news in the notice history, in the one vocabulary.
        QVERIFY2(m_window->notices()
                     .mid(noticesBeforeBackup)
                     .join(u'\n')
                     .contains(QLatin1String("backup ended: Backed up the database of ")),
                 qPrintable(m_window->notices().join(u'\n')));
        // Restore: a confirmation that says what is lost; "no" changes nothing,
        // and a running native environment is never replaced under its writer.
        QVERIFY(!db->restoreButton()->isEnabled());
        db->backupList()->setCurrentItem(db->backupList()->topLevelItem(0));
        QVERIFY(db->restoreButton()->isEnabled());
        QString asked;
        db->setConfirm([&asked](const QString &text) {
            asked = text;
            return false;
        });
        QTest::mouseClick(db->restoreButton(), Qt::LeftButton);
        QVERIFY2(asked.contains(QLatin1String("Everything written to the database since then is "
                                              "lost")) &&
                     asked.contains(QLatin1String("safety backup")),
                 qPrintable(asked));
        QVERIFY(db->backupStatus()->text().contains(QLatin1String("Backed up and verified")));
        db->setConfirm([](const QString &) { return true; });
        QTest::mouseClick(db->restoreButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(
            db->backupStatus()->text().contains(QLatin1String("Restore failed")), 10000);
        QVERIFY2(db->backupStatus()->text().contains(QLatin1String("stop")),
                 qPrintable(db->backupStatus()->text()));
        QTRY_VERIFY(
            m_window->notices().last().startsWith(QLatin1String("restore ended: Restore of ")));
        QVERIFY(alive(deckhandPid()));
        db->setConfirm({});

        m_window->showPage(MainWindow::Logs);
        LogsPage *logs = m_window->logsPage();
        QTRY_VERIFY_WITH_TIMEOUT(logs->filtered()->rowCount() > 0, 10000);
        // Ctrl+F finds in the logs from anywhere in the window.
        m_window->showPage(MainWindow::Services);
        m_window->activateWindow();
        QTest::keyClick(m_window.get(), Qt::Key_F, Qt::ControlModifier);
        QCOMPARE(m_window->pages()->currentIndex(), int(MainWindow::Logs));
        QTRY_VERIFY(logs->search()->hasFocus());
        QTest::keyClicks(logs->search(), QStringLiteral("listening"));
        QTRY_VERIFY(logs->filtered()->rowCount() >= 1);
        for (int i = 0; i < logs->filtered()->rowCount(); ++i)
            QVERIFY(logs->filtered()->index(i, 0).data().toString().contains(
                QLatin1String("listening")));
        logs->copySelection();
        QVERIFY(
            QApplication::clipboard()->text().contains(QLatin1String("\"event\":\"listening\"")));
        logs->search()->clear();
        QVERIFY(logs->follow()->isChecked());
    }

    void notifiesWhenAServiceGoesDownAndRecovers()
    {
        const qint64 pid = deckhandPid();
        QVERIFY(alive(pid));
        const qsizetype before = m_window->notices().size();
        ::kill(pid_t(pid), SIGKILL);
        const auto noticed = [this, before](const char *what) {
            const QStringList n = m_window->notices().mid(before);
            for (const QString &s : n) {
                if (s.contains(QLatin1String(what)))
                    return true;
            }
            return false;
        };
        QTRY_VERIFY2_WITH_TIMEOUT(noticed("deckhand in ") && noticed("killed (SIGKILL)"),
                                  qPrintable(m_window->notices().join(u'\n')), 10000);
        // The supervisor restarts it; the window says it recovered.
        QTRY_VERIFY_WITH_TIMEOUT(noticed("recovered"), 20000);
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::Health), QStringLiteral("healthy"), 10000);
        // Both stay in the notice history (View > Notices), newest first,
        // with when and where, after the status bar and tray moved on.
        QTreeWidget *history = m_window->noticeList();
        QVERIFY(history && history->topLevelItemCount() >= 2);
        QVERIFY2(history->topLevelItem(0)->text(2).contains(QLatin1String("recovered")),
                 qPrintable(history->topLevelItem(0)->text(2)));
        bool crashListed = false;
        for (int i = 0; i < history->topLevelItemCount(); ++i) {
            const QTreeWidgetItem *it = history->topLevelItem(i);
            crashListed = crashListed ||
                (it->text(2) == QLatin1String("crashed") &&
                 it->text(4).contains(QLatin1String("killed (SIGKILL)")) &&
                 it->text(1) == m_local && !it->text(0).isEmpty());
        }
        QVERIFY(crashListed);
        QAction *show = m_window->findChild<QAction *>(QStringLiteral("showNotices"));
        QVERIFY(show && !m_window->noticeHistory()->isVisible());
        show->trigger();
        QVERIFY(m_window->noticeHistory()->isVisible());
        if (!qEnvironmentVariableIsEmpty("PILOTHOUSE_SHOTS"))
            m_window->grab().save(qEnvironmentVariable("PILOTHOUSE_SHOTS") +
                                  QStringLiteral("/notice-history.png"));
        show->trigger();
        QVERIFY(!m_window->noticeHistory()->isVisible());
        // The supervisor's restart is news in the notices, not a status line
        // that keeps saying "Starting" while it is healthy.
        QVERIFY2(!m_window->statusText().contains(QLatin1String("Starting")),
                 qPrintable(m_window->statusText()));
        QVERIFY(deckhandPid() != pid);
    }

    void switcherShortcutsAndEngineErrors()
    {
        QTest::keyClick(m_window.get(), Qt::Key_2, Qt::ControlModifier);
        QCOMPARE(m_window->currentEnvironment(), m_compose);
        QCOMPARE(m_window->sidebar()->currentIndex().row(), 1);
        // No engine at that host: said in words, with what to do.
        QTRY_VERIFY_WITH_TIMEOUT(m_window->banner()->isVisible(), 10000);
        QVERIFY2(m_window->banner()->text().contains(QLatin1String("Docker engine")),
                 qPrintable(m_window->banner()->text()));
        QVERIFY(m_window->banner()->text().contains(QLatin1String("not running or not reachable")));
        // A failed Start: the banner says what to do in a sentence; the
        // command's own output is behind Details, as it printed it (escaped
        // once), and both can be copied.
        QVERIFY(!m_window->bannerDetailsButton()->isVisible());
        QVERIFY(m_window->startAction()->isEnabled());
        m_window->startAction()->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(m_window->bannerDetailsButton()->isVisible(), 30000);
        const QString summary = m_window->banner()->text();
        QVERIFY2(summary.contains(QLatin1String("Start it (systemctl start docker)")),
                 qPrintable(summary));
        // The failed start's own line leads with the fix too; no raw dump.
        QVERIFY2(summary.contains(QLatin1String("up: the Docker daemon at")), qPrintable(summary));
        QVERIFY2(!summary.contains(QLatin1String("stderr")) &&
                     !summary.contains(QLatin1String("Traceback")) &&
                     !summary.contains(QLatin1String("docker.errors")),
                 qPrintable(summary));
        QVERIFY(!m_window->bannerDetails()->isVisible());
        m_window->bannerDetailsButton()->click();
        QVERIFY(m_window->bannerDetails()->isVisible());
        const QString details = m_window->bannerDetails()->toPlainText();
        QVERIFY2(details.startsWith(QLatin1String("$ ")) && details.contains(QLatin1String(" up")),
                 qPrintable(details));
        QVERIFY2(details.contains(QLatin1String("exit code 1")) &&
                     details.contains(QLatin1String("--- stderr ---")),
                 qPrintable(details));
        QVERIFY(!details.contains(QLatin1String("&quot;")) &&
                !details.contains(QLatin1String("&amp;")) &&
                !details.contains(QLatin1String("<br>")));
        if (!qEnvironmentVariableIsEmpty("PILOTHOUSE_SHOTS"))
            m_window->grab().save(qEnvironmentVariable("PILOTHOUSE_SHOTS") +
                                  QStringLiteral("/error-details.png"));
        m_window->bannerCopyButton()->click();
        const QString copied = QGuiApplication::clipboard()->text();
        QVERIFY2(copied.contains(QLatin1String("Start it (systemctl start docker)")) &&
                     copied.contains(QLatin1String("--- stderr ---")) &&
                     !copied.contains(QLatin1String("<b>")),
                 qPrintable(copied));
        m_window->bannerDetailsButton()->click();
        QVERIFY(!m_window->bannerDetails()->isVisible());
        // Deployments of a compose environment: the registry's answer shows, no crash.
        m_window->showPage(MainWindow::Deployments);
        QTRY_VERIFY_WITH_TIMEOUT(!m_window->deploymentsPage()
                                      ->findChild<QLabel *>(QStringLiteral("tagsStatus"))
                                      ->text()
                                      .contains(QLatin1String("Asking")),
                                 20000);
        QVERIFY(!m_window->deploymentsPage()->rollbackButton()->isEnabled());
        // The history opened and reads (empty): no error over it.
        QVERIFY(m_workspace->history()->isOpen());
        QVERIFY(m_window->deploymentsPage()
                    ->findChild<QLabel *>(QStringLiteral("historyError"))
                    ->isHidden());

        QTest::keyClick(m_window.get(), Qt::Key_1, Qt::ControlModifier);
        QCOMPARE(m_window->currentEnvironment(), m_local);
        QCOMPARE(m_window->sidebar()->currentIndex().row(), 0);
        // A native environment deploys nothing, and says why.
        QVERIFY(m_window->deploymentsPage()
                    ->findChild<QLabel *>(QStringLiteral("deploymentsNone"))
                    ->text()
                    .contains(QLatin1String("no image to deploy")));
        // Controls have names for assistive technology.
        for (QWidget *w : std::initializer_list<QWidget *> {
                 m_window->sidebar(), m_window->servicesPage()->view(),
                 m_window->healthPage()->view(), m_window->logsPage()->search() })
            QVERIFY2(!w->accessibleName().isEmpty(), qPrintable(w->objectName()));
        m_window->showPage(MainWindow::Services);
    }

    void settingsRejectAnInvalidFieldWithItsMessage()
    {
        // With --config, that file is the one settings save to (and reload reads).
        const QString target = m_workspace->editablePath();
        QCOMPARE(target, m_config);
        const auto contents = [&target] {
            QFile f(target);
            return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
        };
        const QByteArray before = contents();
        m_window->openSettings();
        SettingsDialog *dialog = nullptr;
        QTRY_VERIFY((dialog = m_window->findChild<SettingsDialog *>()) && dialog->isVisible());
        // Nothing is saved yet, and the footer does not say otherwise.
        const auto *footer = dialog->findChild<QLabel *>(QStringLiteral("saveTarget"));
        QVERIFY(footer);
        QVERIFY2(footer->text().startsWith(QLatin1String("Save writes ")),
                 qPrintable(footer->text()));
        dialog->selectEnvironment(m_compose);
        // The rollout strategy is a field of its own.
        QVERIFY(dialog->fieldWidget(QStringLiteral("deploy.strategy")));
        auto *project =
            qobject_cast<QLineEdit *>(dialog->fieldWidget(QStringLiteral("compose.project")));
        QVERIFY(project);
        // Checked while it is typed, before any Save; put right, it clears.
        project->selectAll();
        QTest::keyClicks(project, QStringLiteral("Bad Name"));
        QTRY_VERIFY2(dialog->errorFor(QStringLiteral("compose.project"))
                         .contains(QLatin1String("is not a valid project name")),
                     qPrintable(dialog->errorFor(QStringLiteral("compose.project"))));
        project->selectAll();
        QTest::keyClicks(project, m_compose);
        QTRY_VERIFY(dialog->errorFor(QStringLiteral("compose.project")).isEmpty());
        QCOMPARE(contents(), before); // nothing written by the checks
        project->setText(QStringLiteral("Not A Project"));
        auto *save = dialog->findChild<QPushButton *>(QStringLiteral("saveEnvironments"));
        QVERIFY(save);
        QTest::mouseClick(save, Qt::LeftButton);
        QVERIFY2(dialog->errorFor(QStringLiteral("compose.project"))
                     .contains(QLatin1String("is not a valid project name")),
                 qPrintable(dialog->errorFor(QStringLiteral("compose.project"))));
        QVERIFY(dialog->isVisible());
        QCOMPARE(contents(), before); // nothing written
        QCOMPARE(dialog->focusWidget(), project); // the first field with a problem

        // A typed secret goes to the keychain or nowhere; never into the file.
        project->setText(m_compose);
        dialog->selectEnvironment(m_local);
        auto *source =
            qobject_cast<QComboBox *>(dialog->fieldWidget(QStringLiteral("database.keychain")));
        QVERIFY(source);
        source->setCurrentIndex(source->findData(QStringLiteral("libpq")));
        auto *description =
            qobject_cast<QLineEdit *>(dialog->fieldWidget(QStringLiteral("description")));
        description->setText(QStringLiteral("edited in the dialog"));
        QSignalSpy changed(m_workspace.get(), &Workspace::environmentsChanged);
        // The dialog closes itself (and is deleted) once saved.
        const QPointer<SettingsDialog> open(dialog);
        QTest::mouseClick(save, Qt::LeftButton);
        QTRY_VERIFY(!open || !open->isVisible() || !open->generalError().isEmpty());
        const QString notSaved = open ? open->generalError() : QString();
        QVERIFY2(notSaved.isEmpty(), qPrintable(notSaved));
        QVERIFY(contents() != before);
        const auto saved = loadEnvironments(target);
        QVERIFY2(saved.ok(), qPrintable(saved ? QString() : saved.error()));
        QCOMPARE(saved->find(m_local)->description, QStringLiteral("edited in the dialog"));
        QCOMPARE(saved->find(m_compose)->project, m_compose);
        QTRY_COMPARE(changed.size(), 1);
        // The running native environment kept running through the reload.
        QVERIFY(alive(deckhandPid()));
    }

    void settingsTestConnectionReportsEachStage()
    {
        m_window->openSettings();
        SettingsDialog *dialog = nullptr;
        QTRY_VERIFY((dialog = m_window->findChild<SettingsDialog *>()) && dialog->isVisible());
        dialog->selectEnvironment(m_compose);
        auto *engine = qobject_cast<QComboBox *>(dialog->fieldWidget(QStringLiteral("engine")));
        auto *host = qobject_cast<QLineEdit *>(dialog->fieldWidget(QStringLiteral("ssh.host")));
        auto *user = qobject_cast<QLineEdit *>(dialog->fieldWidget(QStringLiteral("ssh.user")));
        auto *port = qobject_cast<QSpinBox *>(dialog->fieldWidget(QStringLiteral("ssh.port")));
        auto *key =
            qobject_cast<QLineEdit *>(dialog->fieldWidget(QStringLiteral("docker.identityFile")));
        auto *dockerHost =
            qobject_cast<QLineEdit *>(dialog->fieldWidget(QStringLiteral("docker.host")));
        QVERIFY(engine && host && user && port && key && dockerHost);
        QVERIFY(!host->isVisible()); // this machine's engine: no SSH fields
        engine->setCurrentIndex(engine->findData(QStringLiteral("ssh")));
        QVERIFY(host->isVisible() && key->isVisible() && dockerHost->isReadOnly());
        // A port nothing listens on: refused, a real TCP answer.
        int closedPort = 0;
        {
            QTcpServer probe;
            QVERIFY(probe.listen(QHostAddress::LocalHost));
            closedPort = probe.serverPort();
        }
        QTest::keyClicks(host, QStringLiteral("127.0.0.1"));
        QTest::keyClicks(user, QStringLiteral("deploy"));
        port->setValue(closedPort);
        QCOMPARE(dockerHost->text(), QStringLiteral("ssh://deploy@127.0.0.1:%1").arg(closedPort));
        QVERIFY(dialog->documentText().contains(
            QStringLiteral("ssh://deploy@127.0.0.1:%1").arg(closedPort).toUtf8()));

        // A key file that is not there: the form's own problem, before any connection.
        key->setText(QStringLiteral("/nonexistent/id_ed25519"));
        auto *test = dialog->findChild<QPushButton *>(QStringLiteral("testConnection"));
        auto *summary = dialog->findChild<QLabel *>(QStringLiteral("connectionSummary"));
        auto *steps = dialog->findChild<QTreeWidget *>(QStringLiteral("connectionSteps"));
        QVERIFY(test && summary && steps);
        QTest::mouseClick(test, Qt::LeftButton);
        QVERIFY2(summary->text().contains(QLatin1String("docker.identityFile")) &&
                     summary->text().contains(QLatin1String("does not exist")),
                 qPrintable(summary->text()));

        key->clear();
        QElapsedTimer clock;
        clock.start();
        QTest::mouseClick(test, Qt::LeftButton);
        QVERIFY(!test->isEnabled()); // one test at a time
        QTRY_VERIFY_WITH_TIMEOUT(test->isEnabled(), 5000);
        QVERIFY(clock.elapsed() < 5000);
        QCOMPARE(steps->topLevelItemCount(), 5);
        QCOMPARE(steps->topLevelItem(0)->text(0), QStringLiteral("TCP"));
        QCOMPARE(steps->topLevelItem(0)->text(1), QStringLiteral("failed"));
        QVERIFY2(steps->topLevelItem(0)->text(2).contains(
                     QStringLiteral("127.0.0.1:%1 refused the connection").arg(closedPort)),
                 qPrintable(steps->topLevelItem(0)->text(2)));
        for (int i = 1; i < 5; ++i)
            QCOMPARE(steps->topLevelItem(i)->text(1), QStringLiteral("skipped"));
        QVERIFY2(summary->text().startsWith(QLatin1String("TCP failed: 127.0.0.1:")) &&
                     summary->text().contains(QLatin1String("is sshd running there")),
                 qPrintable(summary->text()));
        QVERIFY(!steps->accessibleName().isEmpty() && !test->text().isEmpty());
        if (!qEnvironmentVariableIsEmpty("PILOTHOUSE_SHOTS"))
            dialog->grab().save(qEnvironmentVariable("PILOTHOUSE_SHOTS") +
                                QStringLiteral("/settings-test-connection.png"));

        // A typed tcp:// address survives a look at the SSH form and a switch
        // to another environment and back.
        engine->setCurrentIndex(engine->findData(QStringLiteral("url")));
        dockerHost->clear();
        QTest::keyClicks(dockerHost, QStringLiteral("tcp://127.0.0.1:2375"));
        engine->setCurrentIndex(engine->findData(QStringLiteral("ssh")));
        QVERIFY(dockerHost->text().startsWith(QLatin1String("ssh://deploy@")));
        engine->setCurrentIndex(engine->findData(QStringLiteral("url")));
        QCOMPARE(dockerHost->text(), QStringLiteral("tcp://127.0.0.1:2375"));
        dialog->selectEnvironment(m_local);
        dialog->selectEnvironment(m_compose);
        QCOMPARE(engine->currentData().toString(), QStringLiteral("url"));
        QCOMPARE(dockerHost->text(), QStringLiteral("tcp://127.0.0.1:2375"));
        QVERIFY(dialog->documentText().contains("tcp://127.0.0.1:2375"));

        // Back to this machine's engine: nothing of SSH stays in the file.
        engine->setCurrentIndex(engine->findData(QStringLiteral("local")));
        QVERIFY(!dialog->documentText().contains("ssh://"));
        dialog->reject();
    }

    void rollbackConfirmationSaysWhatChanges()
    {
        RollbackPlan plan;
        plan.service = QStringLiteral("api");
        plan.fromTag = QStringLiteral("sha-bbbbbbb");
        plan.fromDigest = QStringLiteral("sha256:") + QString(64, QLatin1Char('b'));
        plan.toTag = QStringLiteral("sha-aaaaaaa");
        plan.toDigest = QStringLiteral("sha256:") + QString(64, QLatin1Char('a'));
        RollbackDialog calm(plan, QStringLiteral("staging"), RollbackDialog::Kind::Rollback, 10000);
        QCOMPARE(calm.headline(), QStringLiteral("Roll back api in staging to sha-aaaaaaa?"));
        QCOMPARE(calm.change(),
                 QStringLiteral("sha-bbbbbbb (bbbbbbbbbbbb) \u2192 sha-aaaaaaa (aaaaaaaaaaaa)"));
        QVERIFY(calm.warning().isEmpty());
        QVERIFY(calm.confirmButton()->isDefault());

        plan.schemaWarning = QStringLiteral(
            "The database is at schema version 3, newer than sha-aaaaaaa expects (2)");
        RollbackDialog warned(plan, QStringLiteral("staging"), RollbackDialog::Kind::Rollback,
                              10000);
        warned.show();
        QCOMPARE(warned.warning(), plan.schemaWarning);
        // With a warning, Enter does not roll back.
        QVERIFY(!warned.confirmButton()->isDefault());
        QSignalSpy accepted(&warned, &QDialog::accepted);
        QTest::mouseClick(warned.confirmButton(), Qt::LeftButton);
        QCOMPARE(accepted.size(), 1);
    }

    void aBrokenEnvironmentsFileIsShownNotFatal()
    {
        const QString bad = m_dir.filePath(QStringLiteral("bad.json"));
        writeConfig(bad,
                    { QJsonObject { { QStringLiteral("name"), QStringLiteral("Bad Name") },
                                    { QStringLiteral("kind"), QStringLiteral("native") } } });
        Workspace other;
        const Outcome r = other.load(bad);
        QVERIFY(!r.ok());
        QVERIFY(r.error().contains(QLatin1String("bad.json")));
        QVERIFY(other.loadBuiltInInstead().ok());
        QVERIFY(other.isFallback());
        QCOMPARE(other.editablePath(), bad); // settings would save to the file asked for
        MainWindow w(&other);
        w.setStartupError(r.error());
        QVERIFY(w.banner()->text().contains(QLatin1String("bad.json")));
        QVERIFY(w.banner()->text().contains(QLatin1String("name")));
        QCOMPARE(w.sidebar()->model()->rowCount(), 4); // the built-in ones
    }

    // One environment's problem leaves the others usable: listed, greyed,
    // not selectable, its reason in the tooltip and the banner.
    void anInvalidEnvironmentIsListedWithItsReason()
    {
        const QString mixed = m_dir.filePath(QStringLiteral("mixed.json"));
        writeConfig(
            mixed,
            { QJsonObject {
                  { QStringLiteral("name"), QStringLiteral("fine") },
                  { QStringLiteral("kind"), QStringLiteral("native") },
                  { QStringLiteral("processes"),
                    QJsonArray { QJsonObject {
                        { QStringLiteral("name"), QStringLiteral("p") },
                        { QStringLiteral("program"), QStringLiteral("/bin/true") } } } } },
              QJsonObject {
                  { QStringLiteral("name"), QStringLiteral("gone") },
                  { QStringLiteral("kind"), QStringLiteral("compose") },
                  { QStringLiteral("compose"),
                    QJsonObject {
                        { QStringLiteral("files"), QJsonArray { QStringLiteral("nowhere.yaml") } },
                        { QStringLiteral("project"), QStringLiteral("p") } } } } });
        Workspace other;
        const Outcome r = other.load(mixed);
        QVERIFY2(r.ok(), qPrintable(r ? QString() : r.error()));
        MainWindow w(&other);
        QAbstractItemModel *model = w.sidebar()->model();
        QAbstractItemModelTester tester(model,
                                        QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(model->rowCount(), 2);
        const QModelIndex gone = model->index(1, 0);
        QCOMPARE(gone.data().toString(), QStringLiteral("gone"));
        QVERIFY(!(model->flags(gone) & Qt::ItemIsSelectable));
        QVERIFY2(gone.data(Qt::ToolTipRole).toString().contains(QLatin1String("nowhere.yaml")),
                 qPrintable(gone.data(Qt::ToolTipRole).toString()));
        QVERIFY(w.banner()->text().contains(QLatin1String("<b>gone</b> is not usable")));
        QVERIFY(model->flags(model->index(0, 0)) & Qt::ItemIsSelectable);
        // The stack folder can be chosen from the File menu.
        QVERIFY(w.findChild<QAction *>(QStringLiteral("chooseStackFolder")));
    }

    void newModelsPassTheModelTester()
    {
        DeploymentModel deployments;
        QAbstractItemModelTester t1(&deployments,
                                    QAbstractItemModelTester::FailureReportingMode::QtTest);
        Deployment d;
        d.id = 7;
        d.service = QStringLiteral("api");
        d.fromTag = QStringLiteral("sha-a");
        d.toTag = QStringLiteral("sha-b");
        d.toDigest = QStringLiteral("sha256:0123456789abcdef");
        d.outcome = Deployment::Outcome::Reverted;
        d.startedAt = QDateTime::currentDateTimeUtc().addSecs(-30);
        d.finishedAt = d.startedAt.addSecs(12);
        d.reason = QStringLiteral("gate failed");
        d.logLines = { QStringLiteral("one"), QStringLiteral("two") };
        Deployment started = d;
        started.strategy = QStringLiteral("start-first");
        deployments.setDeployments({ d, started });
        QCOMPARE(deployments.rowCount(), 2);
        QCOMPARE(deployments.index(1, DeploymentModel::Outcome).data().toString(),
                 QStringLiteral("reverted, start-first"));
        QCOMPARE(deployments.index(0, DeploymentModel::To).data().toString(),
                 QStringLiteral("sha-b (0123456789ab)"));
        QCOMPARE(deployments.index(0, DeploymentModel::Outcome).data().toString(),
                 QStringLiteral("reverted"));
        QCOMPARE(deployments.index(0, DeploymentModel::Duration).data().toString(),
                 QStringLiteral("12.0 s"));
        QCOMPARE(deployments.index(0, 0).data(DetailRole).toString(), QStringLiteral("one\ntwo"));

        LogStore store(100);
        LogModel logs;
        QAbstractItemModelTester t2(&logs, QAbstractItemModelTester::FailureReportingMode::QtTest);
        logs.setCapacity(50);
        logs.setSource(&store, QStringLiteral("api"));
        for (int i = 0; i < 200; ++i) {
            store.append(QStringLiteral("api"),
                         QStringLiteral("{\"level\":\"%1\",\"n\":%2}")
                             .arg(i % 2 ? QStringLiteral("error") : QStringLiteral("info"))
                             .arg(i));
            store.append(QStringLiteral("worker"), QStringLiteral("other"));
        }
        // Bounded: only the newest 50 of api's lines, in order.
        QTRY_COMPARE(logs.rowCount(), 50);
        QVERIFY(logs.index(49, 0).data().toString().contains(QLatin1String("\"n\":199")));
        QVERIFY(logs.index(0, 0).data().toString().contains(QLatin1String("\"n\":150")));
        QCOMPARE(logs.index(49, 0).data(LevelRole).toString(), QStringLiteral("error"));
        logs.setSource(&store, {});
        QVERIFY(logs.index(0, 0).data().toString().contains(QLatin1String(" | ")));
    }

    // Tab walks every control and leaves the tables (arrows move inside);
    // the service toolbar is on the way, and each stop has a name.
    void keyboardReachesEveryControl()
    {
        m_window->showPage(MainWindow::Services);
        m_window->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(m_window.get()));
        QTableView *view = m_window->servicesPage()->view();
        view->setFocus(Qt::TabFocusReason);
        QTRY_COMPARE(QApplication::focusWidget(), view);
        // A chosen row enables the buttons that act on it.
        view->selectRow(0);
        QTRY_VERIFY(view->selectionModel()->hasSelection());
        QTest::keyClick(view, Qt::Key_Tab);
        QVERIFY2(QApplication::focusWidget() != view, "Tab stays inside the services table");
        QSet<QString> visited;
        QWidget *first = QApplication::focusWidget();
        for (int i = 0; i < 60; ++i) {
            QWidget *w = QApplication::focusWidget();
            QVERIFY(w);
            visited << (w->objectName().isEmpty() ? w->accessibleName() : w->objectName());
            QVERIFY2(!w->accessibleName().isEmpty() || !w->objectName().isEmpty() ||
                         qobject_cast<QAbstractButton *>(w),
                     w->metaObject()->className());
            QTest::keyClick(w, Qt::Key_Tab);
            if (QApplication::focusWidget() == first)
                break;
        }
        qInfo("Tab visits: %s", qPrintable(QStringList(visited.begin(), visited.end()).join(u',')));
        for (const char *must : { "servicesView", "Restart service", "Stop service", "Show logs" })
            QVERIFY2(visited.contains(QLatin1String(must)),
                     qPrintable(QStringList(visited.begin(), visited.end()).join(u',')));
    }

    void stopThroughTheToolbar()
    {
        m_window->selectEnvironment(m_local);
        const qint64 pid = deckhandPid();
        QVERIFY(alive(pid));
        QToolButton *stop = toolButton(m_window->stopAction());
        QVERIFY(stop && stop->isEnabled());
        const qsizetype notices = m_window->notices().size();
        QSignalSpy finished(m_workspace.get(), &Workspace::operationFinished);
        QTest::mouseClick(stop, Qt::LeftButton);
        QVERIFY(finished.wait(15000));
        QVERIFY(finished.first().at(1).value<OperationResult>().ok());
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::State), QStringLiteral("exited"), 5000);
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::Health), QStringLiteral("down"), 5000);
        QTRY_VERIFY(!alive(pid));
        // Stopping on purpose is one line in the history, in the words of
        // the notices: no "down" or "unhealthy" news.
        QTRY_COMPARE(m_window->notices().size(), notices + 1);
        QVERIFY2(m_window->notices().last().startsWith(QLatin1String("stopped by you: ")),
                 qPrintable(m_window->notices().last()));
        QTRY_VERIFY(m_window->startAction()->isEnabled() && !m_window->stopAction()->isEnabled());
        // Start again, for the last test.
        QSignalSpy again(m_workspace.get(), &Workspace::operationFinished);
        m_window->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(m_window.get()));
        QTest::keyClick(m_window.get(), Qt::Key_S, Qt::ControlModifier | Qt::ShiftModifier);
        QVERIFY(again.wait(15000));
        QTRY_COMPARE_WITH_TIMEOUT(cell(ServiceModel::State), QStringLiteral("running"), 10000);
    }

    void quitStopsWhatItRuns()
    {
        const qint64 pid = deckhandPid();
        QVERIFY(alive(pid));
        // What Quit does before it leaves (leaving would end this test too).
        QSignalSpy done(m_workspace.get(), &Workspace::shutdownFinished);
        m_workspace->shutdown();
        QVERIFY(done.wait(15000));
        QTRY_VERIFY_WITH_TIMEOUT(!alive(pid), 5000);
        QVERIFY(!m_workspace->hasRunningNative());
    }

    void cleanupTestCase()
    {
        m_window.reset();
        m_workspace.reset();
    }
};

QTEST_MAIN(TestWindow)
#include "tst_window.moc"
