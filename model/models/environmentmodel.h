#pragma once

#include "core/session.h"
#include "env/environment.h"
#include "models/modelroles.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QTimer>

namespace pilothouse {

class EnvironmentModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Name, Kind, Status, ColumnCount };
    explicit EnvironmentModel(QObject *parent = nullptr);

    void setEnvironments(const EnvironmentSet &set);
    void setStatus(const QString &environment, ServiceHealth health);
    // Rows list the usable environments, then those that are not (with why):
    // exactly one of these is set for a row.
    const Environment *environmentAt(int row) const;
    const InvalidEnvironment *invalidAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;

private:
    EnvironmentSet m_set;
    QHash<QString, ServiceHealth> m_status;
};

} // namespace pilothouse
