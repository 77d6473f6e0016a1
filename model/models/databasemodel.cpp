#include "models/databasemodel.h"

#include <QLocale>

namespace pilothouse {

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

} // namespace pilothouse
