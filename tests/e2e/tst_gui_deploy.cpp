// The rollback flow in the window, on a real engine and registry: Start the
// stack on A from the toolbar, deploy B from the registry's tag list through
// the confirmation, roll back to A with the one-click button, deploy the
// broken C and watch the window show the automatic revert with its reason
// and log lines. Run by stack_e2e.py after tst_deploy, with the same registry
// and builds; with PILOTHOUSE_SCREENSHOT_DIR set it saves the deployments view.
#include "core/workspace.h"
#include "deploymentspage.h"
#include "e2e_env.h"
#include "mainwindow.h"
#include "models/models.h"
#include "rollbackdialog.h"
#include "servers.h"
#include "servicespage.h"

#include <QAction>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTableView>
#include <QToolBar>
#include <QToolButton>
#include <QtTest>

using namespace pilothouse;
using namespace pilothouse::gui;

using pilothouse::e2e::var;

class TestGuiDeploy final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::unique_ptr<Workspace> m_workspace;
    std::unique_ptr<MainWindow> m_window;
    QString m_a, m_b, m_c;

    DeploymentsPage *page() const { return m_window->deploymentsPage(); }

    bool apiHealthyOn(const QString &tag) const
    {
        for (const ServiceRow &r : m_workspace->session(QStringLiteral("e2e"))->services()) {
            if (r.state.service == QLatin1String("api"))
                return r.state.tag == tag && r.health == ServiceHealth::Healthy;
        }
        return false;
    }

    void click(QAction *action)
    {
        for (QToolBar *bar : m_window->findChildren<QToolBar *>()) {
            if (auto *b = qobject_cast<QToolButton *>(bar->widgetForAction(action))) {
                QTest::mouseClick(b, Qt::LeftButton);
                return;
            }
        }
        QFAIL("no tool button for the action");
    }

    bool selectTag(const QString &tag)
    {
        for (int i = 0; i < page()->tags()->count(); ++i) {
            QListWidgetItem *item = page()->tags()->item(i);
            if (item->data(Qt::UserRole).toString() == tag) {
                page()->tags()->setCurrentItem(item);
                item->setSelected(true);
                return true;
            }
        }
        return false;
    }

    // Clicks the button, waits for the confirmation, checks it, confirms.
    void confirmThrough(QPushButton *button, const QString &expectChange)
    {
        QVERIFY(button->isEnabled());
        QTest::mouseClick(button, Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(page()->pendingDialog() && page()->pendingDialog()->isVisible(),
                                 10000);
        RollbackDialog *dialog = page()->pendingDialog();
        QVERIFY2(dialog->change().startsWith(expectChange), qPrintable(dialog->change()));
        // What the strategy costs: nothing, with start-first.
        const auto *note = dialog->findChild<QLabel *>(QStringLiteral("rolloutNote"));
        QVERIFY(note);
        QVERIFY2(note->text().contains(QLatin1String("no outage")), qPrintable(note->text()));
        QTest::mouseClick(dialog->confirmButton(), Qt::LeftButton);
    }

    void screenshot(const char *name)
    {
        const QString dir = var("PILOTHOUSE_SCREENSHOT_DIR");
        if (dir.isEmpty())
            return;
        QDir().mkpath(dir);
        QVERIFY(m_window->grab().save(QStringLiteral("%1/%2.png").arg(dir, QLatin1String(name))));
    }

private slots:
    void initTestCase()
    {
        PILOTHOUSE_REQUIRE(var("PILOTHOUSE_E2E_PROJECT").isEmpty()
                               ? QStringLiteral("run by tests/e2e/stack_e2e.py (engine, registry, "
                                                "builds, PILOTHOUSE_E2E_*)")
                               : QString());
        QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));
        m_a = var("PILOTHOUSE_E2E_TAG_A");
        m_b = var("PILOTHOUSE_E2E_TAG_B");
        m_c = var("PILOTHOUSE_E2E_TAG_C");
        QJsonObject env =
            e2e::deployEnvironment(QStringLiteral("e2e"), var("PILOTHOUSE_E2E_REPOSITORY"), 0.5);
        env.insert(QStringLiteral("description"),
                   QStringLiteral("the deckhand stack on this engine"));
        // As the built-in compose environments ship: start-first behind the proxy.
        QJsonObject deploy = env.value(u"deploy").toObject();
        deploy.insert(QStringLiteral("strategy"), QStringLiteral("start-first"));
        deploy.insert(QStringLiteral("containerPort"), 8000);
        env.insert(QStringLiteral("deploy"), deploy);
        const QString config = m_dir.filePath(QStringLiteral("envs.json"));
        QVERIFY(e2e::writeEnvironments(config, { env }));
        m_workspace = std::make_unique<Workspace>();
        const Outcome loaded = m_workspace->load(config);
        QVERIFY2(loaded.ok(), qPrintable(loaded ? QString() : loaded.error()));
        m_window = std::make_unique<MainWindow>(m_workspace.get());
        m_window->resize(1280, 800);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        QTRY_VERIFY(m_workspace->isLive());
        QTRY_VERIFY_WITH_TIMEOUT(m_workspace->session(QStringLiteral("e2e"))->watcher()->isSeeded(),
                                 30000);
    }

    void startTheStackFromTheToolbar()
    {
        // The stack's first start uses A (as a deployment made earlier would have pinned it).
        m_workspace->session(QStringLiteral("e2e"))->setPinnedTag(m_a);
        QSignalSpy finished(m_workspace.get(), &Workspace::operationFinished);
        click(m_window->startAction());
        QVERIFY(finished.wait(300000));
        QVERIFY2(finished.first().at(1).value<OperationResult>().ok(),
                 qPrintable(finished.first().at(1).value<OperationResult>().message));
        QTRY_VERIFY_WITH_TIMEOUT(m_workspace->session(QStringLiteral("e2e"))->aggregate() ==
                                     ServiceHealth::Healthy,
                                 180000);
        QVERIFY(apiHealthyOn(m_a));
        screenshot("main-compose");
    }

    void deployFromTheTagList()
    {
        m_window->showPage(MainWindow::Deployments);
        page()->refreshTags();
        QTRY_VERIFY_WITH_TIMEOUT(selectTag(m_b), 15000);
        QTRY_VERIFY(page()->running()->text().contains(m_a));
        confirmThrough(page()->deployButton(), m_a + QLatin1String(" ("));
        QTRY_VERIFY_WITH_TIMEOUT(page()->cancelButton()->isVisible(), 30000);
        // The services table shows both versions, each saying its part.
        m_window->showPage(MainWindow::Services);
        const auto states = [this] {
            QStringList out;
            const QAbstractItemModel *m = m_window->servicesPage()->view()->model();
            for (int r = 0; r < m->rowCount(); ++r)
                out << m->index(r, ServiceModel::State).data().toString();
            return out.join(u'|');
        };
        QTRY_VERIFY2_WITH_TIMEOUT(states().contains(QLatin1String("new, health gate")) &&
                                      states().contains(QLatin1String("old, serving")),
                                  qPrintable(states()), 60000);
        screenshot("services-rollout");
        m_window->showPage(MainWindow::Deployments);
        QTRY_VERIFY_WITH_TIMEOUT(page()->outcome()->text().contains(QLatin1String("succeeded")),
                                 120000);
        QVERIFY(apiHealthyOn(m_b));
        QVERIFY2(!states().contains(QLatin1String("old,")), qPrintable(states()));
        QTRY_VERIFY(page()->running()->text().contains(m_b));
        QVERIFY(!page()->cancelButton()->isVisible());
    }

    void rollBackInOneClick()
    {
        QTRY_COMPARE_WITH_TIMEOUT(page()->rollbackButton()->text(),
                                  QStringLiteral("Roll back to %1").arg(m_a), 15000);
        confirmThrough(page()->rollbackButton(), m_b + QLatin1String(" ("));
        QTRY_VERIFY_WITH_TIMEOUT(page()->outcome()->text().contains(QLatin1String("succeeded")),
                                 120000);
        QVERIFY(apiHealthyOn(m_a));
        QTRY_VERIFY_WITH_TIMEOUT(page()->historyView()->model()->rowCount() == 2, 10000);
    }

    void brokenBuildIsRevertedAndTheWindowSaysWhy()
    {
        QVERIFY(selectTag(m_c));
        confirmThrough(page()->deployButton(), m_a + QLatin1String(" ("));
        // Through the gate, into the revert.
        QTRY_VERIFY_WITH_TIMEOUT(page()->stepLabel()->text().contains(QLatin1String("going back")),
                                 90000);
        QTRY_VERIFY_WITH_TIMEOUT(page()->outcome()->text().contains(QLatin1String("reverted")),
                                 120000);
        QVERIFY2(page()->outcome()->text().contains(QLatin1String("health gate")),
                 qPrintable(page()->outcome()->text()));
        QVERIFY(page()->logLines()->isVisible());
        QVERIFY(
            page()->logLines()->toPlainText().contains(QLatin1String("SSL"), Qt::CaseInsensitive));
        QVERIFY(apiHealthyOn(m_a));
        QTRY_VERIFY_WITH_TIMEOUT(page()->historyView()->model()->rowCount() == 3, 10000);
        page()->historyView()->sortByColumn(DeploymentModel::Started, Qt::DescendingOrder);
        // The model may reset while the loop runs (the history is read again):
        // take the index anew on every try, never one held across the loop.
        const auto newest = [this] {
            return page()
                ->historyView()
                ->model()
                ->index(0, DeploymentModel::Outcome)
                .data()
                .toString();
        };
        QTRY_COMPARE(newest(), QStringLiteral("reverted, start-first"));
        page()->historyView()->selectRow(0);
        screenshot("deployments");
        // A notice was given (the status bar here; a tray shows it on desktops).
        QVERIFY(!m_window->notices().isEmpty());
    }

    // Quitting during a deployment puts the previous tag back before leaving.
    void quitDuringADeploymentReverts()
    {
        QVERIFY(selectTag(m_b));
        confirmThrough(page()->deployButton(), m_a + QLatin1String(" ("));
        Deployer *d = m_workspace->deployer(QStringLiteral("e2e"));
        QTRY_VERIFY_WITH_TIMEOUT(d->step() == DeployStep::WaitingForHealth, 60000);
        QVERIFY(m_workspace->hasRunningDeployment());
        QSignalSpy done(m_workspace.get(), &Workspace::shutdownFinished);
        m_workspace->shutdown(); // what Quit does first
        QVERIFY(done.wait(120000));
        QVERIFY(!m_workspace->hasRunningDeployment());
        QTRY_VERIFY(page()->outcome()->text().contains(QLatin1String("cancelled")));
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_a), 10000);
    }

    void stopTheStack()
    {
        m_window->showPage(MainWindow::Services);
        QSignalSpy finished(m_workspace.get(), &Workspace::operationFinished);
        click(m_window->stopAction());
        QVERIFY(finished.wait(180000));
        QVERIFY2(finished.first().at(1).value<OperationResult>().ok(),
                 qPrintable(finished.first().at(1).value<OperationResult>().message));
    }

    void cleanupTestCase()
    {
        m_window.reset();
        m_workspace.reset();
    }
};

QTEST_MAIN(TestGuiDeploy)
#include "tst_gui_deploy.moc"
