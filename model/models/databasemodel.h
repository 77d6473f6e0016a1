#pragma once

#include "db/databaseprobe.h"
#include "models/modelroles.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QTimer>

namespace pilothouse {

class DatabaseModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Fact, Value, ColumnCount };
    explicit DatabaseModel(QObject *parent = nullptr);

    void setFacts(const DatabaseFacts &facts);
    const DatabaseFacts &facts() const { return m_facts; }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

    static QString formatBytes(qint64 bytes);

private:
    DatabaseFacts m_facts;
    QList<std::pair<QString, QString>> m_rows;
};

// The deployment history of one environment, newest first.

} // namespace pilothouse
