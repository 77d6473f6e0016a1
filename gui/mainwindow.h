#pragma once

#include "core/workspace.h"
#include "models/models.h"

#include <QMainWindow>
#include <QPointer>

class QAction;
class QDockWidget;
class QFrame;
class QPlainTextEdit;
class QToolButton;
class QTreeWidget;
class QLabel;
class QListView;
class QProgressBar;
class QTabWidget;

namespace pilothouse::gui {

class DatabasePage;
class DeploymentsPage;
class HealthPage;
class LogsPage;
class ServicesPage;
class Tray;

// The panel: environments in a sidebar with their status, and for the chosen
// one its stack controls and the services, health, database, logs and
// deployments views. Everything shown comes from the Workspace; clicks go to it.
class MainWindow final : public QMainWindow
{
    Q_OBJECT
public:
    enum Page { Services, Health, Database, Logs, Deployments };

    explicit MainWindow(Workspace *workspace, QWidget *parent = nullptr);
    ~MainWindow() override;

    void selectEnvironment(const QString &name);
    QString currentEnvironment() const { return m_environment; }
    // Shown above the pages, e.g. why the environments file was not used.
    void setStartupError(const QString &message);
    void showPage(Page page);
    // Quit for real: stop what this window runs natively, then leave.
    void quit();
    void openSettings();
    // The checkout the built-in environments run their stack from, remembered.
    void chooseStackFolder();

    QAction *startAction() const { return m_start; }
    QAction *stopAction() const { return m_stop; }
    QAction *restartAction() const { return m_restart; }
    QAction *cancelAction() const { return m_cancel; }
    QAction *buildAction() const { return m_build; }
    QAction *refreshAction() const { return m_refresh; }
    QListView *sidebar() const { return m_sidebar; }
    QTabWidget *pages() const { return m_tabs; }
    QLabel *banner() const { return m_banner; }
    // The banner's raw output of a failed command, behind its Details toggle.
    QToolButton *bannerDetailsButton() const { return m_bannerDetailsButton; }
    QToolButton *bannerCopyButton() const { return m_bannerCopy; }
    QPlainTextEdit *bannerDetails() const { return m_bannerDetails; }
    QString statusText() const;
    ServicesPage *servicesPage() const { return m_services; }
    HealthPage *healthPage() const { return m_health; }
    DatabasePage *databasePage() const { return m_database; }
    LogsPage *logsPage() const { return m_logs; }
    DeploymentsPage *deploymentsPage() const { return m_deployments; }
    Tray *tray() const { return m_tray; }
    bool hasPainted() const { return m_painted; }
    // The notices of this run, oldest first, as "title: text" (read from
    // the notice history).
    QStringList notices() const;
    // Every notice of this run, newest first, with when and where: a
    // notice shown for a moment (tray or status bar) can be read again.
    QDockWidget *noticeHistory() const { return m_noticeDock; }
    QTreeWidget *noticeList() const { return m_noticeList; }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;
    void closeEvent(QCloseEvent *event) override;

private:
    void buildActions();
    void goLive();
    void updateActions();
    void onOperationStarted(const QString &environment, StackOperation op, const QString &service);
    void onOperationFinished(const QString &environment, const OperationResult &result);
    void onNotice(const Notice &notice);
    void updateBanner();
    void updateTitle();
    void refresh();
    void restoreSettings();
    void saveSettings() const;

    QPointer<Workspace> m_workspace;
    QString m_environment;
    QString m_startupError;
    QString m_lastError;
    QString m_lastErrorDetails;
    QList<QMetaObject::Connection> m_sessionConnections;
    EnvironmentModel *m_envModel;
    QListView *m_sidebar;
    QLabel *m_title;
    QFrame *m_bannerFrame;
    QLabel *m_banner;
    QToolButton *m_bannerDetailsButton;
    QToolButton *m_bannerCopy;
    QPlainTextEdit *m_bannerDetails;
    QTabWidget *m_tabs;
    ServicesPage *m_services;
    HealthPage *m_health;
    DatabasePage *m_database;
    LogsPage *m_logs;
    DeploymentsPage *m_deployments;
    QLabel *m_statusLabel;
    QProgressBar *m_busy;
    QAction *m_start = nullptr;
    QAction *m_stop = nullptr;
    QAction *m_restart = nullptr;
    QAction *m_build = nullptr;
    QAction *m_cancel = nullptr;
    QAction *m_refresh = nullptr;
    QAction *m_settings = nullptr;
    Tray *m_tray;
    QDockWidget *m_noticeDock = nullptr;
    QTreeWidget *m_noticeList = nullptr;
    bool m_painted = false;
    bool m_quitting = false;
};

} // namespace pilothouse::gui
