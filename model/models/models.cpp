#include "models/models.h"

#include <QLocale>

namespace pilothouse {

// ---- EnvironmentModel

EnvironmentModel::EnvironmentModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

void EnvironmentModel::setEnvironments(const EnvironmentSet &set)
{
    beginResetModel();
    m_set = set;
    m_status.clear();
    endResetModel();
}

void EnvironmentModel::setStatus(const QString &environment, ServiceHealth health)
{
    for (int row = 0; row < m_set.environments.size(); ++row) {
        if (m_set.environments.at(row).name != environment)
            continue;
        if (m_status.value(environment, ServiceHealth::Unknown) == health &&
            m_status.contains(environment))
            return;
        m_status.insert(environment, health);
        emit dataChanged(index(row, Status), index(row, Status));
        return;
    }
}

const Environment *EnvironmentModel::environmentAt(int row) const
{
    return row >= 0 && row < m_set.environments.size() ? &m_set.environments.at(row) : nullptr;
}

int EnvironmentModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_set.environments.size());
}

int EnvironmentModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant EnvironmentModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Environment &e = m_set.environments.at(index.row());
    const ServiceHealth status = m_status.value(e.name, ServiceHealth::Unknown);
    if (role == KeyRole)
        return e.name;
    if (role == StatusRole)
        return int(status);
    if (role == Qt::ToolTipRole)
        return e.description.isEmpty() ? e.name : e.description;
    if (role != Qt::DisplayRole && role != SortRole)
        return {};
    switch (index.column()) {
    case Name:
        return e.name;
    case Kind:
        return toString(e.kind);
    case Status:
        return role == SortRole ? QVariant(int(status)) : QVariant(toString(status));
    }
    return {};
}

QVariant EnvironmentModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Name:
        return tr("Environment");
    case Kind:
        return tr("Kind");
    case Status:
        return tr("Status");
    }
    return {};
}

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
            fresh.at(i).state.containerId == m_rows.at(i).state.containerId;
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
        return s.service;
    case Image:
        return s.image;
    case State:
        return toString(s.state);
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
    }
    return {};
}

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

// ---- DatabaseModel

DatabaseModel::DatabaseModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

QString DatabaseModel::formatBytes(qint64 bytes)
{
    if (bytes < 0)
        return {};
    return QLocale::c().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat);
}

void DatabaseModel::setFacts(const DatabaseFacts &f)
{
    QList<std::pair<QString, QString>> rows;
    rows << std::pair { tr("Database"), f.dsn };
    rows << std::pair { tr("Status"),
                        f.reachable()
                            ? tr("reachable")
                            : QStringLiteral("%1: %2").arg(toString(f.reachability), f.error) };
    if (f.reachable()) {
        rows << std::pair { tr("Version"), QStringLiteral("%1 %2").arg(f.engine, f.serverVersion) };
        rows << std::pair { tr("Latency"), QStringLiteral("%1 ms").arg(f.latencyMs, 0, 'f', 2) };
        rows << std::pair { tr("Size"), formatBytes(f.sizeBytes) };
        if (f.connectionsMax > 0)
            rows << std::pair {
                tr("Connections"),
                QStringLiteral("%1 / %2").arg(f.connectionsUsed).arg(f.connectionsMax)
            };
        rows << std::pair { tr("Migration"),
                            f.migrationVersion < 0 ? tr("no schema_migrations table")
                                                   : QString::number(f.migrationVersion) };
        for (const TableSize &t : f.largestTables)
            rows << std::pair {
                tr("Table %1").arg(t.name),
                QStringLiteral("%1, %2 rows").arg(formatBytes(t.bytes)).arg(t.rows)
            };
    }
    const bool sameShape = rows.size() == m_rows.size();
    if (!sameShape)
        beginResetModel();
    m_facts = f;
    m_rows = rows;
    if (!sameShape)
        endResetModel();
    else if (!m_rows.isEmpty())
        emit dataChanged(index(0, 0), index(int(m_rows.size()) - 1, ColumnCount - 1));
}

int DatabaseModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int DatabaseModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant DatabaseModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    if (role != Qt::DisplayRole && role != SortRole)
        return {};
    const auto &row = m_rows.at(index.row());
    return index.column() == Fact ? row.first : row.second;
}

QVariant DatabaseModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    return section == Fact ? tr("Fact") : tr("Value");
}

// ---- DeploymentModel

DeploymentModel::DeploymentModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

void DeploymentModel::setDeployments(const QList<Deployment> &rows)
{
    beginResetModel();
    m_rows = rows;
    endResetModel();
}

int DeploymentModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int DeploymentModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant DeploymentModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Deployment &d = m_rows.at(index.row());
    if (role == KeyRole)
        return d.id;
    if (role == StatusRole)
        return int(d.outcome);
    if (role == DetailRole)
        return d.logLines.join(QLatin1Char('\n'));
    if (role == Qt::ToolTipRole)
        return d.reason.isEmpty() ? QVariant() : QVariant(d.reason);
    if (role != Qt::DisplayRole && role != SortRole)
        return {};
    switch (index.column()) {
    case Started:
        return role == SortRole
            ? QVariant(d.startedAt)
            : QVariant(d.startedAt.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm:ss")));
    case Service:
        return d.service;
    case From:
        return tagWithDigest(d.fromTag, d.fromDigest);
    case To:
        return tagWithDigest(d.toTag, d.toDigest);
    case Outcome:
        return toString(d.outcome);
    case Duration: {
        if (!d.finishedAt.isValid())
            return role == SortRole ? QVariant(qint64(-1)) : QVariant(QString());
        const qint64 ms = d.startedAt.msecsTo(d.finishedAt);
        return role == SortRole ? QVariant(ms)
                                : QVariant(tr("%1 s").arg(double(ms) / 1000.0, 0, 'f', 1));
    }
    case Who:
        return d.who;
    case Reason:
        return d.reason;
    }
    return {};
}

QVariant DeploymentModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Started:
        return tr("Started");
    case Service:
        return tr("Service");
    case From:
        return tr("From");
    case To:
        return tr("To");
    case Outcome:
        return tr("Outcome");
    case Duration:
        return tr("Took");
    case Who:
        return tr("Who");
    case Reason:
        return tr("Reason");
    }
    return {};
}

// ---- LogModel

LogModel::LogModel(QObject *parent)
    : QAbstractListModel(parent)
{
    m_flush.setSingleShot(true);
    m_flush.setInterval(30);
    connect(&m_flush, &QTimer::timeout, this, &LogModel::flush);
}

void LogModel::setSource(LogStore *store, const QString &service)
{
    if (m_connection)
        disconnect(m_connection);
    beginResetModel();
    m_store = store;
    m_service = service;
    m_lines.clear();
    m_pending.clear();
    m_flush.stop();
    if (store) {
        const QStringList services =
            service.isEmpty() ? store->services() : QStringList { service };
        for (const QString &s : services) {
            for (const LogLine &l : store->lines(s))
                m_lines.append({ s, l });
        }
        if (service.isEmpty())
            std::stable_sort(m_lines.begin(), m_lines.end(), [](const auto &a, const auto &b) {
                return a.second.at < b.second.at;
            });
        if (m_lines.size() > m_capacity)
            m_lines.remove(0, m_lines.size() - m_capacity);
        m_connection = connect(store, &LogStore::appended, this, &LogModel::append);
    }
    endResetModel();
}

void LogModel::setCapacity(qsizetype lines)
{
    m_capacity = std::max<qsizetype>(1, lines);
    if (m_lines.size() > m_capacity) {
        beginRemoveRows({}, 0, int(m_lines.size() - m_capacity) - 1);
        m_lines.remove(0, m_lines.size() - m_capacity);
        endRemoveRows();
    }
}

void LogModel::clear()
{
    beginResetModel();
    m_lines.clear();
    m_pending.clear();
    endResetModel();
}

void LogModel::append(const QString &service, const LogLine &line)
{
    if (!m_service.isEmpty() && service != m_service)
        return;
    m_pending.append({ service, line });
    if (m_pending.size() > m_capacity)
        m_pending.removeFirst();
    if (!m_flush.isActive())
        m_flush.start();
}

void LogModel::flush()
{
    if (m_pending.isEmpty())
        return;
    const qsizetype overflow = m_lines.size() + m_pending.size() - m_capacity;
    if (overflow > 0) {
        const qsizetype drop = std::min(overflow, m_lines.size());
        if (drop > 0) {
            beginRemoveRows({}, 0, int(drop) - 1);
            m_lines.remove(0, drop);
            endRemoveRows();
        }
    }
    const int first = int(m_lines.size());
    beginInsertRows({}, first, first + int(m_pending.size()) - 1);
    m_lines.append(m_pending);
    m_pending.clear();
    endInsertRows();
}

int LogModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_lines.size());
}

QVariant LogModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const auto &[service, line] = m_lines.at(index.row());
    switch (role) {
    case Qt::DisplayRole:
        return m_service.isEmpty() ? service + QStringLiteral(" | ") + line.text : line.text;
    case KeyRole:
        return service;
    case LevelRole:
        return line.level;
    case SortRole:
        return line.at;
    case Qt::ToolTipRole:
        return line.at.toLocalTime().toString(Qt::ISODateWithMs);
    }
    return {};
}

} // namespace pilothouse
