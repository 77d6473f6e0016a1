#pragma once

#include "core/notice.h"
#include "db/backup.h"
#include "models/models.h"

#include <QPointer>
#include <QWidget>
#include <functional>

class QLabel;
class QPushButton;
class QTableView;
class QTreeWidget;

namespace pilothouse::gui {

// The environment's database: reachable or why not, version, latency, size,
// connections, migration version and the largest tables; refreshed by the
// probe on its own thread, so a hanging server never freezes the window.
class DatabasePage final : public QWidget
{
    Q_OBJECT
public:
    explicit DatabasePage(QWidget *parent = nullptr);

    void setSession(StackSession *session);
    QTableView *view() const { return m_view; }
    QLabel *status() const { return m_status; }
    QPushButton *refreshButton() const { return m_refresh; }
    // "Back up now", or "Cancel backup" while one runs.
    QPushButton *backupButton() const { return m_backup; }
    QTreeWidget *backupList() const { return m_backups; }
    QLabel *backupStatus() const { return m_backupStatus; }
    QPushButton *restoreButton() const { return m_restore; }
    void refresh();
    void backUpOrCancel();
    // Restores the chosen backup after a confirmation that says what is lost.
    void restoreChosen();
    // The confirmation's answer, for tests (otherwise a dialog asks).
    void setConfirm(std::function<bool(const QString &text)> confirm)
    {
        m_confirm = std::move(confirm);
    }

signals:
    // A backup or restore ended (it may take minutes: news like a deployment's end).
    void notice(const pilothouse::Notice &notice);

private:
    void show(const DatabaseFacts &facts);
    void listBackupsOf(const QString &environment);

    QPointer<StackSession> m_session;
    QMetaObject::Connection m_connection;
    DatabaseModel *m_model;
    QTableView *m_view;
    QLabel *m_status;
    QLabel *m_checked;
    QPushButton *m_refresh;
    QPushButton *m_backup;
    QLabel *m_backupStatus;
    QTreeWidget *m_backups;
    QPushButton *m_restore;
    BackupJob *m_job = nullptr; // the one running, for this page's environment
    RestoreJob *m_restoreJob = nullptr;
    QList<BackupInfo> m_listed;
    std::function<bool(const QString &)> m_confirm;
};

} // namespace pilothouse::gui
