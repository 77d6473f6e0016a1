#include "servicespage.h"

#include "core/workspace.h"
#include "delegates.h"

#include <QAction>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

namespace pilothouse::gui {

namespace {

// An action and its button in a row of buttons (not a QToolBar: a toolbar's
// buttons take no focus, and these must be reachable with Tab).
QAction *addButton(QObject *owner, QWidget *bar, QBoxLayout *layout, const char *iconName,
                   const QString &text, const char *name)
{
    auto *action = new QAction(icon(iconName), text, owner);
    action->setObjectName(QLatin1String(name));
    auto *button = new QToolButton(bar);
    button->setDefaultAction(action);
    button->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    button->setIconSize(QSize(16, 16));
    button->setAutoRaise(true);
    button->setFocusPolicy(Qt::TabFocus);
    button->setAccessibleName(text);
    layout->addWidget(button);
    return action;
}

} // namespace

ServicesPage::ServicesPage(QWidget *parent)
    : QWidget(parent)
    , m_model(new ServiceModel(this))
    , m_proxy(new QSortFilterProxyModel(this))
    , m_view(new QTableView(this))
    , m_stale(new QLabel(this))
    , m_uptime(new QTimer(this))
{
    // Buttons, not a QToolBar: a toolbar's buttons take no focus, and these
    // must be reachable with Tab, before the table they act on.
    auto *bar = new QWidget(this);
    auto *barLayout = new QHBoxLayout(bar);
    barLayout->setContentsMargins(4, 2, 4, 2);
    const auto add = [this, bar, barLayout](const char *iconName, const QString &text,
                                            const char *name) {
        return addButton(this, bar, barLayout, iconName, text, name);
    };
    m_restart = add("restart", tr("Restart service"), "serviceRestart");
    m_stop = add("stop", tr("Stop service"), "serviceStop");
    m_start = add("start", tr("Start service"), "serviceStart");
    m_logs = add("logs", tr("Show logs"), "serviceLogs");
    // Swarm: how many replicas the selected service runs.
    m_scaleBox = new QWidget(bar);
    auto *scaleLayout = new QHBoxLayout(m_scaleBox);
    scaleLayout->setContentsMargins(12, 0, 0, 0);
    auto *replicasLabel = new QLabel(tr("&Replicas:"), m_scaleBox);
    m_replicas = new QSpinBox(m_scaleBox);
    m_replicas->setObjectName(QStringLiteral("replicas"));
    m_replicas->setRange(0, 100);
    m_replicas->setAccessibleName(tr("Replicas"));
    replicasLabel->setBuddy(m_replicas);
    m_scale = new QAction(icon("restart"), tr("Scale"), this);
    m_scale->setObjectName(QStringLiteral("serviceScale"));
    auto *scaleButton = new QToolButton(m_scaleBox);
    scaleButton->setDefaultAction(m_scale);
    scaleButton->setToolButtonStyle(Qt::ToolButtonTextOnly);
    scaleButton->setAutoRaise(true);
    scaleButton->setFocusPolicy(Qt::TabFocus);
    scaleButton->setAccessibleName(tr("Scale"));
    scaleLayout->addWidget(replicasLabel);
    scaleLayout->addWidget(m_replicas);
    scaleLayout->addWidget(scaleButton);
    barLayout->addWidget(m_scaleBox);
    m_scaleBox->hide();
    barLayout->addStretch();
    bar->setAccessibleName(tr("Service actions"));
    // Tab: the buttons (and the replicas), then the table they act on.
    QWidget *previous = nullptr;
    QList<QWidget *> order;
    for (QToolButton *b : bar->findChildren<QToolButton *>(QString(), Qt::FindDirectChildrenOnly))
        order << b;
    order << m_replicas << scaleButton;
    for (QWidget *w : std::as_const(order)) {
        if (previous)
            setTabOrder(previous, w);
        previous = w;
    }
    if (previous)
        setTabOrder(previous, m_view);

    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(SortRole);
    m_view->setTabKeyNavigation(false); // Tab leaves the table; arrows move in it
    m_view->setModel(m_proxy);
    m_view->setObjectName(QStringLiteral("servicesView"));
    m_view->setAccessibleName(tr("Services"));
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_view->setSelectionMode(QAbstractItemView::SingleSelection);
    m_view->setSortingEnabled(true);
    m_view->sortByColumn(ServiceModel::Service, Qt::AscendingOrder);
    m_view->verticalHeader()->hide();
    m_view->setAlternatingRowColors(true);
    m_view->setContextMenuPolicy(Qt::CustomContextMenu);
    m_view->horizontalHeader()->setStretchLastSection(true);
    m_view->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    m_view->setItemDelegateForColumn(
        ServiceModel::Health,
        new StatusDelegate([](int s) { return toneOf(ServiceHealth(s)); }, m_view));
    m_view->setWordWrap(false);
    m_view->setColumnWidth(ServiceModel::Service, 120);
    m_view->setColumnWidth(ServiceModel::Image, 250);
    // As wide as its text: "running · new, health gate" during a rollout.
    m_view->horizontalHeader()->setSectionResizeMode(ServiceModel::State,
                                                     QHeaderView::ResizeToContents);
    m_view->setColumnWidth(ServiceModel::Health, 100);
    m_view->setColumnWidth(ServiceModel::Ports, 170);
    m_view->setColumnWidth(ServiceModel::Uptime, 90);

    m_view->setColumnWidth(ServiceModel::Node, 110);
    m_view->setColumnWidth(ServiceModel::Replicas, 70);
    m_view->setColumnHidden(ServiceModel::Node, true);
    m_view->setColumnHidden(ServiceModel::Replicas, true);
    // Shown next to the task they describe.
    m_view->horizontalHeader()->moveSection(
        m_view->horizontalHeader()->visualIndex(ServiceModel::Replicas), 1);
    m_view->horizontalHeader()->moveSection(
        m_view->horizontalHeader()->visualIndex(ServiceModel::Node), 2);

    // Swarm: the nodes, drained or made active from here.
    m_nodesBox = new QWidget(this);
    auto *nodesLayout = new QVBoxLayout(m_nodesBox);
    nodesLayout->setContentsMargins(0, 6, 0, 0);
    auto *nodesBar = new QHBoxLayout;
    auto *nodesTitle = new QLabel(tr("<b>Nodes</b>"), m_nodesBox);
    nodesBar->addWidget(nodesTitle);
    m_drain = addButton(this, m_nodesBox, nodesBar, "stop", tr("Drain node"), "nodeDrain");
    m_activate =
        addButton(this, m_nodesBox, nodesBar, "start", tr("Activate node"), "nodeActivate");
    nodesBar->addStretch();
    m_nodes = new NodeModel(this);
    m_nodesView = new QTableView(m_nodesBox);
    m_nodesView->setObjectName(QStringLiteral("nodesView"));
    m_nodesView->setAccessibleName(tr("Nodes"));
    m_nodesView->setModel(m_nodes);
    m_nodesView->setTabKeyNavigation(false);
    m_nodesView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_nodesView->setSelectionMode(QAbstractItemView::SingleSelection);
    m_nodesView->verticalHeader()->hide();
    m_nodesView->horizontalHeader()->setStretchLastSection(true);
    m_nodesView->setColumnWidth(NodeModel::Hostname, 200);
    m_nodesView->setColumnWidth(NodeModel::Role, 130);
    m_nodesView->setMaximumHeight(140);
    nodesLayout->addLayout(nodesBar);
    nodesLayout->addWidget(m_nodesView);
    m_nodesBox->hide();

    m_stale->setObjectName(QStringLiteral("staleNote"));
    m_stale->setWordWrap(true);
    m_stale->hide();

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(bar);
    layout->addWidget(m_stale);
    layout->addWidget(m_view, 1);
    layout->addWidget(m_nodesBox);

    const auto onSelected = [this](auto call) {
        return [this, call] {
            const QString service = selectedService();
            if (!service.isEmpty() && m_workspace)
                (m_workspace->*call)(m_environment, service);
        };
    };
    connect(m_restart, &QAction::triggered, this,
            onSelected(static_cast<void (Workspace::*)(const QString &, const QString &)>(
                &Workspace::restart)));
    connect(m_stop, &QAction::triggered, this, onSelected(&Workspace::stopService));
    connect(m_start, &QAction::triggered, this, onSelected(&Workspace::startService));
    connect(m_logs, &QAction::triggered, this, [this] {
        if (!selectedService().isEmpty())
            emit showLogsRequested(selectedService());
    });
    connect(m_view, &QTableView::doubleClicked, this, [this] {
        if (!selectedService().isEmpty())
            emit showLogsRequested(selectedService());
    });
    connect(m_scale, &QAction::triggered, this, [this] {
        StackSession *session = m_workspace ? m_workspace->session(m_environment) : nullptr;
        if (session && !selectedService().isEmpty())
            session->scale(selectedService(), m_replicas->value());
    });
    const auto setNode = [this](const QString &availability) {
        return [this, availability] {
            const QModelIndexList rows = m_nodesView->selectionModel()->selectedRows();
            StackSession *session = m_workspace ? m_workspace->session(m_environment) : nullptr;
            if (session && !rows.isEmpty())
                session->setNodeAvailability(rows.first().data(KeyRole).toString(), availability);
        };
    };
    connect(m_drain, &QAction::triggered, this, setNode(QStringLiteral("drain")));
    connect(m_activate, &QAction::triggered, this, setNode(QStringLiteral("active")));
    connect(m_nodesView->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &ServicesPage::updateActions);
    connect(m_nodes, &QAbstractItemModel::dataChanged, this, &ServicesPage::updateActions);
    connect(m_nodes, &QAbstractItemModel::modelReset, this, &ServicesPage::updateActions);
    connect(m_view, &QWidget::customContextMenuRequested, this, &ServicesPage::contextMenu);
    connect(m_view->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &ServicesPage::updateActions);
    connect(m_model, &QAbstractItemModel::modelReset, this, [this] {
        m_stale->setVisible(m_model->isStale());
        updateActions();
    });
    connect(m_model, &QAbstractItemModel::dataChanged, this, &ServicesPage::updateActions);
    // Uptime moves on without any event.
    m_uptime->setInterval(10000);
    connect(m_uptime, &QTimer::timeout, this, [this] {
        if (m_model->rowCount() > 0)
            emit m_model->dataChanged(
                m_model->index(0, ServiceModel::Uptime),
                m_model->index(m_model->rowCount() - 1, ServiceModel::Uptime));
    });
    m_uptime->start();
    updateActions();
}

void ServicesPage::setEnvironment(Workspace *workspace, const QString &environment)
{
    m_workspace = workspace;
    m_environment = environment;
    StackSession *session = workspace ? workspace->session(environment) : nullptr;
    QList<ServiceRow> lastKnown;
    if (workspace && !workspace->hasLiveData(environment)) {
        const Snapshot snap = workspace->snapshot(environment);
        lastKnown = snap.rows;
        m_stale->setText(tr("Last known state, from %1; live data follows.")
                             .arg(QLocale().toString(snap.at.toLocalTime(), QLocale::ShortFormat)));
    }
    m_model->setSession(session, lastKnown);
    m_swarm = session && session->environment().kind == EnvironmentKind::Swarm;
    m_replicasFor.clear();
    m_nodes->setSession(m_swarm ? session : nullptr);
    m_view->setColumnHidden(ServiceModel::Node, !m_swarm);
    m_view->setColumnHidden(ServiceModel::Replicas, !m_swarm);
    m_scaleBox->setVisible(m_swarm);
    m_nodesBox->setVisible(m_swarm);
    updateActions();
}

QString ServicesPage::selectedService() const
{
    const QModelIndexList rows = m_view->selectionModel()->selectedRows();
    return rows.isEmpty() ? QString() : rows.first().data(KeyRole).toString();
}

void ServicesPage::setBusy(bool busy)
{
    m_busy = busy;
    updateActions();
}

void ServicesPage::updateActions()
{
    const QModelIndexList rows = m_view->selectionModel()->selectedRows();
    const ServiceRow *row =
        rows.isEmpty() ? nullptr : m_model->rowAt(m_proxy->mapToSource(rows.first()).row());
    const bool any = row != nullptr;
    const bool running = any && row->state.isRunning();
    m_restart->setEnabled(any && !m_busy && running);
    m_stop->setEnabled(any && !m_busy && running);
    m_start->setEnabled(any && !m_busy && !running);
    m_logs->setEnabled(any);
    // Swarm: the spin box follows the selected service's desired replicas
    // until the user changes it.
    const SwarmView *view = m_swarm && m_workspace && m_workspace->session(m_environment)
        ? m_workspace->session(m_environment)->swarmView()
        : nullptr;
    const SwarmService *service = view && any ? view->service(row->state.service) : nullptr;
    if (service && !m_replicas->hasFocus() && m_replicasFor != row->state.service) {
        m_replicas->setValue(service->desired);
        m_replicasFor = row->state.service;
    }
    m_replicas->setEnabled(service && !service->global);
    m_scale->setEnabled(service && !service->global && !m_busy);
    const QModelIndexList nodeRows = m_nodesView->selectionModel()->selectedRows();
    const SwarmNode *node = nodeRows.isEmpty() ? nullptr : m_nodes->nodeAt(nodeRows.first().row());
    m_drain->setEnabled(node && node->availability != QLatin1String("drain") && !m_busy);
    m_activate->setEnabled(node && node->availability != QLatin1String("active") && !m_busy);
}

void ServicesPage::contextMenu(const QPoint &pos)
{
    if (!m_view->indexAt(pos).isValid())
        return;
    updateActions();
    QMenu menu(this);
    menu.addAction(m_restart);
    menu.addAction(m_stop);
    menu.addAction(m_start);
    menu.addSeparator();
    menu.addAction(m_logs);
    menu.exec(m_view->viewport()->mapToGlobal(pos));
}

} // namespace pilothouse::gui
