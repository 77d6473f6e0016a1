#include "job.h"

#include <QJsonDocument>
#include <QJsonParseError>

namespace deckhand {

namespace {
QJsonValue timeOrNull(const QDateTime &t)
{
    return t.isValid() ? QJsonValue(t.toUTC().toString(Qt::ISODateWithMs)) : QJsonValue();
}
constexpr int kMaxSleepMs = 600000;
} // namespace

QJsonObject Job::toJson() const
{
    QJsonObject o {
        { QStringLiteral("id"), id },
        { QStringLiteral("type"), type },
        { QStringLiteral("payload"), payload },
        { QStringLiteral("status"), status },
        { QStringLiteral("attempts"), attempts },
        { QStringLiteral("created_at"), timeOrNull(createdAt) },
        { QStringLiteral("started_at"), timeOrNull(startedAt) },
        { QStringLiteral("finished_at"), timeOrNull(finishedAt) },
        { QStringLiteral("duration_ms"), durationMs ? QJsonValue(*durationMs) : QJsonValue() },
        { QStringLiteral("result"), result ? QJsonValue(*result) : QJsonValue() },
        { QStringLiteral("error"), error.isEmpty() ? QJsonValue() : QJsonValue(error) },
    };
    if (!workerId.isEmpty())
        o.insert(QStringLiteral("worker_id"), workerId);
    return o;
}

QStringList JobRequest::knownTypes()
{
    return { QStringLiteral("echo"), QStringLiteral("sleep") };
}

std::variant<JobRequest, QStringList> JobRequest::fromJson(const QByteArray &body)
{
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(body, &parseError);
    if (parseError.error != QJsonParseError::NoError)
        return QStringList { QStringLiteral("body is not valid JSON: %1 at offset %2")
                                 .arg(parseError.errorString())
                                 .arg(parseError.offset) };
    if (!doc.isObject())
        return QStringList { QStringLiteral(
            "body must be a JSON object like {\"type\": \"echo\", \"payload\": {}}") };

    const QJsonObject o = doc.object();
    QStringList problems;
    JobRequest request;
    for (auto it = o.begin(); it != o.end(); ++it) {
        if (it.key() != QLatin1String("type") && it.key() != QLatin1String("payload"))
            problems
                << QStringLiteral("unknown field \"%1\" (allowed: type, payload)").arg(it.key());
    }
    const QJsonValue type = o.value(QStringLiteral("type"));
    if (!type.isString() || type.toString().isEmpty())
        problems << QStringLiteral("\"type\" is required and must be a string: one of %1")
                        .arg(knownTypes().join(QStringLiteral(", ")));
    else if (!knownTypes().contains(type.toString()))
        problems << QStringLiteral("unknown job type \"%1\" (known: %2)")
                        .arg(type.toString(), knownTypes().join(QStringLiteral(", ")));
    else
        request.type = type.toString();

    const QJsonValue payload = o.value(QStringLiteral("payload"));
    if (!payload.isUndefined() && !payload.isObject())
        problems << QStringLiteral("\"payload\" must be a JSON object");
    else
        request.payload = payload.toObject();

    if (request.type == QLatin1String("sleep")) {
        const QJsonValue ms = request.payload.value(QStringLiteral("ms"));
        const double v = ms.toDouble(-1);
        if (!ms.isDouble() || v != double(qint64(v)) || v < 0 || v > kMaxSleepMs)
            problems << QStringLiteral("sleep jobs need \"payload\": {\"ms\": N} with N a whole "
                                       "number from 0 to %1")
                            .arg(kMaxSleepMs);
    }
    if (!problems.isEmpty())
        return problems;
    return request;
}

} // namespace deckhand
