// Compose driver and engine watcher failure paths, against a scripted fake
// `docker` (tests/model/fakes/docker): a hang, a daemon that is down or
// refuses us, a port in use, an invalid file, an events stream that drops.
// The real engine paths run in the e2e test.
#include "drivers/command.h"
#include "drivers/composedriver.h"
#include "drivers/docker.h"
#include "engine/enginewatcher.h"
#include "logs/logstore.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QtTest>

using namespace pilothouse;

class TestDrivers final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QByteArray m_originalPath;

    Environment composeEnv()
    {
        Environment e;
        e.name = QStringLiteral("fake");
        e.kind = EnvironmentKind::Compose;
        e.project = QStringLiteral("p");
        e.composeFiles = { m_dir.filePath(QStringLiteral("compose.yaml")) };
        e.dockerHost = QStringLiteral("tcp://127.0.0.1:1");
        return e;
    }

    void useFake(const QByteArray &mode, bool withV1 = false)
    {
        resetComposeCache();
        qputenv("FAKE_DOCKER_MODE", mode);
        QDir bin(m_dir.filePath(QStringLiteral("bin")));
        bin.removeRecursively();
        QVERIFY(QDir().mkpath(bin.path()));
        QVERIFY(QFile::copy(QStringLiteral(FAKES_DIR "/docker"),
                            bin.filePath(QStringLiteral("docker"))));
        if (withV1)
            QVERIFY(QFile::copy(QStringLiteral(FAKES_DIR "/docker"),
                                bin.filePath(QStringLiteral("docker-compose"))));
        // Only the fake: no real docker or docker-compose behind it.
        qputenv("PATH", bin.path().toLocal8Bit() + ":/usr/bin/python3-only-dir");
        QFile::remove(logPath());
    }

    QString logPath() const { return m_dir.filePath(QStringLiteral("calls.jsonl")); }

    QList<QJsonObject> calls() const
    {
        QList<QJsonObject> out;
        QFile f(logPath());
        if (f.open(QIODevice::ReadOnly)) {
            for (const QByteArray &line : f.readAll().split('\n')) {
                if (!line.isEmpty())
                    out << QJsonDocument::fromJson(line).object();
            }
        }
        return out;
    }

    OperationResult runUp(ComposeDriver &driver)
    {
        QSignalSpy done(&driver, &StackDriver::operationFinished);
        driver.up();
        if (!done.wait(20000))
            return { StackOperation::Up,
                     {},
                     OperationResult::Outcome::Failed,
                     QStringLiteral("test: no answer") };
        return done.first().first().value<OperationResult>();
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_originalPath = qgetenv("PATH");
        qputenv("FAKE_DOCKER_LOG", logPath().toLocal8Bit());
    }

    void cleanupTestCase()
    {
        qputenv("PATH", m_originalPath);
        resetComposeCache();
    }

    void v2ArgumentsAndEnvironment()
    {
        useFake("ok");
        ComposeDriver driver(composeEnv());
        QSignalSpy started(&driver, &StackDriver::operationStarted);
        const OperationResult r = runUp(driver);
        QVERIFY2(r.ok(), qPrintable(r.message));
        QCOMPARE(started.size(), 1);
        const QList<QJsonObject> c = calls();
        QCOMPARE(c.size(), 2); // compose version, then up
        const QStringList args = c.last().value(QStringLiteral("args")).toVariant().toStringList();
        QCOMPARE(args,
                 (QStringList { QStringLiteral("compose"), QStringLiteral("--project-name"),
                                QStringLiteral("p"), QStringLiteral("--file"),
                                composeEnv().composeFiles.first(), QStringLiteral("up"),
                                QStringLiteral("--detach") }));
        QCOMPARE(c.last().value(QStringLiteral("docker_host")).toString(),
                 QStringLiteral("tcp://127.0.0.1:1"));
        QCOMPARE(c.last().value(QStringLiteral("lang")).toString(), QStringLiteral("C"));
        // The compose flavour is found once per process.
        QVERIFY(runUp(driver).ok());
        QCOMPARE(calls().size(), 3);
    }

    void v1Fallback()
    {
        useFake("v1-only", true);
        ComposeDriver driver(composeEnv());
        QSignalSpy done(&driver, &StackDriver::operationFinished);
        driver.restart(QStringLiteral("api"));
        QVERIFY(done.wait(20000));
        QVERIFY(done.first().first().value<OperationResult>().ok());
        const QJsonObject last = calls().last();
        QCOMPARE(last.value(QStringLiteral("prog")).toString(), QStringLiteral("docker-compose"));
        const QStringList args = last.value(QStringLiteral("args")).toVariant().toStringList();
        QVERIFY(args.endsWith(QStringLiteral("api")));
        QVERIFY(args.contains(QStringLiteral("restart")));
        QVERIFY(args.contains(QStringLiteral("--ansi")));
    }

    void clearErrors_data()
    {
        QTest::addColumn<QByteArray>("mode");
        QTest::addColumn<QString>("expected");
        QTest::newRow("daemon down")
            << QByteArray("daemon-down") << QStringLiteral("is not running or not reachable");
        QTest::newRow("permission")
            << QByteArray("permission") << QStringLiteral("usermod -aG docker");
        QTest::newRow("port in use")
            << QByteArray("port") << QStringLiteral("port 8000 is already in use");
        QTest::newRow("invalid file")
            << QByteArray("invalid") << QStringLiteral("the compose file is invalid");
    }

    void clearErrors()
    {
        QFETCH(QByteArray, mode);
        QFETCH(QString, expected);
        useFake(mode == "daemon-down" || mode == "permission" ? QByteArray("ok") : mode, false);
        ComposeDriver driver(composeEnv());
        // daemon-down/permission: compose itself reports them; switch after the version probe.
        if (mode == "daemon-down" || mode == "permission") {
            QVERIFY(runUp(driver).ok());
            qputenv("FAKE_DOCKER_MODE", mode);
        }
        const OperationResult r = runUp(driver);
        QCOMPARE(int(r.outcome), int(OperationResult::Outcome::Failed));
        QVERIFY2(r.message.contains(expected), qPrintable(r.message));
    }

    // "port in use" names who holds it: here, this test's own listener.
    void portOwnerFromProc()
    {
        QTcpServer server;
        QVERIFY(server.listen(QHostAddress::LocalHost));
        const int port = server.serverPort();
        const QString owner = localPortOwner(port);
        const QString expected =
            QStringLiteral("tst_drivers (pid %1)").arg(QCoreApplication::applicationPid());
        QVERIFY2(owner == expected, qPrintable(owner + QStringLiteral(" != ") + expected));
        server.close();
        QCOMPARE(localPortOwner(port), QString());
        QCOMPARE(localPortOwner(0), QString());
    }

    void dockerNotInstalled()
    {
        resetComposeCache();
        qputenv("PATH", m_dir.filePath(QStringLiteral("empty")).toLocal8Bit());
        ComposeDriver driver(composeEnv());
        const OperationResult r = runUp(driver);
        QCOMPARE(int(r.outcome), int(OperationResult::Outcome::Failed));
        QVERIFY2(r.message.contains(QLatin1String("Docker Compose is not installed")),
                 qPrintable(r.message));
        QVERIFY(r.message.contains(QLatin1String("apt-get install")));
    }

    void hangTimesOut()
    {
        useFake("ok");
        ComposeDriver driver(composeEnv());
        QVERIFY(runUp(driver).ok()); // finds v2 first
        qputenv("FAKE_DOCKER_MODE", "hang");
        driver.setTimeoutMs(700);
        const OperationResult r = runUp(driver);
        QCOMPARE(int(r.outcome), int(OperationResult::Outcome::Failed));
        QVERIFY2(r.message.contains(QLatin1String("did not finish within")), qPrintable(r.message));
        QVERIFY(!driver.isBusy());
    }

    void cancelIsNotAFailure()
    {
        useFake("ok");
        ComposeDriver driver(composeEnv());
        QVERIFY(runUp(driver).ok());
        qputenv("FAKE_DOCKER_MODE", "hang");
        QSignalSpy done(&driver, &StackDriver::operationFinished);
        QSignalSpy progress(&driver, &StackDriver::progress);
        driver.up();
        QVERIFY(driver.isBusy());
        // A second operation while one runs is refused, and the first goes on.
        driver.down();
        QVERIFY(done.wait(5000));
        QCOMPARE(int(done.first().first().value<OperationResult>().operation),
                 int(StackOperation::Down));
        QVERIFY(done.first().first().value<OperationResult>().message.contains(
            QLatin1String("another operation")));
        QVERIFY(driver.isBusy());
        QTRY_VERIFY(progress.size() >= 1);
        driver.cancel();
        QTRY_COMPARE_WITH_TIMEOUT(done.size(), 2, 10000);
        QCOMPARE(int(done.last().first().value<OperationResult>().outcome),
                 int(OperationResult::Outcome::Cancelled));
        QVERIFY(!driver.isBusy());
    }

    void invalidServiceNameNeverReachesDocker()
    {
        useFake("ok");
        ComposeDriver driver(composeEnv());
        QSignalSpy done(&driver, &StackDriver::operationFinished);
        driver.stopService(QStringLiteral("--volumes"));
        QVERIFY(done.wait(5000));
        QCOMPARE(int(done.first().first().value<OperationResult>().outcome),
                 int(OperationResult::Outcome::Failed));
        QVERIFY(calls().isEmpty());
    }

    void watcherReconnectsAfterEventsDrop()
    {
        useFake("events-drop");
        const QString state = m_dir.filePath(QStringLiteral("events.state"));
        QFile::remove(state);
        qputenv("FAKE_DOCKER_STATE", state.toLocal8Bit());
        EngineWatcher watcher(composeEnv());
        QSignalSpy status(&watcher, &EngineWatcher::engineStatusChanged);
        watcher.start();
        QTRY_COMPARE_WITH_TIMEOUT(watcher.engineStatus(), EngineWatcher::EngineStatus::Connected,
                                  5000);
        QVERIFY(watcher.isSeeded());
        // The events stream ends (as on a daemon restart): disconnected, then back.
        QTRY_COMPARE_WITH_TIMEOUT(watcher.engineStatus(), EngineWatcher::EngineStatus::Disconnected,
                                  5000);
        QVERIFY(watcher.engineError().contains(QLatin1String("not running or not reachable")));
        QTRY_COMPARE_WITH_TIMEOUT(watcher.engineStatus(), EngineWatcher::EngineStatus::Connected,
                                  5000);
        int eventsCalls = 0;
        for (const QJsonObject &c : calls())
            eventsCalls += c.value(QStringLiteral("args"))
                               .toVariant()
                               .toStringList()
                               .contains(QStringLiteral("events"));
        QCOMPARE(eventsCalls, 2);
        watcher.stop();
    }

    void watcherReportsDaemonDown()
    {
        useFake("daemon-down");
        EngineWatcher watcher(composeEnv());
        watcher.start();
        QTRY_COMPARE_WITH_TIMEOUT(watcher.engineStatus(), EngineWatcher::EngineStatus::Disconnected,
                                  5000);
        QVERIFY(watcher.engineError().contains(QLatin1String("tcp://127.0.0.1:1")));
        QVERIFY(watcher.states().isEmpty());
    }

    void logPrefixes()
    {
        using F = ComposeLogFollower;
        QCOMPARE(F::splitPrefixed(QStringLiteral("api_1     | {\"level\":\"info\"}")),
                 std::pair(QStringLiteral("api"), QStringLiteral("{\"level\":\"info\"}"))); // v1
        QCOMPARE(F::splitPrefixed(QStringLiteral("api-1  | hello | world")),
                 std::pair(QStringLiteral("api"), QStringLiteral("hello | world"))); // v2
        QCOMPARE(F::splitPrefixed(QStringLiteral("Attaching to p_api_1")).first, QString());
    }

    void commandOutputAndCancel()
    {
        CommandSpec spec;
        spec.program = QStringLiteral("/usr/bin/python3");
        spec.arguments = { QStringLiteral("-c"),
                           QStringLiteral(
                               "import sys,time\nprint('one');print('two',flush=True)\n"
                               "sys.stderr.write('err\\n');sys.stderr.flush();time.sleep(60)") };
        Command cmd(spec);
        QSignalSpy lines(&cmd, &Command::outputLine);
        QSignalSpy finished(&cmd, &Command::finished);
        cmd.start();
        QTRY_COMPARE_WITH_TIMEOUT(lines.size(), 3, 10000);
        QCOMPARE(lines.at(0).at(0).toString(), QStringLiteral("one"));
        cmd.cancel();
        QVERIFY(finished.wait(10000));
        const auto r = finished.first().first().value<CommandResult>();
        QCOMPARE(int(r.end), int(CommandResult::End::Cancelled));
        QCOMPARE(r.errorOutput, QStringLiteral("err\n"));
    }
};

QTEST_GUILESS_MAIN(TestDrivers)
#include "tst_drivers.moc"
