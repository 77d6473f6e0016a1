#pragma once

#include "core/session.h"
#include "deploy/history.h"
#include "logs/logstore.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QPointer>
#include <QSet>
#include <QTimer>

// Item models over the core, for views and tests. Fed by signals; never
// block, never call out.
namespace pilothouse {

enum ModelRole {
    SortRole = Qt::UserRole + 1,
    StatusRole, // the row's status as an int (ServiceHealth, EndpointStatus, ...)
    DetailRole,
    KeyRole, // what identifies the row (a name, an id)
    StaleRole, // true: last known from an earlier run, not live yet
    HistoryRole, // EndpointModel: recent latencies (QList<float>, < 0: no answer)
    LevelRole // LogModel: the line's level ("error", "warning", ...), if it has one
};

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
class LogModel final : public QAbstractListModel
{
    Q_OBJECT
public:
    explicit LogModel(QObject *parent = nullptr);

    // service empty: every service, each line prefixed with its name.
    void setSource(LogStore *store, const QString &service);
    QString service() const { return m_service; }
    qsizetype capacity() const { return m_capacity; }
    void setCapacity(qsizetype lines);
    void clear();

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;

private:
    void append(const QString &service, const LogLine &line);
    void flush();

    QPointer<LogStore> m_store;
    QString m_service;
    QList<std::pair<QString, LogLine>> m_lines; // service, line
    QList<std::pair<QString, LogLine>> m_pending; // arrived since the last flush
    qsizetype m_capacity = 5000;
    QMetaObject::Connection m_connection;
    QTimer m_flush; // a burst of lines is one insertion for the views
};

} // namespace pilothouse

Q_DECLARE_METATYPE(QList<float>)
