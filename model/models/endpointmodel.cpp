#include "models/endpointmodel.h"

#include <QLocale>

namespace pilothouse {

// ---- EndpointModel

EndpointModel::EndpointModel(QObject *parent)
    : QAbstractTableModel(parent)
{
    m_flush.setSingleShot(true);
    m_flush.setInterval(200);
    connect(&m_flush, &QTimer::timeout, this, &EndpointModel::flush);
}

void EndpointModel::flush()
{
    if (m_dirty.isEmpty())
        return;
    // One notification per run of adjacent rows.
    QList<int> rows(m_dirty.cbegin(), m_dirty.cend());
    m_dirty.clear();
    std::sort(rows.begin(), rows.end());
    int first = rows.first();
    int last = first;
    for (qsizetype i = 1; i <= rows.size(); ++i) {
        if (i < rows.size() && rows.at(i) == last + 1) {
            last = rows.at(i);
            continue;
        }
        emit dataChanged(index(first, 0), index(last, ColumnCount - 1));
        if (i < rows.size())
            first = last = rows.at(i);
    }
}

void EndpointModel::setMonitor(HealthMonitor *monitor)
{
    for (const auto &c : std::as_const(m_connections))
        disconnect(c);
    m_connections.clear();
    beginResetModel();
    m_dirty.clear();
    m_monitor = monitor;
    m_ids = monitor ? monitor->ids() : QList<int> {};
    m_rowOf.clear();
    for (int i = 0; i < m_ids.size(); ++i)
        m_rowOf.insert(m_ids.at(i), i);
    endResetModel();
    if (monitor) {
        m_connections << connect(monitor, &HealthMonitor::endpointsChanged, this,
                                 [this] { setMonitor(m_monitor); });
        m_connections << connect(monitor, &QObject::destroyed, this, [this] {
            beginResetModel();
            m_dirty.clear();
            m_flush.stop();
            m_ids.clear();
            m_rowOf.clear();
            endResetModel();
        });
        m_connections << connect(monitor, &HealthMonitor::endpointChecked, this, [this](int id) {
            const int row = m_rowOf.value(id, -1);
            if (row < 0)
                return;
            // Shown in batches: views repaint once per batch, however many answered.
            m_dirty.insert(row);
            if (!m_flush.isActive())
                m_flush.start();
        });
    }
}

const EndpointState *EndpointModel::endpointAt(int row) const
{
    if (!m_monitor || row < 0 || row >= m_ids.size())
        return nullptr;
    return m_monitor->endpoint(m_ids.at(row));
}

int EndpointModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_ids.size());
}

int EndpointModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant EndpointModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const EndpointState *e = endpointAt(index.row());
    if (!e)
        return {};
    if (role == KeyRole)
        return e->id;
    if (role == StatusRole)
        return int(e->status);
    if (role == DetailRole || role == Qt::ToolTipRole)
        return e->detail;
    if (role == HistoryRole) {
        QList<float> latencies;
        latencies.reserve(e->history.size());
        for (qsizetype i = 0; i < e->history.size(); ++i)
            latencies << e->history.at(i).latencyMs;
        return QVariant::fromValue(latencies);
    }
    if (role != Qt::DisplayRole && role != SortRole)
        return {};
    switch (index.column()) {
    case Trend:
        return {}; // drawn from HistoryRole
    case Service:
        return e->service;
    case Url:
        return e->endpoint.url.toString();
    case Status:
        return role == SortRole ? QVariant(int(e->status)) : QVariant(toString(e->status));
    case Latency:
        if (role == SortRole)
            return e->lastLatencyMs;
        return e->lastLatencyMs < 0 ? QString()
                                    : QStringLiteral("%1 ms").arg(e->lastLatencyMs, 0, 'f', 1);
    case LastTransition:
        return role == SortRole ? QVariant(e->lastTransition)
                                : QVariant(e->lastTransition.toLocalTime().toString(
                                      QStringLiteral("yyyy-MM-dd HH:mm:ss")));
    case Detail:
        return e->detail;
    }
    return {};
}

QVariant EndpointModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Service:
        return tr("Service");
    case Url:
        return tr("Endpoint");
    case Status:
        return tr("Status");
    case Latency:
        return tr("Latency");
    case Trend:
        return tr("Recent");
    case LastTransition:
        return tr("Since");
    case Detail:
        return tr("Detail");
    }
    return {};
}

} // namespace pilothouse
