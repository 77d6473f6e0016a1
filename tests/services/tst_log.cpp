#include "log.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryFile>
#include <QTest>
#include <cstdio>
#include <unistd.h>

using namespace deckhand;

class TestLog : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void jsonLineIsValidWhateverTheMessage_data()
    {
        QTest::addColumn<QString>("text");
        QTest::newRow("plain") << QStringLiteral("hello");
        QTest::newRow("quotes and backslashes") << QStringLiteral(R"(say "hi" \ C:\path)");
        QTest::newRow("newlines") << QStringLiteral("line1\nline2\r\n");
        QTest::newRow("control chars")
            << QString::fromLatin1("bell\x07 nul-ish\x01 esc\x1b del\x7f");
        QTest::newRow("unicode") << QStringLiteral("héllo wörld ✓ 🚢");
        QTest::newRow("lone surrogate") << QString(QChar(0xD800)) + QStringLiteral("x");
        QTest::newRow("json-looking") << QStringLiteral(R"({"level":"error"}, "x": 1)");
    }
    void jsonLineIsValidWhateverTheMessage()
    {
        QFETCH(QString, text);
        const QDateTime t =
            QDateTime::fromString(QStringLiteral("2026-11-22T10:00:00.5Z"), Qt::ISODateWithMs);
        const QByteArray line = Log::format(
            LogLevel::Warning, LogFormat::Json, "deckhand.test", text,
            { { QStringLiteral("detail"), text },
              { QStringLiteral("status"), 503 },
              { QStringLiteral("ok"), false },
              { QStringLiteral("nested"), QJsonObject { { QStringLiteral("k"), text } } } },
            t);
        QVERIFY(line.endsWith('\n'));
        QCOMPARE(line.count('\n'), 1);
        QJsonParseError error;
        const QJsonDocument doc = QJsonDocument::fromJson(line, &error);
        QVERIFY2(error.error == QJsonParseError::NoError,
                 qPrintable(error.errorString() + QLatin1Char(' ') + QString::fromUtf8(line)));
        const QJsonObject o = doc.object();
        QCOMPARE(o.value(QStringLiteral("timestamp")).toString(),
                 QStringLiteral("2026-11-22T10:00:00.500Z"));
        QCOMPARE(o.value(QStringLiteral("level")).toString(), QStringLiteral("warning"));
        QCOMPARE(o.value(QStringLiteral("logger")).toString(), QStringLiteral("deckhand.test"));
        QCOMPARE(o.value(QStringLiteral("status")).toInt(), 503);
        QCOMPARE(o.value(QStringLiteral("ok")).toBool(true), false);
        if (!text.contains(QChar(0xD800))) {
            QCOMPARE(o.value(QStringLiteral("event")).toString(), text);
            QCOMPARE(o.value(QStringLiteral("detail")).toString(), text);
        }
    }

    void envelopeKeysCannotBeOverridden()
    {
        const QByteArray line =
            Log::format(LogLevel::Info, LogFormat::Json, "x", QStringLiteral("real"),
                        { { QStringLiteral("level"), QStringLiteral("fake") },
                          { QStringLiteral("event"), QStringLiteral("fake") } },
                        QDateTime::currentDateTimeUtc());
        const QJsonObject o = QJsonDocument::fromJson(line).object();
        QCOMPARE(o.value(QStringLiteral("level")).toString(), QStringLiteral("info"));
        QCOMPARE(o.value(QStringLiteral("event")).toString(), QStringLiteral("real"));
    }

    void consoleIsOneLine()
    {
        const QByteArray line = Log::format(
            LogLevel::Error, LogFormat::Console, "deckhand", QStringLiteral("two\nlines"),
            { { QStringLiteral("port"), 8000 } }, QDateTime::currentDateTimeUtc());
        QCOMPARE(line.count('\n'), 1);
        QVERIFY(line.contains("ERROR"));
        QVERIFY(line.contains("port=8000"));
    }

    // What a client sent (a path, a header) cannot forge a line or drive the
    // terminal: every C0 control and DEL escaped; string values quoted.
    void consoleEscapesControlsAndQuotesValues()
    {
        const QByteArray line = Log::format(
            LogLevel::Info, LogFormat::Console, "deckhand.http",
            QStringLiteral("bad\x1b[2Jrequest"),
            { { QStringLiteral("path"), QStringLiteral("/a\"b\\c\r\nFAKE 200\x7f\x01\t") },
              { QStringLiteral("status"), 400 },
              { QStringLiteral("ok"), false } },
            QDateTime::currentDateTimeUtc());
        QCOMPARE(line.count('\n'), 1);
        QVERIFY(line.endsWith('\n'));
        for (char c = 0; c < 0x20; ++c) {
            if (c != '\n')
                QVERIFY2(!line.contains(c), qPrintable(QString::number(int(c))));
        }
        QVERIFY(!line.contains('\x7f'));
        QVERIFY2(line.contains("bad\\x1b[2Jrequest"), line.constData());
        QVERIFY2(line.contains("path=\"/a\\\"b\\\\c\\r\\nFAKE 200\\x7f\\x01\\t\""),
                 line.constData());
        QVERIFY(line.contains("status=400"));
        QVERIFY(line.contains("ok=false"));
    }

    void levelFilters()
    {
        QTemporaryFile file;
        QVERIFY(file.open());
        FILE *out = fdopen(dup(file.handle()), "w");
        QVERIFY(out);
        Log::configure(LogLevel::Warning, LogFormat::Json, out);
        Log::info("x", QStringLiteral("hidden"));
        Log::warning("x", QStringLiteral("shown"));
        Log::configure(LogLevel::Info, LogFormat::Json, stdout);
        fclose(out);
        file.seek(0);
        const QByteArray written = file.readAll();
        QVERIFY(!written.contains("hidden"));
        QVERIFY(written.contains("shown"));
    }
};

QTEST_GUILESS_MAIN(TestLog)
#include "tst_log.moc"
