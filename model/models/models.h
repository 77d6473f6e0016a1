#pragma once

#include "core/session.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>

// Item models over the core, for views and tests. Fed by signals; never
// block, never call out.
namespace pilothouse {

enum ModelRole { SortRole = Qt::UserRole + 1, StatusRole, DetailRole, KeyRole };

class EnvironmentModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Name, Kind, Status, ColumnCount };
    explicit EnvironmentModel(QObject *parent = nullptr);

    void setEnvironments(const EnvironmentSet &set);
    void setStatus(const QString &environment, ServiceHealth health);
    const Environment *environmentAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    EnvironmentSet m_set;
    QHash<QString, ServiceHealth> m_status;
};

class ServiceModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Service, Image, State, Health, Ports, Uptime, Restarts, ColumnCount };
    explicit ServiceModel(QObject *parent = nullptr);

    void setSession(StackSession *session); // nullptr: empty
    const ServiceRow *rowAt(int row) const;

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
};

class EndpointModel final : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Service, Url, Status, Latency, LastTransition, Detail, ColumnCount };
    explicit EndpointModel(QObject *parent = nullptr);

    void setMonitor(HealthMonitor *monitor);
    const EndpointState *endpointAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    QPointer<HealthMonitor> m_monitor;
    QList<int> m_ids;
    QHash<int, int> m_rowOf;
    QList<QMetaObject::Connection> m_connections;
};

// The database facts as name/value rows, tables last.
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

} // namespace pilothouse
