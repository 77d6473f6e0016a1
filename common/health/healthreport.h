#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QString>
#include <optional>

// The application/health+json vocabulary (draft-inadarei-api-health-check),
// shared by deckhand, which produces it, and the panel, which reads it.
namespace pilothouse::health {

inline constexpr char kMediaType[] = "application/health+json";

enum class Status { Pass, Warn, Fail };

QString toString(Status status);
std::optional<Status> statusFromString(const QString &text);
// The worse of two statuses: fail > warn > pass.
Status worst(Status a, Status b);

struct Check
{
    QString name; // "component:measurement", e.g. "postgres:responseTime"
    QString componentType; // "datastore", "component", "system"
    Status status = Status::Pass;
    std::optional<double> observedValue;
    QString observedUnit; // "ms"
    QDateTime time;
    QString output; // set on warn/fail: what went wrong, for a person

    friend bool operator==(const Check &, const Check &) = default;
};

struct Report
{
    Status status = Status::Pass;
    QString version;
    QString releaseId;
    QString serviceId;
    QString description;
    QString output;
    QList<Check> checks;

    // Overall status from the checks (worst wins), unless forced by the caller.
    static Status aggregate(const QList<Check> &checks);
    // 200 for pass and warn, 503 for fail, as the draft recommends.
    int httpStatus() const { return status == Status::Fail ? 503 : 200; }

    QJsonObject toJson() const;
    // Parses a document; on error returns nullopt and sets *error to a readable reason.
    static std::optional<Report> fromJson(const QJsonObject &json, QString *error = nullptr);

    friend bool operator==(const Report &, const Report &) = default;
};

} // namespace pilothouse::health
