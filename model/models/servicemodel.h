#pragma once

#include "core/session.h"
#include "models/modelroles.h"
#include "swarm/swarmwatcher.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QTimer>

namespace pilothouse {

class ServiceModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    // Node and Replicas: a swarm's (its rows are tasks); hidden for the others.
    enum Column {
        Service,
        Image,
        State,
        Health,
        Ports,
        Uptime,
        Restarts,
        Node,
        Replicas,
        ColumnCount
    };
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

// A swarm's nodes, from the session's SwarmView: empty for other kinds.
class NodeModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Hostname, Role, Status, Availability, Engine, ColumnCount };
    explicit NodeModel(QObject *parent = nullptr);

    void setSession(StackSession *session);
    const SwarmNode *nodeAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    void reload();

    QPointer<StackSession> m_session;
    QList<SwarmNode> m_nodes;
    QMetaObject::Connection m_connection;
};

} // namespace pilothouse
