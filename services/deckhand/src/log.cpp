#include "log.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <atomic>
#include <cstdio>
#include <mutex>

namespace deckhand {

namespace {

std::atomic<int> g_level { int(LogLevel::Info) };
std::atomic<int> g_format { int(LogFormat::Json) };
std::atomic<FILE *> g_out { nullptr };
std::mutex g_writeMutex;

const char *levelName(LogLevel level)
{
    switch (level) {
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warning:
        return "warning";
    case LogLevel::Error:
        return "error";
    }
    return "info";
}

// JSON string escaping (RFC 8259). QString::toUtf8 already turns lone
// surrogates into U+FFFD, so the output is valid UTF-8 whatever the input.
void appendJsonString(QByteArray &out, const QString &text)
{
    static const char hex[] = "0123456789abcdef";
    const QByteArray utf8 = text.toUtf8();
    out.append('"');
    for (const char ch : utf8) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"':
            out.append("\\\"");
            break;
        case '\\':
            out.append("\\\\");
            break;
        case '\n':
            out.append("\\n");
            break;
        case '\r':
            out.append("\\r");
            break;
        case '\t':
            out.append("\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out.append("\\u00");
                out.append(hex[c >> 4]);
                out.append(hex[c & 0xf]);
            } else {
                out.append(ch);
            }
        }
    }
    out.append('"');
}

void appendJsonValue(QByteArray &out, const QJsonValue &value)
{
    switch (value.type()) {
    case QJsonValue::String:
        appendJsonString(out, value.toString());
        break;
    case QJsonValue::Object:
        out.append(QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact));
        break;
    case QJsonValue::Array:
        out.append(QJsonDocument(value.toArray()).toJson(QJsonDocument::Compact));
        break;
    default: {
        // Numbers, booleans, null: serialise through Qt so the form is exact JSON.
        const QByteArray wrapped =
            QJsonDocument(QJsonArray { value }).toJson(QJsonDocument::Compact);
        out.append(wrapped.mid(1, wrapped.size() - 2));
    }
    }
}

// Console text from anything a client may have sent: every C0 control and
// DEL escaped (\n, \r, \t, else \xNN), so a value can neither break the
// line nor send terminal escape sequences; inside quotes, " and \ too.
QString escapedForConsole(const QString &text, bool quoted)
{
    QString out;
    out.reserve(text.size() + 2);
    for (const QChar ch : text) {
        const char16_t c = ch.unicode();
        if (c == u'\n')
            out += QStringLiteral("\\n");
        else if (c == u'\r')
            out += QStringLiteral("\\r");
        else if (c == u'\t')
            out += QStringLiteral("\\t");
        else if (c < 0x20 || c == 0x7f)
            out += QStringLiteral("\\x%1").arg(int(c), 2, 16, QLatin1Char('0'));
        else if (quoted && (c == u'"' || c == u'\\'))
            out += QLatin1Char('\\') + ch;
        else
            out += ch;
    }
    return out;
}

// key="value" (logfmt): strings always quoted; numbers, booleans, null as JSON.
QString consoleValue(const QJsonValue &value)
{
    if (value.isString())
        return QLatin1Char('"') + escapedForConsole(value.toString(), true) + QLatin1Char('"');
    QByteArray out;
    appendJsonValue(out, value);
    return escapedForConsole(QString::fromUtf8(out), false);
}

} // namespace

void Log::configure(LogLevel level, LogFormat format, FILE *out)
{
    g_level = int(level);
    g_format = int(format);
    g_out = out;
}

bool Log::enabled(LogLevel level)
{
    return int(level) >= g_level.load(std::memory_order_relaxed);
}

QByteArray Log::format(LogLevel level, LogFormat fmt, const char *logger, const QString &event,
                       const QJsonObject &fields, const QDateTime &time)
{
    const QString timestamp = time.toUTC().toString(Qt::ISODateWithMs);
    QByteArray line;
    line.reserve(160);
    if (fmt == LogFormat::Json) {
        line.append("{\"timestamp\":");
        appendJsonString(line, timestamp);
        line.append(",\"level\":\"").append(levelName(level)).append("\",\"event\":");
        appendJsonString(line, event);
        line.append(",\"logger\":");
        appendJsonString(line, QString::fromLatin1(logger));
        for (auto it = fields.begin(); it != fields.end(); ++it) {
            static const QStringList reserved = { QStringLiteral("timestamp"),
                                                  QStringLiteral("level"), QStringLiteral("event"),
                                                  QStringLiteral("logger") };
            if (reserved.contains(it.key()))
                continue; // the envelope's keys are not overridable
            line.append(',');
            appendJsonString(line, it.key());
            line.append(':');
            appendJsonValue(line, it.value());
        }
        line.append("}\n");
        return line;
    }
    // One record, one line: nothing in it can start another or move the cursor.
    QString text = timestamp + QLatin1Char(' ') +
        QString::fromLatin1(levelName(level)).toUpper().leftJustified(7) + QLatin1Char(' ') +
        QString::fromLatin1(logger) + QStringLiteral(": ") + escapedForConsole(event, false);
    for (auto it = fields.begin(); it != fields.end(); ++it)
        text += QLatin1Char(' ') + escapedForConsole(it.key(), false) + QLatin1Char('=') +
            consoleValue(it.value());
    line = text.toUtf8();
    line.append('\n');
    return line;
}

void Log::write(LogLevel level, const char *logger, const QString &event, const QJsonObject &fields)
{
    if (!enabled(level))
        return;
    const QByteArray line = format(level, LogFormat(g_format.load()), logger, event, fields,
                                   QDateTime::currentDateTimeUtc());
    FILE *out = g_out.load();
    if (!out)
        out = stdout;
    const std::lock_guard lock(g_writeMutex);
    std::fwrite(line.constData(), 1, size_t(line.size()), out);
    std::fflush(out);
}

void Log::installQtMessageHandler()
{
    qInstallMessageHandler(
        [](QtMsgType type, const QMessageLogContext &context, const QString &message) {
            LogLevel level = LogLevel::Info;
            switch (type) {
            case QtDebugMsg:
                level = LogLevel::Debug;
                break;
            case QtInfoMsg:
                level = LogLevel::Info;
                break;
            case QtWarningMsg:
                level = LogLevel::Warning;
                break;
            case QtCriticalMsg:
            case QtFatalMsg:
                level = LogLevel::Error;
                break;
            }
            QJsonObject fields;
            if (context.category && qstrcmp(context.category, "default") != 0)
                fields.insert(QStringLiteral("category"), QString::fromLatin1(context.category));
            write(level, "qt", message, fields);
        });
}

} // namespace deckhand
