#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QString>
#include <optional>

namespace deckhand {

struct Job
{
    QString id;
    QString type;
    QJsonObject payload;
    QString status; // queued, running, succeeded, failed
    std::optional<QJsonObject> result;
    QString error;
    int attempts = 0;
    QString workerId;
    QDateTime createdAt;
    QDateTime startedAt;
    QDateTime finishedAt;
    std::optional<double> durationMs;

    QJsonObject toJson() const;
};

// The job types this build can run, with their payload rules.
struct JobRequest
{
    QString type;
    QJsonObject payload;

    // Validates a POST /v1/jobs body; on failure returns every problem found.
    static std::variant<JobRequest, QStringList> fromJson(const QByteArray &body);
    static QStringList knownTypes();
};

} // namespace deckhand
