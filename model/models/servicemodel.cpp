#include "models/servicemodel.h"

#include <QLocale>

namespace pilothouse {

// ---- ServiceModel

ServiceModel::ServiceModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

void ServiceModel::setSession(StackSession *session, const QList<ServiceRow> &lastKnown)
{
    if (m_connection)
        disconnect(m_connection);
    m_session = session;
    if (session)
        m_connection =
            connect(session, &StackSession::servicesChanged, this, &ServiceModel::reload);
    beginResetModel();
    m_stale = session && !lastKnown.isEmpty();
    m_rows = m_stale ? lastKnown : session ? session->services() : QList<ServiceRow> {};
    endResetModel();
}

const ServiceRow *ServiceModel::rowAt(int row) const
{
    return row >= 0 && row < m_rows.size() ? &m_rows.at(row) : nullptr;
}

void ServiceModel::reload()
{
    const QList<ServiceRow> fresh = m_session ? m_session->services() : QList<ServiceRow> {};
    if (m_stale) {
        m_stale = false;
        beginResetModel();
        m_rows = fresh;
        endResetModel();
        return;
    }
    // Same services in the same order (the usual case): update in place, so
    // views keep selection and scroll position.
    bool sameKeys = fresh.size() == m_rows.size();
    for (qsizetype i = 0; sameKeys && i < fresh.size(); ++i)
        sameKeys = fresh.at(i).state.service == m_rows.at(i).state.service &&
            fresh.at(i).state.containerId == m_rows.at(i).state.containerId &&
            fresh.at(i).state.taskId == m_rows.at(i).state.taskId;
    if (!sameKeys) {
        beginResetModel();
        m_rows = fresh;
        endResetModel();
        return;
    }
    m_rows = fresh;
    if (!m_rows.isEmpty())
        emit dataChanged(index(0, 0), index(int(m_rows.size()) - 1, ColumnCount - 1));
}

int ServiceModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int ServiceModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QString ServiceModel::formatUptime(const QDateTime &startedAt, const QDateTime &now)
{
    if (!startedAt.isValid())
        return {};
    qint64 s = std::max<qint64>(0, startedAt.secsTo(now));
    if (s < 60)
        return tr("%1 s").arg(s);
    if (s < 3600)
        return tr("%1 min").arg(s / 60);
    if (s < 86400)
        return tr("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60);
    return tr("%1 d %2 h").arg(s / 86400).arg((s % 86400) / 3600);
}

QVariant ServiceModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const ServiceRow &r = m_rows.at(index.row());
    const ServiceState &s = r.state;
    if (role == KeyRole)
        return s.service;
    if (role == StatusRole)
        return int(r.health);
    if (role == DetailRole || role == Qt::ToolTipRole)
        return r.detail;
    if (role == StaleRole)
        return m_stale;
    if (role != Qt::DisplayRole && role != SortRole)
        return {};
    switch (index.column()) {
    case Service:
        // A swarm task is its service and slot ("api.1").
        return !s.taskId.isEmpty() && !s.container.isEmpty() ? s.container : s.service;
    case Node:
        return s.node;
    case Replicas:
        return r.replicas;
    case Image:
        return s.image;
    case State:
        // During a start-first rollout: which side of it this container is.
        return r.rollout.isEmpty() || role == SortRole
            ? toString(s.state)
            : QStringLiteral("%1 \u00b7 %2").arg(toString(s.state), r.rollout);
    case Health:
        return role == SortRole ? QVariant(int(r.health)) : QVariant(toString(r.health));
    case Ports:
        return s.ports.join(QStringLiteral(", "));
    case Uptime:
        if (!s.isRunning())
            return role == SortRole ? QVariant(qint64(0)) : QVariant(QString());
        return role == SortRole
            ? QVariant(s.startedAt.toSecsSinceEpoch())
            : QVariant(formatUptime(s.startedAt, QDateTime::currentDateTimeUtc()));
    case Restarts:
        return s.restartCount;
    }
    return {};
}

QVariant ServiceModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Service:
        return tr("Service");
    case Image:
        return tr("Image");
    case State:
        return tr("State");
    case Health:
        return tr("Health");
    case Ports:
        return tr("Ports");
    case Uptime:
        return tr("Uptime");
    case Restarts:
        return tr("Restarts");
    case Node:
        return tr("Node");
    case Replicas:
        return tr("Replicas");
    }
    return {};
}

} // namespace pilothouse

namespace pilothouse {

// ---- NodeModel

NodeModel::NodeModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

void NodeModel::setSession(StackSession *session)
{
    if (m_connection)
        disconnect(m_connection);
    m_session = session;
    if (session)
        m_connection = connect(session, &StackSession::servicesChanged, this, &NodeModel::reload);
    reload();
}

void NodeModel::reload()
{
    const SwarmView *view = m_session ? m_session->swarmView() : nullptr;
    const QList<SwarmNode> fresh = view ? view->nodes : QList<SwarmNode> {};
    bool same = fresh.size() == m_nodes.size();
    for (qsizetype i = 0; same && i < fresh.size(); ++i)
        same = fresh.at(i).id == m_nodes.at(i).id;
    if (!same) {
        beginResetModel();
        m_nodes = fresh;
        endResetModel();
        return;
    }
    m_nodes = fresh;
    if (!m_nodes.isEmpty())
        emit dataChanged(index(0, 0), index(int(m_nodes.size()) - 1, ColumnCount - 1));
}

const SwarmNode *NodeModel::nodeAt(int row) const
{
    return row >= 0 && row < m_nodes.size() ? &m_nodes.at(row) : nullptr;
}

int NodeModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_nodes.size());
}

int NodeModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant NodeModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const SwarmNode &n = m_nodes.at(index.row());
    if (role == KeyRole)
        return n.hostname;
    if (role == Qt::ToolTipRole)
        return tr("%1 (%2)").arg(n.hostname, n.id);
    if (role != Qt::DisplayRole && role != SortRole)
        return {};
    switch (index.column()) {
    case Hostname:
        return n.self ? tr("%1 (this engine)").arg(n.hostname) : n.hostname;
    case Role:
        return n.managerStatus.isEmpty()
            ? n.role
            : QStringLiteral("%1, %2").arg(n.role, n.managerStatus.toLower());
    case Status:
        return n.status;
    case Availability:
        return n.availability;
    case Engine:
        return n.engineVersion;
    }
    return {};
}

QVariant NodeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Hostname:
        return tr("Node");
    case Role:
        return tr("Role");
    case Status:
        return tr("Status");
    case Availability:
        return tr("Availability");
    case Engine:
        return tr("Engine");
    }
    return {};
}

} // namespace pilothouse
