#include <QJsonArray>
#include <QJsonDocument>
#include <QTest>
#include <health/healthreport.h>

using namespace pilothouse::health;

class TestHealthReport : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void worstWins_data()
    {
        QTest::addColumn<QList<int>>("statuses");
        QTest::addColumn<int>("expected");
        QTest::newRow("empty") << QList<int> {} << int(Status::Pass);
        QTest::newRow("all pass") << QList<int> { 0, 0 } << int(Status::Pass);
        QTest::newRow("one warn") << QList<int> { 0, 1, 0 } << int(Status::Warn);
        QTest::newRow("fail beats warn") << QList<int> { 1, 2, 0 } << int(Status::Fail);
    }
    void worstWins()
    {
        QFETCH(QList<int>, statuses);
        QFETCH(int, expected);
        QList<Check> checks;
        for (int s : statuses)
            checks.append(Check { QStringLiteral("x:y"), {}, Status(s), {}, {}, {}, {} });
        QCOMPARE(int(Report::aggregate(checks)), expected);
    }

    void httpStatusFollowsTheDraft()
    {
        Report r;
        r.status = Status::Pass;
        QCOMPARE(r.httpStatus(), 200);
        r.status = Status::Warn;
        QCOMPARE(r.httpStatus(), 200);
        r.status = Status::Fail;
        QCOMPARE(r.httpStatus(), 503);
    }

    void roundTrip()
    {
        Report r;
        r.status = Status::Warn;
        r.version = QStringLiteral("1.2.3");
        r.releaseId = QStringLiteral("sha-abc");
        r.serviceId = QStringLiteral("deckhand");
        const QDateTime t =
            QDateTime::fromString(QStringLiteral("2026-11-22T10:00:00.123Z"), Qt::ISODateWithMs);
        r.checks.append({ QStringLiteral("postgres:responseTime"),
                          QStringLiteral("datastore"),
                          Status::Pass,
                          1.5,
                          QStringLiteral("ms"),
                          t,
                          {} });
        r.checks.append({ QStringLiteral("redis:responseTime"), QStringLiteral("datastore"),
                          Status::Fail, std::nullopt, QStringLiteral("ms"), t,
                          QStringLiteral("connection refused") });

        const QByteArray wire = QJsonDocument(r.toJson()).toJson();
        QString error;
        const auto back = Report::fromJson(QJsonDocument::fromJson(wire).object(), &error);
        QVERIFY2(back.has_value(), qPrintable(error));
        QCOMPARE(*back, r);

        const QJsonObject checks = r.toJson().value(QStringLiteral("checks")).toObject();
        QVERIFY(checks.value(QStringLiteral("postgres:responseTime")).isArray());
        QCOMPARE(checks.value(QStringLiteral("redis:responseTime"))
                     .toArray()
                     .first()
                     .toObject()
                     .value(QStringLiteral("output"))
                     .toString(),
                 QStringLiteral("connection refused"));
    }

    void rejectsWhatIsNotHealthJson_data()
    {
        QTest::addColumn<QByteArray>("json");
        QTest::newRow("no status") << QByteArray(R"({"version":"1"})");
        QTest::newRow("unknown status") << QByteArray(R"({"status":"green"})");
        QTest::newRow("checks not object") << QByteArray(R"({"status":"pass","checks":[]})");
        QTest::newRow("check not array") << QByteArray(R"({"status":"pass","checks":{"a:b":{}}})");
        QTest::newRow("check without status")
            << QByteArray(R"({"status":"pass","checks":{"a:b":[{}]}})");
    }
    void rejectsWhatIsNotHealthJson()
    {
        QFETCH(QByteArray, json);
        QString error;
        QVERIFY(!Report::fromJson(QJsonDocument::fromJson(json).object(), &error).has_value());
        QVERIFY(!error.isEmpty());
    }

    void acceptsTheDraftsSynonyms()
    {
        QCOMPARE(statusFromString(QStringLiteral("ok")), std::optional<Status>(Status::Pass));
        QCOMPARE(statusFromString(QStringLiteral("UP")), std::optional<Status>(Status::Pass));
        QCOMPARE(statusFromString(QStringLiteral("down")), std::optional<Status>(Status::Fail));
        QCOMPARE(statusFromString(QStringLiteral("error")), std::optional<Status>(Status::Fail));
    }
};

QTEST_GUILESS_MAIN(TestHealthReport)
#include "tst_healthreport.moc"
