#pragma once

#include "deploy/deployer.h"
#include "models/models.h"

#include <QPointer>
#include <QWidget>

class QGroupBox;
class QLabel;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QStackedWidget;
class QTableView;

namespace pilothouse {
class Workspace;
}

namespace pilothouse::gui {

class RollbackDialog;

// What runs where, the registry's tags, the history, and one-click rollback
// through the health gate with its progress and outcome.
class DeploymentsPage final : public QWidget
{
    Q_OBJECT
public:
    explicit DeploymentsPage(QWidget *parent = nullptr);

    void setEnvironment(Workspace *workspace, const QString &environment);
    void refreshTags();
    void reloadHistory();

    // One click: the confirmation for a rollback to the previous successful
    // deployment (or to the selected tag); the deployment starts when it is accepted.
    void rollbackToPrevious();
    void deploySelected();

    QPushButton *rollbackButton() const { return m_rollback; }
    QPushButton *deployButton() const { return m_deploy; }
    QPushButton *cancelButton() const { return m_cancel; }
    QListWidget *tags() const { return m_tags; }
    QTableView *historyView() const { return m_history; }
    QLabel *outcome() const { return m_outcome; }
    QLabel *stepLabel() const { return m_step; }
    QLabel *running() const { return m_running; }
    QPlainTextEdit *logLines() const { return m_logLines; }
    RollbackDialog *pendingDialog() const;

signals:
    void deploymentFinished(const pilothouse::DeployResult &result);

private:
    void updateRunning();
    void updatePlan();
    void confirm(const RollbackPlan &plan, bool isRollback);
    void onStep(DeployStep step, const QString &message);
    void onFinished(const DeployResult &result);
    void showDeploymentDetails();
    QString selectedTag() const;

    QPointer<Workspace> m_workspace;
    QString m_environment;
    QPointer<Deployer> m_deployer;
    QPointer<StackSession> m_session;
    QList<QMetaObject::Connection> m_connections;
    std::optional<RollbackPlan> m_plan;
    QString m_plannedFor; // tag@digest the plan was made for
    QPointer<RollbackDialog> m_dialog;

    QStackedWidget *m_stack;
    QLabel *m_none;
    QLabel *m_running;
    QListWidget *m_tags;
    QLabel *m_tagsStatus;
    QPushButton *m_refreshTags;
    QPushButton *m_rollback;
    QPushButton *m_deploy;
    QGroupBox *m_progress;
    QList<std::pair<DeployStep, QLabel *>> m_steps;
    QLabel *m_step;
    QProgressBar *m_bar;
    QPushButton *m_cancel;
    QLabel *m_outcome;
    QPlainTextEdit *m_logLines;
    DeploymentModel *m_model;
    QTableView *m_history;
    QLabel *m_historyError; // why the history could not be read; hidden when it could
    QPlainTextEdit *m_details;
};

} // namespace pilothouse::gui
