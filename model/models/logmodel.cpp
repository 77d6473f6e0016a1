#include "models/logmodel.h"

#include <QLocale>

namespace pilothouse {

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
