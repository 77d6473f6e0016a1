#pragma once

#include "logs/logstore.h"
#include "models/modelroles.h"

#include <QAbstractListModel>
#include <QTimer>

namespace pilothouse {

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
