#include "healthpage.h"

#include "delegates.h"

#include <QCoreApplication>
#include <QHeaderView>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QTextBrowser>
#include <QVBoxLayout>

namespace pilothouse::gui {

HealthPage::HealthPage(QWidget *parent)
    : QWidget(parent)
    , m_model(new EndpointModel(this))
    , m_proxy(new QSortFilterProxyModel(this))
    , m_view(new QTableView(this))
    , m_details(new QTextBrowser(this))
    , m_empty(new QLabel(tr("This environment has no health endpoints. Add them to its "
                            "services in Settings."),
                         this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(SortRole);
    m_view->setTabKeyNavigation(false); // Tab leaves the table; arrows move in it
    m_view->setModel(m_proxy);
    m_view->setObjectName(QStringLiteral("endpointsView"));
    m_view->setAccessibleName(tr("Health endpoints"));
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_view->setSelectionMode(QAbstractItemView::SingleSelection);
    m_view->setSortingEnabled(true);
    m_view->verticalHeader()->hide();
    m_view->setAlternatingRowColors(true);
    m_view->horizontalHeader()->setStretchLastSection(true);
    m_view->setItemDelegateForColumn(
        EndpointModel::Status,
        new StatusDelegate([](int s) { return toneOf(EndpointStatus(s)); }, m_view));
    m_view->setItemDelegateForColumn(EndpointModel::Trend, new SparklineDelegate(m_view));
    m_view->setWordWrap(false);
    m_view->setColumnWidth(EndpointModel::Service, 110);
    m_view->setColumnWidth(EndpointModel::Url, 260);
    m_view->setColumnWidth(EndpointModel::Status, 80);
    m_view->setColumnWidth(EndpointModel::Latency, 80);
    m_view->setColumnWidth(EndpointModel::Trend, 140);
    m_view->setColumnWidth(EndpointModel::LastTransition, 160);
    m_details->setObjectName(QStringLiteral("endpointDetails"));
    m_details->setAccessibleName(tr("Endpoint details"));
    m_details->setOpenLinks(false);
    m_empty->setWordWrap(true);
    m_empty->hide();

    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_view);
    split->addWidget(m_details);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_empty);
    layout->addWidget(split);

    connect(m_view->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            &HealthPage::showDetails);
    connect(m_model, &QAbstractItemModel::dataChanged, this,
            [this](const QModelIndex &from, const QModelIndex &to) {
                const QModelIndex current = m_proxy->mapToSource(m_view->currentIndex());
                if (current.isValid() && current.row() >= from.row() && current.row() <= to.row())
                    showDetails();
            });
    connect(m_model, &QAbstractItemModel::modelReset, this, [this] {
        m_empty->setVisible(m_model->rowCount() == 0);
        showDetails();
    });
}

void HealthPage::setMonitor(HealthMonitor *monitor)
{
    m_monitor = monitor;
    m_model->setMonitor(monitor);
    m_empty->setVisible(m_model->rowCount() == 0);
    if (m_proxy->rowCount() > 0)
        m_view->setCurrentIndex(m_proxy->index(0, 0));
}

static QString when(const QDateTime &t)
{
    return t.isValid() ? QLocale().toString(t.toLocalTime(), QStringLiteral("yyyy-MM-dd HH:mm:ss"))
                       : QCoreApplication::translate("HealthPage", "never");
}

void HealthPage::showDetails()
{
    const QModelIndex current = m_proxy->mapToSource(m_view->currentIndex());
    const EndpointState *e = current.isValid() ? m_model->endpointAt(current.row()) : nullptr;
    if (!e) {
        m_details->clear();
        return;
    }
    const auto checksTable = [](const QList<health::Check> &checks) -> QString {
        QString html = QStringLiteral("<table cellpadding='3'><tr><th align='left'>%1</th>"
                                      "<th align='left'>%2</th><th align='left'>%3</th>"
                                      "<th align='left'>%4</th></tr>")
                           .arg(tr("Check"), tr("Status"), tr("Observed"), tr("Output"));
        for (const health::Check &c : checks) {
            html += QStringLiteral("<tr><td>%1</td><td><b style='color:%2'>%3</b></td><td>%4</td>"
                                   "<td>%5</td></tr>")
                        .arg(c.name.toHtmlEscaped(),
                             colourOf(c.status == health::Status::Pass       ? Tone::Good
                                          : c.status == health::Status::Warn ? Tone::Busy
                                                                             : Tone::Bad)
                                 .name(),
                             health::toString(c.status),
                             c.observedValue ? QStringLiteral("%1 %2")
                                                   .arg(*c.observedValue)
                                                   .arg(c.observedUnit.toHtmlEscaped())
                                             : QString(),
                             c.output.toHtmlEscaped());
        }
        return html + QStringLiteral("</table>");
    };
    QString html = QStringLiteral("<h3>%1 &mdash; %2</h3>")
                       .arg(e->service.toHtmlEscaped(), e->endpoint.url.toString().toHtmlEscaped());
    html += QStringLiteral("<p><b style='color:%1'>%2</b>")
                .arg(colourOf(toneOf(e->status)).name(), label(e->status));
    if (e->httpStatus > 0)
        html += tr(" &middot; HTTP %1").arg(e->httpStatus);
    if (e->lastLatencyMs >= 0)
        html += tr(" &middot; %1 ms").arg(e->lastLatencyMs, 0, 'f', 1);
    if (!e->version.isEmpty())
        html += tr(" &middot; version %1").arg(e->version.toHtmlEscaped());
    html += QStringLiteral("<br>") +
        tr("Checked %1 &middot; status since %2 &middot; every %3 s")
            .arg(when(e->lastChecked), when(e->lastTransition))
            .arg(e->endpoint.intervalMs / 1000.0);
    if (!e->detail.isEmpty())
        html += QStringLiteral("<br><i>%1</i>").arg(e->detail.toHtmlEscaped());
    html += QStringLiteral("</p>");
    if (!e->checks.isEmpty())
        html += QStringLiteral("<h4>%1</h4>").arg(tr("Last answer")) + checksTable(e->checks);
    if (!e->lastFailedChecks.isEmpty())
        html += QStringLiteral("<h4>%1</h4>").arg(tr("Last failed check")) +
            checksTable(e->lastFailedChecks);
    if (!e->transitions.isEmpty()) {
        html += QStringLiteral("<h4>%1</h4><ul>").arg(tr("Transitions"));
        for (qsizetype i = e->transitions.size() - 1; i >= 0; --i) {
            const StatusTransition &t = e->transitions.at(i);
            html += QStringLiteral("<li>%1: %2 &rarr; %3 %4</li>")
                        .arg(when(t.at), label(t.from), label(t.to), t.detail.toHtmlEscaped());
        }
        html += QStringLiteral("</ul>");
    }
    m_details->setHtml(html);
}

} // namespace pilothouse::gui
