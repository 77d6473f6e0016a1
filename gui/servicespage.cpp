#include "servicespage.h"

#include "core/workspace.h"
#include "delegates.h"

#include <QAction>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

namespace pilothouse::gui {

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
        auto *action = new QAction(icon(iconName), text, this);
        action->setObjectName(QLatin1String(name));
        auto *button = new QToolButton(bar);
        button->setDefaultAction(action);
        button->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
        button->setIconSize(QSize(16, 16));
        button->setAutoRaise(true);
        button->setFocusPolicy(Qt::TabFocus);
        button->setAccessibleName(text);
        barLayout->addWidget(button);
        return action;
    };
    m_restart = add("restart", tr("Restart service"), "serviceRestart");
    m_stop = add("stop", tr("Stop service"), "serviceStop");
    m_start = add("start", tr("Start service"), "serviceStart");
    m_logs = add("logs", tr("Show logs"), "serviceLogs");
    barLayout->addStretch();
    bar->setAccessibleName(tr("Service actions"));
    // Tab: the buttons, then the table they act on.
    QWidget *previous = nullptr;
    for (QToolButton *b : bar->findChildren<QToolButton *>()) {
        if (previous)
            setTabOrder(previous, b);
        previous = b;
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

    m_stale->setObjectName(QStringLiteral("staleNote"));
    m_stale->setWordWrap(true);
    m_stale->hide();

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(bar);
    layout->addWidget(m_stale);
    layout->addWidget(m_view);

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
