#include "databasepage.h"

#include "style.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QTableView>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace pilothouse::gui {

DatabasePage::DatabasePage(QWidget *parent)
    : QWidget(parent)
    , m_model(new DatabaseModel(this))
    , m_view(new QTableView(this))
    , m_status(new QLabel(this))
    , m_checked(new QLabel(this))
    , m_refresh(new QPushButton(icon("refresh"), tr("&Refresh"), this))
    , m_backup(new QPushButton(tr("&Back up now"), this))
    , m_backupStatus(new QLabel(this))
    , m_backups(new QTreeWidget(this))
    , m_restore(new QPushButton(tr("Re&store..."), this))
{
    m_view->setTabKeyNavigation(false); // Tab leaves the table; arrows move in it
    m_view->setModel(m_model);
    m_view->setObjectName(QStringLiteral("databaseView"));
    m_view->setAccessibleName(tr("Database facts"));
    m_view->verticalHeader()->hide();
    m_view->horizontalHeader()->setStretchLastSection(true);
    m_view->setColumnWidth(DatabaseModel::Fact, 200);
    m_view->setAlternatingRowColors(true);
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_status->setObjectName(QStringLiteral("databaseStatus"));
    m_status->setWordWrap(true);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_refresh->setObjectName(QStringLiteral("databaseRefresh"));
    m_refresh->setToolTip(tr("Probe the database again"));

    m_backup->setObjectName(QStringLiteral("backupNow"));
    m_backup->setToolTip(tr("A verified backup of the database, in a private file"));
    m_backupStatus->setObjectName(QStringLiteral("backupStatus"));
    m_backupStatus->setWordWrap(true);
    m_backupStatus->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_backups->setObjectName(QStringLiteral("backupList"));
    m_backups->setAccessibleName(tr("Backups"));
    m_backups->setRootIsDecorated(false);
    m_backups->setAlternatingRowColors(true);
    m_backups->setTabKeyNavigation(false);
    m_backups->setHeaderLabels(
        { tr("Taken"), tr("Size"), tr("Schema"), tr("Verified"), tr("File") });
    m_backups->header()->setStretchLastSection(true);
    for (int c = 0; c < 4; ++c)
        m_backups->header()->setSectionResizeMode(c, QHeaderView::ResizeToContents);

    auto *top = new QHBoxLayout;
    top->addWidget(m_status, 1);
    top->addWidget(m_checked);
    top->addWidget(m_refresh);
    auto *backupBar = new QHBoxLayout;
    auto *backupTitle = new QLabel(tr("<b>Backups</b>"), this);
    backupBar->addWidget(backupTitle);
    backupBar->addWidget(m_backupStatus, 1);
    backupBar->addWidget(m_backup);
    backupBar->addWidget(m_restore);
    m_restore->setObjectName(QStringLiteral("restoreBackup"));
    m_restore->setToolTip(tr("Put the chosen backup back (a safety backup is taken first)"));
    m_restore->setEnabled(false);
    connect(m_backups, &QTreeWidget::itemSelectionChanged, this, [this] {
        m_restore->setEnabled(!m_backups->selectedItems().isEmpty() && !m_restoreJob &&
                              !(m_job && m_job->isRunning()));
    });
    connect(m_restore, &QPushButton::clicked, this, &DatabasePage::restoreChosen);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addLayout(top);
    layout->addWidget(m_view, 3);
    layout->addLayout(backupBar);
    layout->addWidget(m_backups, 2);
    connect(m_refresh, &QPushButton::clicked, this, &DatabasePage::refresh);
    connect(m_backup, &QPushButton::clicked, this, &DatabasePage::backUpOrCancel);
}

void DatabasePage::setSession(StackSession *session)
{
    if (m_connection)
        disconnect(m_connection);
    if (m_job) {
        // A backup belongs to the environment it was asked for: cancelled,
        // and no longer this page's (it removes its files and itself).
        m_job->disconnect(this);
        m_job->disconnect(m_backupStatus);
        connect(m_job, &BackupJob::finished, m_job, &QObject::deleteLater);
        m_job->cancel();
        m_job = nullptr;
        m_backup->setText(tr("&Back up now"));
    }
    m_session = session;
    DatabaseProbe *probe = session ? session->databaseProbe() : nullptr;
    m_refresh->setEnabled(probe != nullptr);
    m_backup->setEnabled(probe != nullptr);
    m_backupStatus->clear();
    if (m_restoreJob) {
        // A restore is not stopped halfway: it ends on its own, off this page.
        m_restoreJob->disconnect(this);
        m_restoreJob->disconnect(m_backupStatus);
        connect(m_restoreJob, &RestoreJob::finished, m_restoreJob, &QObject::deleteLater);
        m_restoreJob = nullptr;
    }
    m_backups->clear();
    m_listed.clear();
    m_restore->setEnabled(false);
    if (session)
        listBackupsOf(session->environment().name);
    if (!probe) {
        m_model->setFacts({});
        m_status->setText(tr("This environment has no database to probe. Add one "
                             "(\"database\": {\"dsn\": ...}) in Settings."));
        m_checked->clear();
        return;
    }
    m_connection = connect(session, &StackSession::databaseChanged, this, &DatabasePage::show);
    if (probe->facts().checkedAt.isValid()) {
        show(probe->facts());
    } else {
        m_model->setFacts({});
        m_status->setText(
            tr("%1: not probed yet").arg(session->environment().database->displayDsn()));
        m_checked->clear();
    }
}

void DatabasePage::refresh()
{
    DatabaseProbe *probe = m_session ? m_session->databaseProbe() : nullptr;
    if (!probe || probe->isBusy())
        return;
    m_refresh->setEnabled(false);
    m_checked->setText(tr("probing..."));
    probe->probe();
}

void DatabasePage::backUpOrCancel()
{
    if (m_job && m_job->isRunning()) {
        m_job->cancel();
        return;
    }
    if (!m_session || !m_session->databaseProbe())
        return;
    if (!m_job) {
        m_job = new BackupJob(m_session, this);
        connect(m_job, &BackupJob::progress, m_backupStatus, &QLabel::setText);
        connect(m_job, &BackupJob::finished, this,
                [this, environment = m_session->environment().name](const BackupInfo &info,
                                                                    const QString &error) {
                    m_backup->setText(tr("&Back up now"));
                    m_job->deleteLater();
                    m_job = nullptr;
                    Notice n;
                    n.environment = environment;
                    n.kind = error.isEmpty() ? Notice::Kind::BackupSucceeded
                                             : Notice::Kind::BackupFailed;
                    n.title = error.isEmpty() ? tr("Backed up the database of %1").arg(environment)
                                              : tr("Backup of %1 failed").arg(environment);
                    n.text = error.isEmpty() ? tr("verified, %1 MiB: %2")
                                                   .arg(info.size / 1048576.0, 0, 'f', 2)
                                                   .arg(info.path)
                                             : error;
                    emit notice(n);
                    if (!error.isEmpty()) {
                        m_backupStatus->setText(QStringLiteral("<b style='color:%1'>%2</b> %3")
                                                    .arg(colourOf(Tone::Bad).name(),
                                                         tr("Backup failed:"),
                                                         error.toHtmlEscaped()));
                    } else {
                        m_backupStatus->setText(tr("Backed up and verified: %1 (%2 MiB in %3 s)")
                                                    .arg(info.path.toHtmlEscaped())
                                                    .arg(info.size / 1048576.0, 0, 'f', 2)
                                                    .arg(info.elapsedMs / 1000.0, 0, 'f', 1));
                    }
                    listBackupsOf(info.environment);
                });
    }
    m_backup->setText(tr("Cancel &backup"));
    m_job->start(QStringLiteral("manual"));
}

void DatabasePage::restoreChosen()
{
    const QList<QTreeWidgetItem *> chosen = m_backups->selectedItems();
    if (!m_session || chosen.isEmpty() || m_restoreJob)
        return;
    const qsizetype index = m_backups->indexOfTopLevelItem(chosen.first());
    if (index < 0 || index >= m_listed.size())
        return;
    const BackupInfo backup = m_listed.at(index);
    const bool sqlite = backup.format == QLatin1String("sqlite");
    const QString text =
        tr("Restore the backup of %1 taken %2 (%3 MiB, schema version %4)?\n\n"
           "Everything written to the database since then is lost. %5 A safety backup of "
           "the current state is taken first, so this can be undone.")
            .arg(backup.environment,
                 QLocale().toString(backup.takenAt.toLocalTime(), QLocale::ShortFormat))
            .arg(backup.size / 1048576.0, 0, 'f', 2)
            .arg(backup.schemaVersion < 0 ? tr("unknown") : QString::number(backup.schemaVersion))
            .arg(sqlite ? tr("The environment must be stopped.")
                        : tr("The services that write are stopped meanwhile and started again "
                             "after."));
    const bool yes = m_confirm ? m_confirm(text)
                               : QMessageBox::warning(this, tr("Restore a backup"), text,
                                                      QMessageBox::Yes | QMessageBox::Cancel,
                                                      QMessageBox::Cancel) == QMessageBox::Yes;
    if (!yes)
        return;
    m_restore->setEnabled(false);
    m_backup->setEnabled(false);
    m_restoreJob = new RestoreJob(m_session, this);
    connect(m_restoreJob, &RestoreJob::progress, m_backupStatus, &QLabel::setText);
    connect(
        m_restoreJob, &RestoreJob::finished, this,
        [this, environment = backup.environment](const QString &error, const QString &safety) {
            m_restoreJob->deleteLater();
            m_restoreJob = nullptr;
            m_backup->setEnabled(m_session && m_session->databaseProbe());
            Notice n;
            n.environment = environment;
            n.kind = error.isEmpty() ? Notice::Kind::RestoreSucceeded : Notice::Kind::RestoreFailed;
            n.title = error.isEmpty() ? tr("Restored the database of %1").arg(environment)
                                      : tr("Restore of %1 failed").arg(environment);
            n.text = error.isEmpty() ? safety : error;
            emit notice(n);
            if (!error.isEmpty())
                m_backupStatus->setText(QStringLiteral("<b style='color:%1'>%2</b> %3")
                                            .arg(colourOf(Tone::Bad).name(), tr("Restore failed:"),
                                                 error.toHtmlEscaped()));
            else
                m_backupStatus->setText(
                    safety.isEmpty()
                        ? tr("Restored.")
                        : tr("Restored; the state before it is in %1").arg(safety.toHtmlEscaped()));
            listBackupsOf(environment);
            refresh();
        });
    m_restoreJob->start(backup);
}

void DatabasePage::listBackupsOf(const QString &environment)
{
    if (!m_session || m_session->environment().name != environment)
        return; // another environment's list is shown now
    m_backups->clear();
    m_listed = listBackups(environment);
    m_restore->setEnabled(false);
    for (const BackupInfo &b : std::as_const(m_listed)) {
        auto *item = new QTreeWidgetItem(m_backups);
        item->setText(0, QLocale().toString(b.takenAt.toLocalTime(), QLocale::ShortFormat));
        item->setText(1, QStringLiteral("%1 MiB").arg(b.size / 1048576.0, 0, 'f', 2));
        item->setText(2, b.schemaVersion < 0 ? tr("unknown") : QString::number(b.schemaVersion));
        item->setText(3, b.verifiedOk() ? tr("verified") : b.verified);
        item->setForeground(3, colourOf(b.verifiedOk() ? Tone::Good : Tone::Bad));
        item->setText(4, b.path);
        item->setToolTip(4, QStringLiteral("sha256 %1").arg(b.sha256));
    }
}

void DatabasePage::show(const DatabaseFacts &f)
{
    m_refresh->setEnabled(true);
    m_model->setFacts(f);
    const Tone tone = f.reachable() ? Tone::Good : Tone::Bad;
    const QString detail = f.reachable() ? QStringLiteral("%1 %2 \u00b7 %3 ms")
                                               .arg(f.engine, f.serverVersion)
                                               .arg(f.latencyMs, 0, 'f', 2)
                                         : f.error;
    m_status->setText(QStringLiteral("<b style='color:%1'>%2</b> %3")
                          .arg(colourOf(tone).name(),
                               f.reachable() ? tr("reachable") : tr("not reachable"),
                               detail.toHtmlEscaped()));
    m_checked->setText(
        tr("checked %1")
            .arg(QLocale().toString(f.checkedAt.toLocalTime().time(), QLocale::LongFormat)));
}

} // namespace pilothouse::gui
