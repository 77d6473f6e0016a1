#pragma once

#include "deploy/history.h"
#include "engine/servicestate.h"
#include "models/modelroles.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QTimer>

namespace pilothouse {

class DeploymentModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Started, Service, From, To, Outcome, Duration, Who, Reason, ColumnCount };
    explicit DeploymentModel(QObject *parent = nullptr);

    void setDeployments(const QList<Deployment> &rows);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    QList<Deployment> m_rows;
};

// One service's lines from a LogStore (or every service's), live and bounded:
// the oldest lines go as new ones come, like the store itself.

} // namespace pilothouse
