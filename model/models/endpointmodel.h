#pragma once

#include "models/modelroles.h"
#include "monitor/healthmonitor.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QSet>
#include <QTimer>

namespace pilothouse {

class EndpointModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Service, Url, Status, Latency, Trend, LastTransition, Detail, ColumnCount };
    explicit EndpointModel(QObject *parent = nullptr);

    void setMonitor(HealthMonitor *monitor);
    const EndpointState *endpointAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    void flush();

    QPointer<HealthMonitor> m_monitor;
    QList<int> m_ids;
    QHash<int, int> m_rowOf;
    QList<QMetaObject::Connection> m_connections;
    QSet<int> m_dirty; // rows answered since the last flush
    QTimer m_flush;
};

// The database facts as name/value rows, tables last.

} // namespace pilothouse

Q_DECLARE_METATYPE(QList<float>)
