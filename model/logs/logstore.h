#pragma once

#include "drivers/command.h"
#include "monitor/ringbuffer.h"

#include <QDateTime>
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QStringList>

namespace pilothouse {

struct LogLine
{
    QDateTime at; // when the panel received it
    QString text;
    QString level; // from a JSON log line ("info", "error", ...), else empty
};

// The recent output of each service, bounded per service however long the
// panel runs.
class LogStore final : public QObject
{
    Q_OBJECT
public:
    explicit LogStore(qsizetype linesPerService = 5000, QObject *parent = nullptr);

    void append(const QString &service, const QString &line);
    QList<LogLine> lines(const QString &service) const;
    QStringList services() const;
    qsizetype capacity() const { return m_capacity; }
    void clear();

    // "level" of a JSON log line, without parsing the whole object.
    static QString levelOf(const QString &line);

signals:
    void appended(const QString &service, const pilothouse::LogLine &line);

private:
    QHash<QString, RingBuffer<LogLine>> m_buffers;
    qsizetype m_capacity;
};

struct Environment;

// Follows `compose logs --follow` for an environment into a LogStore.
class ComposeLogFollower final : public QObject
{
    Q_OBJECT
public:
    ComposeLogFollower(const Environment &env, LogStore *store, QObject *parent = nullptr);
    ~ComposeLogFollower() override;

    // service empty: all services
    void follow(const QString &service = {}, int tail = 200);
    void stop();
    bool isFollowing() const { return m_command != nullptr || !m_swarmCommands.isEmpty(); }

    // "api_1  | text" / "api-1  | text" -> ("api", "text")
    static std::pair<QString, QString> splitPrefixed(const QString &line);

signals:
    void ended(const QString &error); // empty when stopped on request

private:
    const Environment &m_env;
    LogStore *m_store;
    void followSwarm(const QString &service, int tail);

    QPointer<Command> m_command;
    QList<QPointer<Command>> m_swarmCommands;
    QString m_service;
    quint64 m_generation = 0;
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::LogLine)
