#include "job.h"

#include <QJsonDocument>
#include <QTest>

using namespace deckhand;

class TestJobs : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void valid_data()
    {
        QTest::addColumn<QByteArray>("body");
        QTest::addColumn<QString>("type");
        QTest::newRow("echo") << QByteArray(R"({"type":"echo","payload":{"a":1}})")
                              << QStringLiteral("echo");
        QTest::newRow("echo no payload")
            << QByteArray(R"({"type":"echo"})") << QStringLiteral("echo");
        QTest::newRow("sleep") << QByteArray(R"({"type":"sleep","payload":{"ms":25}})")
                               << QStringLiteral("sleep");
    }
    void valid()
    {
        QFETCH(QByteArray, body);
        QFETCH(QString, type);
        const auto parsed = JobRequest::fromJson(body);
        QVERIFY(std::holds_alternative<JobRequest>(parsed));
        QCOMPARE(std::get<JobRequest>(parsed).type, type);
    }

    void invalid_data()
    {
        QTest::addColumn<QByteArray>("body");
        QTest::addColumn<QString>("mentions");
        QTest::newRow("malformed") << QByteArray("{\"type\":") << QStringLiteral("not valid JSON");
        QTest::newRow("array") << QByteArray("[1,2]") << QStringLiteral("JSON object");
        QTest::newRow("no type") << QByteArray("{}") << QStringLiteral("\"type\" is required");
        QTest::newRow("type not string")
            << QByteArray(R"({"type":5})") << QStringLiteral("\"type\" is required");
        QTest::newRow("unknown type")
            << QByteArray(R"({"type":"rm -rf"})") << QStringLiteral("unknown job type");
        QTest::newRow("payload not object") << QByteArray(R"({"type":"echo","payload":[1]})")
                                            << QStringLiteral("\"payload\" must be");
        QTest::newRow("unknown field") << QByteArray(R"({"type":"echo","priority":1})")
                                       << QStringLiteral("unknown field \"priority\"");
        QTest::newRow("sleep without ms")
            << QByteArray(R"({"type":"sleep"})") << QStringLiteral("sleep jobs need");
        QTest::newRow("sleep negative") << QByteArray(R"({"type":"sleep","payload":{"ms":-1}})")
                                        << QStringLiteral("sleep jobs need");
        QTest::newRow("sleep fraction") << QByteArray(R"({"type":"sleep","payload":{"ms":1.5}})")
                                        << QStringLiteral("sleep jobs need");
        QTest::newRow("sleep too long") << QByteArray(R"({"type":"sleep","payload":{"ms":600001}})")
                                        << QStringLiteral("sleep jobs need");
    }
    void invalid()
    {
        QFETCH(QByteArray, body);
        QFETCH(QString, mentions);
        const auto parsed = JobRequest::fromJson(body);
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        const QString all = std::get<QStringList>(parsed).join(QStringLiteral("; "));
        QVERIFY2(all.contains(mentions), qPrintable(all));
    }

    void everyProblemIsReported()
    {
        const auto parsed = JobRequest::fromJson(R"({"type":"nope","payload":7,"extra":true})");
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        QCOMPARE(std::get<QStringList>(parsed).size(), 3);
    }

    void jobJsonHasStableShape()
    {
        Job j;
        j.id = QStringLiteral("0b6c6f0e-3c1a-4a53-9d59-6a8c2b9f1d11");
        j.type = QStringLiteral("echo");
        j.status = QStringLiteral("queued");
        j.createdAt = QDateTime::currentDateTimeUtc();
        const QJsonObject o = j.toJson();
        for (const char *key : { "id", "type", "payload", "status", "attempts", "created_at",
                                 "started_at", "finished_at", "duration_ms", "result", "error" })
            QVERIFY2(o.contains(QLatin1String(key)), key);
        QVERIFY(o.value(QStringLiteral("started_at")).isNull());
    }
};

QTEST_GUILESS_MAIN(TestJobs)
#include "tst_jobs.moc"
