// The compose stack from a fresh clone, in the window, on the real engine
// with no registry: Start on the built-in local-compose (pointed at the
// clone, as stack_e2e.py's --config does) makes .env, builds the checkout
// and turns healthy; the Database page shows the stack's own PostgreSQL;
// after a second commit, Build makes a new rollback point that the tag list
// shows first; deploy it, then roll back to the first build in one click.
// Run by stack_e2e.py (PILOTHOUSE_E2E_CLONE, PILOTHOUSE_E2E_CLONE_CONFIG).
#include "core/workspace.h"
#include "databasepage.h"
#include "deploymentspage.h"
#include "e2e_env.h"
#include "mainwindow.h"
#include "rollbackdialog.h"
#include "servers.h"

#include <QAction>
#include <QFile>
#include <QLabel>
#include <QListWidget>
#include <QProcess>
#include <QPushButton>
#include <QTableView>
#include <QToolBar>
#include <QToolButton>
#include <QtTest>
#include <optional>

using namespace pilothouse;
using namespace pilothouse::gui;

using pilothouse::e2e::var;

namespace {
const QString kEnv = QStringLiteral("local-compose");
}

class TestGuiClone final : public QObject
{
    Q_OBJECT

private:
    std::unique_ptr<Workspace> m_workspace;
    std::unique_ptr<MainWindow> m_window;
    QString m_clone;
    QString m_first, m_second; // sha-<commit> of the two builds

    DeploymentsPage *page() const { return m_window->deploymentsPage(); }

    // git in the clone; nullopt when it fails.
    std::optional<QString> git(const QStringList &args)
    {
        QProcess p;
        p.setWorkingDirectory(m_clone);
        p.start(QStringLiteral("git"),
                QStringList { QStringLiteral("-c"), QStringLiteral("user.name=Pilothouse E2E"),
                              QStringLiteral("-c"), QStringLiteral("user.email=e2e@example.com") } +
                    args);
        if (!p.waitForFinished(60000) || p.exitStatus() != QProcess::NormalExit ||
            p.exitCode() != 0)
            return std::nullopt;
        return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
    }

    bool apiHealthyOn(const QString &tag) const
    {
        for (const ServiceRow &r : m_workspace->session(kEnv)->services()) {
            if (r.state.service == QLatin1String("api"))
                return r.state.tag == tag && r.health == ServiceHealth::Healthy;
        }
        return false;
    }

    void click(QAction *action)
    {
        for (QToolBar *bar : m_window->findChildren<QToolBar *>()) {
            if (auto *b = qobject_cast<QToolButton *>(bar->widgetForAction(action))) {
                QVERIFY(b->isVisible() && b->isEnabled());
                QTest::mouseClick(b, Qt::LeftButton);
                return;
            }
        }
        QFAIL("no tool button for the action");
    }

    // Clicks an action and waits for its operation to end; returns its result.
    OperationResult runAction(QAction *action, int timeoutMs)
    {
        QSignalSpy finished(m_workspace.get(), &Workspace::operationFinished);
        click(action);
        if (!QTest::qWaitFor([&] { return !finished.isEmpty(); }, timeoutMs))
            return { StackOperation::Up,
                     {},
                     OperationResult::Outcome::Failed,
                     QStringLiteral("no answer within %1 s").arg(timeoutMs / 1000) };
        return finished.first().at(1).value<OperationResult>();
    }

    QStringList listedTags() const
    {
        QStringList out;
        for (int i = 0; i < page()->tags()->count(); ++i)
            out << page()->tags()->item(i)->data(Qt::UserRole).toString();
        return out;
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

    void confirmThrough(QPushButton *button, const QString &expectChange)
    {
        QVERIFY(button->isEnabled());
        QTest::mouseClick(button, Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(page()->pendingDialog() && page()->pendingDialog()->isVisible(),
                                 10000);
        RollbackDialog *dialog = page()->pendingDialog();
        QVERIFY2(dialog->change().startsWith(expectChange), qPrintable(dialog->change()));
        QTest::mouseClick(dialog->confirmButton(), Qt::LeftButton);
    }

    QString databaseFact(const QString &name) const
    {
        QAbstractItemModel *model = m_window->databasePage()->view()->model();
        for (int row = 0; model && row < model->rowCount(); ++row) {
            if (model->index(row, 0).data().toString() == name)
                return model->index(row, 1).data().toString();
        }
        return {};
    }

private slots:
    void initTestCase()
    {
        PILOTHOUSE_REQUIRE(var("PILOTHOUSE_E2E_CLONE").isEmpty()
                               ? QStringLiteral("run by tests/e2e/stack_e2e.py (engine, a fresh "
                                                "clone, PILOTHOUSE_E2E_CLONE*)")
                               : QString());
        QCoreApplication::setApplicationName(QStringLiteral("pilothouse"));
        m_clone = var("PILOTHOUSE_E2E_CLONE");
        QVERIFY(!QFile::exists(m_clone + QStringLiteral("/.env")));
        m_first = QStringLiteral("sha-") +
            git({ QStringLiteral("rev-parse"), QStringLiteral("HEAD") }).value_or(QString());
        QCOMPARE(m_first.size(), 44);
        m_workspace = std::make_unique<Workspace>();
        const Outcome loaded = m_workspace->load(var("PILOTHOUSE_E2E_CLONE_CONFIG"));
        QVERIFY2(loaded.ok(), qPrintable(loaded ? QString() : loaded.error()));
        m_window = std::make_unique<MainWindow>(m_workspace.get());
        m_window->resize(1280, 800);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        QTRY_VERIFY(m_workspace->isLive());
        QTRY_VERIFY_WITH_TIMEOUT(m_workspace->session(kEnv)->watcher()->isSeeded(), 30000);
    }

    void startOnAFreshClone()
    {
        // The Build action is there for an environment whose image comes from the checkout.
        QVERIFY(m_window->buildAction()->isVisible());
        QStringList progress;
        const QMetaObject::Connection listening =
            connect(m_workspace.get(), &Workspace::operationProgress, this,
                    [&progress](const QString &, const QString &m) { progress << m; });
        const OperationResult r = runAction(m_window->startAction(), 900000);
        disconnect(listening);
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(QFile::exists(m_clone + QStringLiteral("/.env")));
        QVERIFY2(progress.filter(QStringLiteral(".env from .env.example")).size() == 1,
                 qPrintable(progress.join(QLatin1Char('\n'))));
        QTRY_VERIFY_WITH_TIMEOUT(m_workspace->session(kEnv)->aggregate() == ServiceHealth::Healthy,
                                 180000);
        QVERIFY(apiHealthyOn(m_first));
    }

    void databasePageShowsTheStacksPostgres()
    {
        m_window->showPage(MainWindow::Database);
        QTRY_COMPARE_WITH_TIMEOUT(databaseFact(QStringLiteral("Status")),
                                  QStringLiteral("reachable"), 60000);
        QVERIFY2(databaseFact(QStringLiteral("Version")).startsWith(QLatin1String("PostgreSQL 15")),
                 qPrintable(databaseFact(QStringLiteral("Version"))));
        QVERIFY2(databaseFact(QStringLiteral("Migration")).toInt() >= 1,
                 qPrintable(databaseFact(QStringLiteral("Migration"))));
        QVERIFY(!databaseFact(QStringLiteral("Connections")).isEmpty());
        // The password stays in .env: the page shows the address, not the secret.
        QFile env(m_clone + QStringLiteral("/.env"));
        QVERIFY(env.open(QIODevice::ReadOnly));
        for (const QByteArray &line : env.readAll().split('\n')) {
            if (line.startsWith("POSTGRES_PASSWORD="))
                QVERIFY(!databaseFact(QStringLiteral("Database"))
                             .contains(QString::fromUtf8(line.mid(18))));
        }
    }

    void buildASecondCommit()
    {
        QFile readme(m_clone + QStringLiteral("/README.md"));
        QVERIFY(readme.open(QIODevice::Append));
        readme.write("\nA line from the window e2e's second commit.\n");
        readme.close();
        QVERIFY(git({ QStringLiteral("commit"), QStringLiteral("--quiet"), QStringLiteral("--all"),
                      QStringLiteral("--message"), QStringLiteral("e2e: a second commit") }));
        m_second = QStringLiteral("sha-") +
            git({ QStringLiteral("rev-parse"), QStringLiteral("HEAD") }).value_or(QString());
        QVERIFY(m_second != m_first);
        m_window->showPage(MainWindow::Deployments);
        const OperationResult r = runAction(m_window->buildAction(), 1800000);
        QCOMPARE(int(r.operation), int(StackOperation::Build));
        QVERIFY2(r.ok(), qPrintable(r.message));
        // The tag list is read again after a build: newest first.
        QTRY_VERIFY_WITH_TIMEOUT(listedTags().value(0) == m_second, 30000);
        QCOMPARE(listedTags().value(1), m_first);
        // Built, not started: the first build still runs.
        QVERIFY(apiHealthyOn(m_first));
    }

    void deployThenRollBackInOneClick()
    {
        QVERIFY(selectTag(m_second));
        confirmThrough(page()->deployButton(), m_first + QLatin1String(" ("));
        QTRY_VERIFY_WITH_TIMEOUT(page()->outcome()->text().contains(QLatin1String("succeeded")),
                                 300000);
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_second), 30000);
        QTRY_COMPARE_WITH_TIMEOUT(page()->rollbackButton()->text(),
                                  QStringLiteral("Roll back to %1").arg(m_first), 15000);
        confirmThrough(page()->rollbackButton(), m_second + QLatin1String(" ("));
        QTRY_VERIFY_WITH_TIMEOUT(page()->outcome()->text().contains(QLatin1String("succeeded")) &&
                                     page()->running()->text().contains(m_first),
                                 300000);
        QTRY_VERIFY_WITH_TIMEOUT(apiHealthyOn(m_first), 30000);
    }

    void stopTheStack()
    {
        m_window->showPage(MainWindow::Services);
        const OperationResult r = runAction(m_window->stopAction(), 180000);
        QVERIFY2(r.ok(), qPrintable(r.message));
    }

    void cleanupTestCase()
    {
        m_window.reset();
        m_workspace.reset();
    }
};

QTEST_MAIN(TestGuiClone)
#include "tst_gui_clone.moc"
