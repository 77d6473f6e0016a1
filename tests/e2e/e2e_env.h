#pragma once

// The compose project stack_e2e.py prepared (PILOTHOUSE_E2E_*), as an
// environment for the deployment tests.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QString>

namespace pilothouse::e2e {

inline QString var(const char *name)
{
    return QString::fromUtf8(qgetenv(name));
}

// The api with its /readyz, the other three watched, `repository` as the
// image of the api and the worker, and a short gate (3 s window, 25 s to get there).
inline QJsonObject deployEnvironment(const QString &name, const QString &repository,
                                     double intervalSeconds)
{
    QJsonArray services { QJsonObject {
        { QStringLiteral("name"), QStringLiteral("api") },
        { QStringLiteral("health"),
          QJsonArray { QJsonObject {
              { QStringLiteral("url"),
                QStringLiteral("http://127.0.0.1:%1/readyz").arg(var("PILOTHOUSE_E2E_API_PORT")) },
              { QStringLiteral("intervalSeconds"), intervalSeconds },
              { QStringLiteral("timeoutSeconds"), 1 } } } } } };
    for (const char *s : { "worker", "postgres", "redis" })
        services.append(QJsonObject { { QStringLiteral("name"), QString::fromLatin1(s) } });
    return QJsonObject {
        { QStringLiteral("name"), name },
        { QStringLiteral("kind"), QStringLiteral("compose") },
        { QStringLiteral("compose"),
          QJsonObject { { QStringLiteral("files"),
                          QJsonArray::fromStringList(
                              var("PILOTHOUSE_E2E_COMPOSE_FILES").split(QLatin1Char(':'))) },
                        { QStringLiteral("project"), var("PILOTHOUSE_E2E_PROJECT") } } },
        { QStringLiteral("services"), services },
        { QStringLiteral("image"),
          QJsonObject { { QStringLiteral("repository"), repository },
                        { QStringLiteral("services"),
                          QJsonArray { QStringLiteral("api"), QStringLiteral("worker") } } } },
        { QStringLiteral("deploy"),
          QJsonObject { { QStringLiteral("healthWindowSeconds"), 3 },
                        { QStringLiteral("timeoutSeconds"), 25 } } },
    };
}

inline bool writeEnvironments(const QString &path, const QJsonArray &environments)
{
    QFile f(path);
    return f.open(QIODevice::WriteOnly) &&
        f.write(QJsonDocument(QJsonObject { { QStringLiteral("version"), 1 },
                                            { QStringLiteral("environments"), environments } })
                    .toJson()) > 0;
}

} // namespace pilothouse::e2e
