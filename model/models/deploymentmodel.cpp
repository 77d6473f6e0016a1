#include "models/deploymentmodel.h"

#include <QLocale>

namespace pilothouse {

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
        // How the services were moved, where it was recorded: "succeeded, start-first".
        return d.strategy.isEmpty() || role == SortRole
            ? toString(d.outcome)
            : QStringLiteral("%1, %2").arg(toString(d.outcome), d.strategy);
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

} // namespace pilothouse
