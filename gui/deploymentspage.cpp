#include "deploymentspage.h"

#include "core/workspace.h"
#include "delegates.h"
#include "deploy/historystore.h"
#include "rollbackdialog.h"

#include <QFontDatabase>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QLocale>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>

namespace pilothouse::gui {

DeploymentsPage::DeploymentsPage(QWidget *parent)
    : QWidget(parent)
    , m_stack(new QStackedWidget(this))
    , m_none(new QLabel(this))
    , m_running(new QLabel(this))
    , m_tags(new QListWidget(this))
    , m_tagsStatus(new QLabel(this))
    , m_refreshTags(new QPushButton(icon("refresh"), tr("Refresh &tags"), this))
    , m_rollback(new QPushButton(icon("rollback"), tr("Roll back"), this))
    , m_deploy(new QPushButton(icon("deploy"), tr("&Deploy selected tag..."), this))
    , m_progress(new QGroupBox(tr("Deployment"), this))
    , m_step(new QLabel(this))
    , m_bar(new QProgressBar(this))
    , m_cancel(new QPushButton(icon("cancel"), tr("&Cancel deployment"), this))
    , m_outcome(new QLabel(this))
    , m_logLines(new QPlainTextEdit(this))
    , m_model(new DeploymentModel(this))
    , m_history(new QTableView(this))
    , m_historyError(new QLabel(this))
    , m_details(new QPlainTextEdit(this))
{
    m_none->setWordWrap(true);
    m_none->setAlignment(Qt::AlignCenter);
    m_none->setObjectName(QStringLiteral("deploymentsNone"));
    m_running->setObjectName(QStringLiteral("runningTags"));
    m_running->setWordWrap(true);
    m_running->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_tags->setObjectName(QStringLiteral("registryTags"));
    m_tags->setAccessibleName(tr("Tags in the registry"));
    m_tagsStatus->setWordWrap(true);
    m_tagsStatus->setObjectName(QStringLiteral("tagsStatus"));
    m_rollback->setObjectName(QStringLiteral("rollbackPrevious"));
    m_rollback->setEnabled(false);
    m_deploy->setObjectName(QStringLiteral("deploySelected"));
    m_deploy->setEnabled(false);
    m_cancel->setObjectName(QStringLiteral("cancelDeployment"));
    m_outcome->setObjectName(QStringLiteral("deploymentOutcome"));
    m_outcome->setWordWrap(true);
    m_outcome->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_step->setObjectName(QStringLiteral("deploymentStep"));
    m_step->setWordWrap(true);
    m_bar->setRange(0, 0);
    m_bar->setTextVisible(false);
    m_bar->setMaximumHeight(8);
    m_bar->hide();
    m_cancel->hide();
    m_logLines->setReadOnly(true);
    m_logLines->setObjectName(QStringLiteral("failureLogLines"));
    m_logLines->setAccessibleName(tr("Last log lines of the failed container"));
    m_logLines->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_logLines->setMaximumBlockCount(200);
    m_logLines->setMaximumHeight(140);
    m_logLines->hide();
    m_progress->hide(); // shown while a deployment runs

    // Left: the tags.
    auto *left = new QWidget(this);
    auto *leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    auto *tagsTitle = new QLabel(tr("Tags in the registry"), left);
    tagsTitle->setBuddy(m_tags);
    leftLayout->addWidget(tagsTitle);
    leftLayout->addWidget(m_tags);
    leftLayout->addWidget(m_tagsStatus);
    auto *tagButtons = new QHBoxLayout;
    tagButtons->addWidget(m_refreshTags);
    tagButtons->addWidget(m_deploy);
    leftLayout->addLayout(tagButtons);

    // Right: rollback, progress through the gate, the outcome.
    auto *steps = new QVBoxLayout;
    for (const auto &[step, text] :
         { std::pair { DeployStep::Preparing, tr("Look up the tag") },
           std::pair { DeployStep::Pulling, tr("Pull the image by digest") },
           std::pair { DeployStep::Recreating, tr("Recreate the service") },
           std::pair { DeployStep::WaitingForHealth, tr("Health gate") },
           std::pair { DeployStep::Draining, tr("Drain and remove the old version") },
           std::pair { DeployStep::Reverting, tr("Revert (only if the gate fails)") } }) {
        auto *l = new QLabel(QStringLiteral("\u25cb ") + text, m_progress);
        l->setProperty("stepText", text);
        m_steps.append({ step, l });
        steps->addWidget(l);
    }
    auto *progressLayout = new QVBoxLayout(m_progress);
    progressLayout->addLayout(steps);
    progressLayout->addWidget(m_bar);
    progressLayout->addWidget(m_step);
    progressLayout->addWidget(m_cancel, 0, Qt::AlignLeft);
    auto *right = new QWidget(this);
    auto *rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    QFont bold = m_rollback->font();
    bold.setBold(true);
    m_rollback->setFont(bold);
    m_rollback->setMinimumHeight(m_rollback->sizeHint().height() * 3 / 2);
    rightLayout->addWidget(m_rollback);
    rightLayout->addWidget(m_progress);
    rightLayout->addWidget(m_outcome);
    rightLayout->addWidget(m_logLines, 1);
    rightLayout->addStretch();

    auto *top = new QSplitter(Qt::Horizontal, this);
    top->addWidget(left);
    top->addWidget(right);
    top->setStretchFactor(0, 2);
    top->setStretchFactor(1, 3);

    auto *proxy = new QSortFilterProxyModel(this);
    proxy->setSourceModel(m_model);
    proxy->setSortRole(SortRole);
    m_history->setTabKeyNavigation(false);
    m_history->setModel(proxy);
    m_history->setObjectName(QStringLiteral("historyView"));
    m_history->setAccessibleName(tr("Deployment history"));
    m_history->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_history->setSelectionMode(QAbstractItemView::SingleSelection);
    m_history->verticalHeader()->hide();
    m_history->horizontalHeader()->setStretchLastSection(true);
    m_history->setAlternatingRowColors(true);
    m_history->setItemDelegateForColumn(
        DeploymentModel::Outcome,
        new StatusDelegate([](int s) { return toneOf(Deployment::Outcome(s)); }, m_history));
    m_history->setWordWrap(false);
    m_history->setColumnWidth(DeploymentModel::Started, 150);
    m_history->setColumnWidth(DeploymentModel::From, 190);
    m_history->setColumnWidth(DeploymentModel::To, 190);
    m_history->setColumnWidth(DeploymentModel::Outcome, 170); // "succeeded, start-first"
    m_historyError->setWordWrap(true);
    m_historyError->setObjectName(QStringLiteral("historyError"));
    m_historyError->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_historyError->hide();
    m_details->setReadOnly(true);
    m_details->setObjectName(QStringLiteral("deploymentDetails"));
    m_details->setMaximumHeight(110);
    m_details->setPlaceholderText(tr("Select a deployment to see its reason and log lines"));

    auto *page = new QWidget(this);
    auto *pageLayout = new QVBoxLayout(page);
    pageLayout->setContentsMargins(0, 4, 0, 0);
    pageLayout->addWidget(m_running);
    auto *split = new QSplitter(Qt::Vertical, page);
    split->addWidget(top);
    auto *bottom = new QWidget(page);
    auto *bottomLayout = new QVBoxLayout(bottom);
    bottomLayout->setContentsMargins(0, 0, 0, 0);
    auto *historyTitle = new QLabel(tr("History"), bottom);
    historyTitle->setBuddy(m_history);
    bottomLayout->addWidget(historyTitle);
    bottomLayout->addWidget(m_historyError);
    bottomLayout->addWidget(m_history);
    bottomLayout->addWidget(m_details);
    split->addWidget(bottom);
    pageLayout->addWidget(split);

    m_stack->addWidget(m_none);
    m_stack->addWidget(page);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_stack);

    connect(m_refreshTags, &QPushButton::clicked, this, &DeploymentsPage::refreshTags);
    connect(m_rollback, &QPushButton::clicked, this, &DeploymentsPage::rollbackToPrevious);
    connect(m_deploy, &QPushButton::clicked, this, &DeploymentsPage::deploySelected);
    connect(m_tags, &QListWidget::itemSelectionChanged, this, [this] {
        m_deploy->setEnabled(!selectedTag().isEmpty() && m_deployer && !m_deployer->isBusy());
    });
    connect(m_tags, &QListWidget::itemDoubleClicked, this, &DeploymentsPage::deploySelected);
    connect(m_cancel, &QPushButton::clicked, this, [this] {
        if (m_deployer)
            m_deployer->cancel();
    });
    connect(m_history->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &DeploymentsPage::showDeploymentDetails);
}

void DeploymentsPage::setEnvironment(Workspace *workspace, const QString &environment)
{
    for (const auto &c : std::as_const(m_connections))
        disconnect(c);
    m_connections.clear();
    m_workspace = workspace;
    m_environment = environment;
    m_deployer = workspace ? workspace->deployer(environment) : nullptr;
    m_session = workspace ? workspace->session(environment) : nullptr;
    m_plan.reset();
    m_plannedFor.clear();
    m_tags->clear();
    m_tagsStatus->clear();
    m_outcome->clear();
    m_logLines->hide();
    m_model->setDeployments({});
    if (!m_deployer) {
        const Environment *env = workspace ? workspace->environments().find(environment) : nullptr;
        m_none->setText(env && env->kind == EnvironmentKind::Native
                            ? tr("%1 runs its processes on this machine: there is no image to "
                                 "deploy. Deployments need a compose environment with an image "
                                 "(image.repository and image.services).")
                                  .arg(environment)
                            : tr("%1 has no image to deploy. Add image.repository and "
                                 "image.services to it in Settings.")
                                  .arg(environment));
        m_stack->setCurrentIndex(0);
        return;
    }
    m_stack->setCurrentIndex(1);
    // The steps of this environment's strategy.
    for (auto &[s, l] : m_steps) {
        if (s == DeployStep::Recreating) {
            const QString text = m_deployer->startsFirst()
                ? tr("Start the new version next to the old one")
                : tr("Recreate the service (a short outage)");
            l->setProperty("stepText", text);
            l->setText(QStringLiteral("\u25cb ") + text.toHtmlEscaped());
        }
        if (s == DeployStep::Draining)
            l->setVisible(m_deployer->startsFirst());
    }
    m_connections << connect(m_deployer, &Deployer::stepChanged, this, &DeploymentsPage::onStep);
    m_connections << connect(m_deployer, &Deployer::finished, this, &DeploymentsPage::onFinished);
    m_connections << connect(m_deployer, &Deployer::started, this, [this] {
        m_outcome->clear();
        m_logLines->hide();
    });
    m_connections << connect(m_session, &StackSession::servicesChanged, this, [this] {
        updateRunning();
        // Worked out again only when what runs changed, not on every answer.
        const auto s = m_session->stateOf(m_deployer->service());
        const QString running = s ? s->tag + QLatin1Char('@') + s->digest : QString();
        if (running != m_plannedFor && !m_deployer->isBusy()) {
            m_plannedFor = running;
            updatePlan();
        }
    });
    m_connections << connect(workspace->history(), &HistoryStore::changed, this,
                             &DeploymentsPage::reloadHistory);
    // A new local build is a new tag to pick.
    m_connections << connect(workspace, &Workspace::operationFinished, this,
                             [this](const QString &env, const OperationResult &r) {
                                 if (env == m_environment && r.operation == StackOperation::Build &&
                                     r.ok())
                                     refreshTags();
                             });
    const bool busy = m_deployer->isBusy();
    m_progress->setVisible(busy);
    m_bar->setVisible(busy);
    m_cancel->setVisible(busy);
    m_step->setText(busy ? toString(m_deployer->step()) : tr("No deployment running."));
    for (auto &[step, l] : m_steps)
        l->setText(QStringLiteral("\u25cb ") + l->property("stepText").toString());
    updateRunning();
    if (workspace->isLive()) {
        reloadHistory();
        refreshTags();
    }
}

void DeploymentsPage::updateRunning()
{
    if (!m_session)
        return;
    QStringList parts;
    for (const ServiceRow &r : m_session->services()) {
        if (r.state.image.isEmpty())
            continue;
        parts << tr("<b>%1</b> runs %2%3")
                     .arg(r.state.service.toHtmlEscaped(), r.state.tag.toHtmlEscaped(),
                          r.state.digest.isEmpty() ? QString()
                                                   : QStringLiteral(" <small>(%1)</small>")
                                                         .arg(shortDigest(r.state.digest)));
    }
    m_running->setText(parts.isEmpty() ? tr("Nothing runs in %1 right now.").arg(m_environment)
                                       : parts.join(QStringLiteral(" &nbsp;&middot;&nbsp; ")));
    const QString tag = m_deployer ? m_deployer->runningTag() : QString();
    for (int i = 0; i < m_tags->count(); ++i) {
        QListWidgetItem *item = m_tags->item(i);
        const QString t = item->data(Qt::UserRole).toString();
        item->setText(t == tag ? tr("%1  (running)").arg(t) : t);
        QFont f = item->font();
        f.setBold(t == tag);
        item->setFont(f);
    }
}

void DeploymentsPage::refreshTags()
{
    if (!m_deployer)
        return;
    m_tagsStatus->setText(m_session && m_session->environment().tagsFromEngine()
                              ? tr("Reading the engine's builds...")
                              : tr("Asking the registry..."));
    m_refreshTags->setEnabled(false);
    m_deployer->listTags(this, [this, deployer = m_deployer](Expected<QList<ImageTag>> tags) {
        if (deployer != m_deployer)
            return; // another environment by now
        m_refreshTags->setEnabled(true);
        if (!tags) {
            m_tagsStatus->setText(tags.error());
            return;
        }
        const QString selected = selectedTag();
        m_tags->clear();
        // The one order (orderTags): newest build first, as pilothousectl tags lists them.
        for (const ImageTag &t : *tags) {
            auto *item = new QListWidgetItem(t.name, m_tags);
            item->setData(Qt::UserRole, t.name);
            QStringList tip;
            if (t.builtAt.isValid())
                tip << tr("Built or first deployed %1")
                           .arg(QLocale().toString(t.builtAt.toLocalTime(), QLocale::ShortFormat));
            if (!t.name.startsWith(QLatin1String("sha-")))
                tip << tr("A moving tag: it may point elsewhere tomorrow");
            item->setToolTip(tip.join(QLatin1Char('\n')));
            if (t.name == selected)
                item->setSelected(true);
        }
        m_tagsStatus->setText(tr("%n tag(s)", nullptr, int(tags->size())));
        updateRunning();
    });
}

void DeploymentsPage::reloadHistory()
{
    if (!m_workspace || !m_workspace->history())
        return;
    m_workspace->history()->list(
        m_environment, 200, this, [this, env = m_environment](Expected<QList<Deployment>> rows) {
            if (env != m_environment)
                return;
            m_model->setDeployments(rows ? *rows : QList<Deployment> {});
            m_historyError->setVisible(!rows);
            m_historyError->setText(
                rows ? QString() : tr("The history could not be read: %1").arg(rows.error()));
            if (!m_deployer || !m_deployer->isBusy())
                updatePlan();
        });
}

void DeploymentsPage::updatePlan()
{
    if (!m_deployer)
        return;
    m_deployer->planRollback({}, this, [this, deployer = m_deployer](Expected<RollbackPlan> plan) {
        if (deployer != m_deployer)
            return;
        if (!plan) {
            m_plan.reset();
            m_rollback->setText(tr("Roll back"));
            m_rollback->setEnabled(false);
            m_rollback->setToolTip(plan.error());
            return;
        }
        m_plan = *plan;
        m_rollback->setText(tr("Roll back to %1").arg(plan->toTag));
        m_rollback->setToolTip(tr("%1 \u2192 %2").arg(plan->fromTag, plan->toTag));
        m_rollback->setEnabled(!m_deployer->isBusy());
    });
}

RollbackDialog *DeploymentsPage::pendingDialog() const
{
    return m_dialog;
}

QString DeploymentsPage::selectedTag() const
{
    const QList<QListWidgetItem *> items = m_tags->selectedItems();
    return items.isEmpty() ? QString() : items.first()->data(Qt::UserRole).toString();
}

void DeploymentsPage::rollbackToPrevious()
{
    if (!m_deployer || !m_plan || m_deployer->isBusy())
        return;
    // Asked again now: what runs may have changed since the button was labelled.
    m_deployer->planRollback({}, this, [this](Expected<RollbackPlan> plan) {
        if (!plan) {
            m_outcome->setText(plan.error());
            return;
        }
        confirm(*plan, true);
    });
}

void DeploymentsPage::deploySelected()
{
    const QString tag = selectedTag();
    if (!m_deployer || tag.isEmpty() || m_deployer->isBusy())
        return;
    m_deployer->planRollback(tag, this, [this](Expected<RollbackPlan> plan) {
        if (!plan) {
            m_outcome->setText(plan.error());
            return;
        }
        confirm(*plan, false);
    });
}

void DeploymentsPage::confirm(const RollbackPlan &plan, bool isRollback)
{
    if (m_dialog)
        m_dialog->close();
    const Environment *env =
        m_workspace ? m_workspace->environments().find(m_environment) : nullptr;
    auto *dialog = new RollbackDialog(
        plan, m_environment,
        isRollback ? RollbackDialog::Kind::Rollback : RollbackDialog::Kind::Deploy,
        env ? env->healthWindowMs : 0, this, m_deployer && m_deployer->startsFirst());
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    m_dialog = dialog;
    connect(dialog, &QDialog::accepted, this, [this, plan, isRollback] {
        if (!m_deployer)
            return;
        m_outcome->clear();
        m_logLines->hide();
        if (isRollback)
            m_deployer->rollback(plan); // exactly the confirmed tag and digest
        else
            m_deployer->deploy(plan.toTag);
    });
    dialog->open(); // window-modal, and the event loop goes on
}

void DeploymentsPage::onStep(DeployStep step, const QString &message)
{
    m_progress->show();
    m_bar->show();
    m_cancel->show();
    m_cancel->setEnabled(step != DeployStep::Reverting);
    m_rollback->setEnabled(false);
    m_deploy->setEnabled(false);
    m_step->setText(message);
    bool passed = true;
    for (auto &[s, l] : m_steps) {
        const QString text = l->property("stepText").toString();
        if (s == step) {
            l->setText(QStringLiteral("\u25b6 <b>%1</b>").arg(text.toHtmlEscaped()));
            passed = false;
        } else {
            l->setText((passed && s != DeployStep::Reverting ? QStringLiteral("\u2713 ")
                                                             : QStringLiteral("\u25cb ")) +
                       text.toHtmlEscaped());
        }
    }
}

void DeploymentsPage::onFinished(const DeployResult &r)
{
    if (r.outcome == DeployResult::Outcome::Refused && m_deployer && m_deployer->isBusy()) {
        // A second request turned away; the running one goes on.
        m_step->setText(r.message);
        return;
    }
    m_progress->hide();
    m_bar->hide();
    m_cancel->hide();
    m_step->setText(tr("No deployment running."));
    const Tone tone = r.ok() ? Tone::Good
        : r.outcome == DeployResult::Outcome::Refused ||
            r.outcome == DeployResult::Outcome::Cancelled
        ? Tone::Neutral
        : r.outcome == DeployResult::Outcome::Reverted ? Tone::Warning
                                                       : Tone::Bad;
    m_outcome->setText(
        QStringLiteral("<b style='color:%1'>%2</b>: %3")
            .arg(colourOf(tone).name(), toString(r.outcome).toHtmlEscaped(),
                 r.message.toHtmlEscaped()) +
        (r.schemaWarning.isEmpty()
             ? QString()
             : QStringLiteral("<br><i>%1</i>").arg(r.schemaWarning.toHtmlEscaped())));
    m_logLines->setPlainText(r.logLines.join(QLatin1Char('\n')));
    m_logLines->setVisible(!r.logLines.isEmpty());
    for (auto &[s, l] : m_steps)
        l->setText(QStringLiteral("\u25cb ") + l->property("stepText").toString().toHtmlEscaped());
    m_deploy->setEnabled(!selectedTag().isEmpty());
    m_plan.reset();
    updatePlan();
    updateRunning();
    emit deploymentFinished(r);
}

void DeploymentsPage::showDeploymentDetails()
{
    const QModelIndexList rows = m_history->selectionModel()->selectedRows();
    if (rows.isEmpty()) {
        m_details->clear();
        return;
    }
    const QModelIndex i = rows.first();
    QString text = i.siblingAtColumn(DeploymentModel::Reason).data().toString();
    const QString lines = i.data(DetailRole).toString();
    if (!lines.isEmpty())
        text += QStringLiteral("\n\n") + lines;
    m_details->setPlainText(text);
}

} // namespace pilothouse::gui
