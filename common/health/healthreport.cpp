#include "health/healthreport.h"

#include <QJsonArray>

namespace pilothouse::health {

QString toString(Status status)
{
    switch (status) {
    case Status::Pass:
        return QStringLiteral("pass");
    case Status::Warn:
        return QStringLiteral("warn");
    case Status::Fail:
        return QStringLiteral("fail");
    }
    return QStringLiteral("fail");
}

std::optional<Status> statusFromString(const QString &text)
{
    // The draft also allows "ok"/"up" for pass and "error"/"down" for fail.
    const QString t = text.trimmed().toLower();
    if (t == QLatin1String("pass") || t == QLatin1String("ok") || t == QLatin1String("up"))
        return Status::Pass;
    if (t == QLatin1String("warn"))
        return Status::Warn;
    if (t == QLatin1String("fail") || t == QLatin1String("error") || t == QLatin1String("down"))
        return Status::Fail;
    return std::nullopt;
}

Status worst(Status a, Status b)
{
    return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

Status Report::aggregate(const QList<Check> &checks)
{
    Status result = Status::Pass;
    for (const Check &c : checks)
        result = worst(result, c.status);
    return result;
}

QJsonObject Report::toJson() const
{
    QJsonObject root;
    root.insert(QStringLiteral("status"), toString(status));
    if (!version.isEmpty())
        root.insert(QStringLiteral("version"), version);
    if (!releaseId.isEmpty())
        root.insert(QStringLiteral("releaseId"), releaseId);
    if (!serviceId.isEmpty())
        root.insert(QStringLiteral("serviceId"), serviceId);
    if (!description.isEmpty())
        root.insert(QStringLiteral("description"), description);
    if (!output.isEmpty())
        root.insert(QStringLiteral("output"), output);

    QJsonObject checksJson;
    for (const Check &c : checks) {
        QJsonObject entry;
        if (!c.componentType.isEmpty())
            entry.insert(QStringLiteral("componentType"), c.componentType);
        if (c.observedValue)
            entry.insert(QStringLiteral("observedValue"), *c.observedValue);
        if (!c.observedUnit.isEmpty())
            entry.insert(QStringLiteral("observedUnit"), c.observedUnit);
        entry.insert(QStringLiteral("status"), toString(c.status));
        if (c.time.isValid())
            entry.insert(QStringLiteral("time"), c.time.toUTC().toString(Qt::ISODateWithMs));
        if (!c.output.isEmpty())
            entry.insert(QStringLiteral("output"), c.output);
        QJsonArray list = checksJson.value(c.name).toArray();
        list.append(entry);
        checksJson.insert(c.name, list);
    }
    if (!checksJson.isEmpty())
        root.insert(QStringLiteral("checks"), checksJson);
    return root;
}

std::optional<Report> Report::fromJson(const QJsonObject &json, QString *error)
{
    auto fail = [error](const QString &why) -> std::optional<Report> {
        if (error)
            *error = why;
        return std::nullopt;
    };

    Report report;
    const auto status = statusFromString(json.value(QStringLiteral("status")).toString());
    if (!status)
        return fail(QStringLiteral("missing or unknown \"status\" (expected pass, warn or fail)"));
    report.status = *status;
    report.version = json.value(QStringLiteral("version")).toString();
    report.releaseId = json.value(QStringLiteral("releaseId")).toString();
    report.serviceId = json.value(QStringLiteral("serviceId")).toString();
    report.description = json.value(QStringLiteral("description")).toString();
    report.output = json.value(QStringLiteral("output")).toString();

    const QJsonValue checksValue = json.value(QStringLiteral("checks"));
    if (!checksValue.isUndefined() && !checksValue.isObject())
        return fail(QStringLiteral("\"checks\" must be an object"));
    const QJsonObject checks = checksValue.toObject();
    for (auto it = checks.begin(); it != checks.end(); ++it) {
        if (!it.value().isArray())
            return fail(QStringLiteral("check \"%1\" must be an array").arg(it.key()));
        for (const QJsonValue &v : it.value().toArray()) {
            const QJsonObject o = v.toObject();
            Check c;
            c.name = it.key();
            c.componentType = o.value(QStringLiteral("componentType")).toString();
            const auto cs = statusFromString(o.value(QStringLiteral("status")).toString());
            if (!cs)
                return fail(QStringLiteral("check \"%1\" has no valid status").arg(it.key()));
            c.status = *cs;
            if (o.value(QStringLiteral("observedValue")).isDouble())
                c.observedValue = o.value(QStringLiteral("observedValue")).toDouble();
            c.observedUnit = o.value(QStringLiteral("observedUnit")).toString();
            c.time = QDateTime::fromString(o.value(QStringLiteral("time")).toString(),
                                           Qt::ISODateWithMs);
            c.output = o.value(QStringLiteral("output")).toString();
            report.checks.append(c);
        }
    }
    return report;
}

} // namespace pilothouse::health
