#include "core/notice.h"

namespace pilothouse {

bool Notice::byUser() const
{
    return kind == Kind::Started || kind == Kind::Stopped || kind == Kind::Restarted ||
        kind == Kind::ActionFailed;
}

bool Notice::bad() const
{
    return kind == Kind::ActionFailed || kind == Kind::Crashed || kind == Kind::Unhealthy ||
        kind == Kind::DeploymentFailed || kind == Kind::BackupFailed || kind == Kind::RestoreFailed;
}

QString toString(Notice::Kind kind)
{
    switch (kind) {
    case Notice::Kind::Started:
        return QStringLiteral("started by you");
    case Notice::Kind::Stopped:
        return QStringLiteral("stopped by you");
    case Notice::Kind::Restarted:
        return QStringLiteral("restarted by you");
    case Notice::Kind::ActionFailed:
        return QStringLiteral("failed");
    case Notice::Kind::Crashed:
        return QStringLiteral("crashed");
    case Notice::Kind::Unhealthy:
        return QStringLiteral("unhealthy");
    case Notice::Kind::Recovered:
        return QStringLiteral("recovered");
    case Notice::Kind::DeploymentSucceeded:
    case Notice::Kind::DeploymentFailed:
        return QStringLiteral("deployment ended");
    case Notice::Kind::BackupSucceeded:
    case Notice::Kind::BackupFailed:
        return QStringLiteral("backup ended");
    case Notice::Kind::RestoreSucceeded:
    case Notice::Kind::RestoreFailed:
        return QStringLiteral("restore ended");
    case Notice::Kind::Info:
        break;
    }
    return QStringLiteral("note");
}

QJsonObject toJson(const Notice &n)
{
    return QJsonObject { { QStringLiteral("at"), n.at.toString(Qt::ISODateWithMs) },
                         { QStringLiteral("environment"), n.environment },
                         { QStringLiteral("kind"), toString(n.kind) },
                         { QStringLiteral("bad"), n.bad() },
                         { QStringLiteral("title"), n.title },
                         { QStringLiteral("text"), n.text } };
}

QString toLine(const Notice &n)
{
    QString line = n.at.toLocalTime().toString(QStringLiteral("HH:mm:ss")) + QLatin1Char(' ') +
        n.environment + QStringLiteral(": ") + n.title;
    if (!n.text.isEmpty())
        line += QStringLiteral(" \u2014 ") + n.text;
    return line;
}

} // namespace pilothouse
