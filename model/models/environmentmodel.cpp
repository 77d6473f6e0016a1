#include "models/environmentmodel.h"

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

const InvalidEnvironment *EnvironmentModel::invalidAt(int row) const
{
    const qsizetype i = row - m_set.environments.size();
    return i >= 0 && i < m_set.invalid.size() ? &m_set.invalid.at(i) : nullptr;
}

int EnvironmentModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_set.environments.size() + m_set.invalid.size());
}

Qt::ItemFlags EnvironmentModel::flags(const QModelIndex &index) const
{
    // One that is not usable shows its reason, but cannot be chosen.
    if (invalidAt(index.row()))
        return Qt::ItemIsEnabled;
    return QAbstractTableModel::flags(index);
}

int EnvironmentModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant EnvironmentModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    if (const InvalidEnvironment *bad = invalidAt(index.row())) {
        if (role == KeyRole)
            return bad->name;
        if (role == Qt::ToolTipRole)
            return tr("%1 is not usable:\n%2").arg(bad->name, bad->reason);
        if (role != Qt::DisplayRole && role != SortRole)
            return {};
        switch (index.column()) {
        case Name:
            return bad->name;
        case Kind:
            return bad->kind;
        case Status:
            return tr("not usable");
        }
        return {};
    }
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

} // namespace pilothouse
