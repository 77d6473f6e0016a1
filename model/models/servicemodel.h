#pragma once

#include "core/session.h"
#include "models/modelroles.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QTimer>

namespace pilothouse {

class ServiceModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Service, Image, State, Health, Ports, Uptime, Restarts, ColumnCount };
    explicit ServiceModel(QObject *parent = nullptr);

    // nullptr: empty. lastKnown: rows to show until the session first
    // reports (the state from an earlier run, marked stale).
    void setSession(StackSession *session, const QList<ServiceRow> &lastKnown = {});
    const ServiceRow *rowAt(int row) const;
    bool isStale() const { return m_stale; }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

    static QString formatUptime(const QDateTime &startedAt, const QDateTime &now);

private:
    void reload();

    QPointer<StackSession> m_session;
    QList<ServiceRow> m_rows;
    QMetaObject::Connection m_connection;
    bool m_stale = false;
};

} // namespace pilothouse
