#pragma once

#include "config.h"

#include <QJsonObject>
#include <QString>

namespace deckhand {

// Structured logs: one JSON object a line on stdout (or a console line for
// people). Thread-safe; a line is written whole or not at all.
class Log final
{
public:
    static void configure(LogLevel level, LogFormat format, FILE *out = stdout);
    static bool enabled(LogLevel level);
    static void write(LogLevel level, const char *logger, const QString &event,
                      const QJsonObject &fields = {});

    static void debug(const char *logger, const QString &event, const QJsonObject &fields = {})
    {
        write(LogLevel::Debug, logger, event, fields);
    }
    static void info(const char *logger, const QString &event, const QJsonObject &fields = {})
    {
        write(LogLevel::Info, logger, event, fields);
    }
    static void warning(const char *logger, const QString &event, const QJsonObject &fields = {})
    {
        write(LogLevel::Warning, logger, event, fields);
    }
    static void error(const char *logger, const QString &event, const QJsonObject &fields = {})
    {
        write(LogLevel::Error, logger, event, fields);
    }

    // Formats one line without writing it (used by write(), and by tests).
    static QByteArray format(LogLevel level, LogFormat format, const char *logger,
                             const QString &event, const QJsonObject &fields,
                             const QDateTime &time);

    // Routes qDebug/qWarning and Qt's own messages through the same format.
    static void installQtMessageHandler();
};

} // namespace deckhand
