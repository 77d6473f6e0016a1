// The core against a real Docker engine and this repository's compose.yaml:
// up, live state from the engine, a `docker kill` seen by the watcher, restart
// recovery, logs, pilothousectl, down. Run by stack_e2e.py (which starts the
// engine and builds the images) with PILOTHOUSE_E2E_* set; on its own it skips
// (and fails under CI=true).
#include "core/session.h"
#include "db/backup.h"
#include "drivers/command.h"
#include "drivers/docker.h"
#include "servers.h"

#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QtTest>
#include <algorithm>
#include <csignal>
#include <optional>
#include <sys/stat.h>

using namespace pilothouse;

class TestCompose final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_config;
    std::optional<Environment> m_env;
    std::unique_ptr<StackSession> m_session;

    const ServiceRow *row(const QList<ServiceRow> &rows, const QString &service,
                          ServiceRow *out) const
    {
        for (const ServiceRow &r : rows) {
            if (r.state.service == service) {
                *out = r;
                return out;
            }
        }
        return nullptr;
    }

    ServiceRow rowOf(const QString &service) const
    {
        ServiceRow r;
        row(m_session->services(), service, &r);
        return r;
    }

    CommandResult docker(const QStringList &args)
    {
        Command cmd(dockerCommand(*m_env, args, 60000, QStringLiteral("docker")));
        QSignalSpy done(&cmd, &Command::finished);
        cmd.start();
        done.wait(65000);
        return done.isEmpty() ? CommandResult {} : done.first().first().value<CommandResult>();
    }

    OperationResult operate(const std::function<void()> &call, int timeoutMs)
    {
        QSignalSpy done(m_session.get(), &StackSession::operationFinished);
        call();
        if (!done.wait(timeoutMs))
            return { StackOperation::Up,
                     {},
                     OperationResult::Outcome::Failed,
                     QStringLiteral("test: timed out") };
        return done.first().first().value<OperationResult>();
    }

    BackupInfo m_backup; // taken by backUpThePostgresInTheStack

private slots:
    void initTestCase()
    {
        const QByteArray project = qgetenv("PILOTHOUSE_E2E_PROJECT");
        PILOTHOUSE_REQUIRE(
            project.isEmpty()
                ? QStringLiteral("run by tests/e2e/stack_e2e.py, which starts the "
                                 "engine, builds the images and sets PILOTHOUSE_E2E_*")
                : QString());
        QVERIFY(m_dir.isValid());
        const QString port = QString::fromUtf8(qgetenv("PILOTHOUSE_E2E_API_PORT"));
        m_config = m_dir.filePath(QStringLiteral("envs.json"));
        QFile f(m_config);
        QVERIFY(f.open(QIODevice::WriteOnly));
        QJsonObject api {
            { QStringLiteral("name"), QStringLiteral("api") },
            { QStringLiteral("health"),
              QJsonArray { QJsonObject {
                  { QStringLiteral("url"), QStringLiteral("http://127.0.0.1:%1/readyz").arg(port) },
                  { QStringLiteral("intervalSeconds"), 0.25 },
                  { QStringLiteral("timeoutSeconds"), 1 } } } }
        };
        QJsonArray services { api };
        for (const char *s : { "worker", "postgres", "redis" })
            services.append(QJsonObject { { QStringLiteral("name"), QString::fromLatin1(s) } });
        const QJsonObject env {
            { QStringLiteral("name"), QStringLiteral("e2e") },
            { QStringLiteral("kind"), QStringLiteral("compose") },
            { QStringLiteral("compose"),
              QJsonObject {
                  { QStringLiteral("files"),
                    QJsonArray { QString::fromUtf8(qgetenv("PILOTHOUSE_E2E_COMPOSE_FILE")) } },
                  { QStringLiteral("project"), QString::fromUtf8(project) } } },
            { QStringLiteral("services"), services },
            { QStringLiteral("database"),
              QJsonObject {
                  { QStringLiteral("compose"),
                    QJsonObject { { QStringLiteral("service"), QStringLiteral("postgres") } } } } },
        };
        f.write(
            QJsonDocument(QJsonObject { { QStringLiteral("version"), 1 },
                                        { QStringLiteral("environments"), QJsonArray { env } } })
                .toJson());
        f.close();
        const auto set = loadEnvironments(m_config);
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        m_env = *set->find(QStringLiteral("e2e"));
        m_session = std::make_unique<StackSession>(*m_env);
        m_session->startWatching();
        QTRY_COMPARE_WITH_TIMEOUT(int(m_session->watcher()->engineStatus()),
                                  int(EngineWatcher::EngineStatus::Connected), 30000);
    }

    // Before up, the engine answers and has no container of the project:
    // each service is "not created" (not "exited"), and Start creates it.
    void notCreatedBeforeUp()
    {
        QTRY_VERIFY_WITH_TIMEOUT(m_session->watcher()->isSeeded(), 30000);
        const QList<ServiceRow> rows = m_session->services();
        QCOMPARE(rows.size(), 4);
        for (const ServiceRow &r : rows) {
            QCOMPARE(toString(r.state.state), QStringLiteral("not created"));
            QVERIFY2(r.detail.contains(QLatin1String("Start creates it")), qPrintable(r.detail));
        }
    }

    void upAndHealthy()
    {
        QElapsedTimer clock;
        clock.start();
        const OperationResult r = operate([this] { m_session->up(); }, 300000);
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 180000);
        qInfo("compose up to all healthy through the core: %.1f s", clock.elapsed() / 1000.0);
        // The four watched ones and the edge proxy, which the engine lists too.
        const QList<ServiceRow> rows = m_session->services();
        QCOMPARE(rows.size(), 5);
        QCOMPARE(int(rowOf(QStringLiteral("proxy")).state.state), int(RunState::Running));
        const ServiceRow api = rowOf(QStringLiteral("api"));
        QCOMPARE(int(api.state.health), int(EngineHealth::Healthy));
        QCOMPARE(int(api.http), int(EndpointStatus::Pass));
        QVERIFY(api.state.image.contains(QLatin1String("deckhand")));
        QCOMPARE(api.state.tag, QString::fromUtf8(qgetenv("DECKHAND_TAG")));
        // The proxy owns the published port; the api publishes none.
        const ServiceRow proxy = rowOf(QStringLiteral("proxy"));
        QVERIFY2(proxy.state.ports.join(u' ').contains(
                     QStringLiteral("127.0.0.1:%1->8080/tcp")
                         .arg(QString::fromUtf8(qgetenv("PILOTHOUSE_E2E_API_PORT")))),
                 qPrintable(proxy.state.ports.join(u' ')));
        QVERIFY2(!api.state.ports.join(u' ').contains(QLatin1String("->")),
                 qPrintable(api.state.ports.join(u' ')));
        QVERIFY(api.state.startedAt.isValid());
        QVERIFY(!api.state.containerId.isEmpty());
    }

    void pilothousectlStatus()
    {
        QProcess p;
        p.start(QStringLiteral(PILOTHOUSECTL),
                { QStringLiteral("status"), QStringLiteral("--json"), QStringLiteral("--config"),
                  m_config, QStringLiteral("--env"), QStringLiteral("e2e") });
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 0);
        const QJsonObject o = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        QCOMPARE(o.value(QStringLiteral("health")).toString(), QStringLiteral("healthy"));
        QCOMPARE(
            o.value(QStringLiteral("engine")).toObject().value(QStringLiteral("status")).toString(),
            QStringLiteral("connected"));
        QCOMPARE(o.value(QStringLiteral("services")).toArray().size(), 5);
    }

    void killIsSeenWithinASecond()
    {
        // Several rounds: docker kill, measure until the model shows it, docker start.
        QList<qint64> latencies;
        for (int round = 0; round < 3; ++round) {
            QTRY_VERIFY_WITH_TIMEOUT(rowOf(QStringLiteral("api")).state.isRunning(), 30000);
            const QString id = rowOf(QStringLiteral("api")).state.containerId;
            QElapsedTimer clock;
            qint64 seenAt = -1;
            auto c = connect(m_session.get(), &StackSession::servicesChanged, this, [&] {
                const ServiceRow r = rowOf(QStringLiteral("api"));
                if (seenAt < 0 && !r.state.isRunning() &&
                    (r.health == ServiceHealth::Down || r.health == ServiceHealth::Unhealthy))
                    seenAt = clock.elapsed();
            });
            clock.start();
            const CommandResult k = docker({ QStringLiteral("kill"), id });
            QVERIFY2(k.ok(), qPrintable(k.errorOutput));
            QTRY_VERIFY_WITH_TIMEOUT(seenAt >= 0, 5000);
            disconnect(c);
            latencies << seenAt;
            const ServiceRow r = rowOf(QStringLiteral("api"));
            QVERIFY(r.state.exitCode == 137 || r.state.exitCode == 143);
            QCOMPARE(int(r.state.health), int(EngineHealth::Unhealthy));
            QVERIFY(docker({ QStringLiteral("start"), id }).ok());
        }
        std::sort(latencies.begin(), latencies.end());
        qInfo("BENCH kill_to_model_ms min=%lld median=%lld max=%lld (docker kill call included)",
              latencies.first(), latencies.at(1), latencies.last());
        QVERIFY2(latencies.at(1) < 1000, qPrintable(QString::number(latencies.at(1))));
    }

    void restartRecovers()
    {
        const OperationResult r =
            operate([this] { m_session->restart(QStringLiteral("api")); }, 120000);
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 120000);
    }

    // A container the engine paused is "paused" (down: it answers nothing),
    // and Start resumes it (`compose up` alone would leave it paused).
    void pausedIsShownAndStartResumesIt()
    {
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 120000);
        const QString id = rowOf(QStringLiteral("worker")).state.containerId;
        const CommandResult p = docker({ QStringLiteral("pause"), id });
        QVERIFY2(p.ok(), qPrintable(p.errorOutput));
        QTRY_COMPARE_WITH_TIMEOUT(toString(rowOf(QStringLiteral("worker")).state.state),
                                  QStringLiteral("paused"), 5000);
        const ServiceRow paused = rowOf(QStringLiteral("worker"));
        QCOMPARE(int(paused.health), int(ServiceHealth::Down));
        QVERIFY2(paused.detail.contains(QLatin1String("Start resumes it")),
                 qPrintable(paused.detail));
        const OperationResult r = operate([this] { m_session->up(); }, 180000);
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_COMPARE_WITH_TIMEOUT(toString(rowOf(QStringLiteral("worker")).state.state),
                                  QStringLiteral("running"), 10000);
        QCOMPARE(rowOf(QStringLiteral("worker")).state.containerId, id); // resumed, not replaced
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 120000);
    }

    void followsLogs()
    {
        m_session->followLogs(QStringLiteral("api"), 20);
        QTRY_VERIFY_WITH_TIMEOUT(!m_session->logs()->lines(QStringLiteral("api")).isEmpty(), 20000);
        const auto lines = m_session->logs()->lines(QStringLiteral("api"));
        QVERIFY2(lines.last().text.startsWith(QLatin1Char('{')),
                 qPrintable(lines.last().text)); // the prefix is gone
        QVERIFY(!lines.last().level.isEmpty());
        for (const LogLine &l : lines)
            QVERIFY2(!l.text.startsWith(QLatin1String("Attaching to")),
                     qPrintable(l.text)); // compose's chatter
        m_session->stopFollowingLogs();
    }

    void daemonRestartIsSurvived()
    {
        const qint64 harness = qEnvironmentVariableIntValue("PILOTHOUSE_E2E_HARNESS_PID");
        // An engine the harness did not start (e.g. a system service) is left alone.
        PILOTHOUSE_REQUIRE(harness <= 0 ? QStringLiteral("the Docker engine was not started by "
                                                         "stack_e2e.py, so it cannot restart it")
                                        : QString());
        QSignalSpy status(m_session->watcher(), &EngineWatcher::engineStatusChanged);
        // The rows as the window would draw them the moment the engine goes.
        std::optional<ServiceRow> away;
        ServiceHealth awayHealth = ServiceHealth::Unknown;
        const QMetaObject::Connection look =
            connect(m_session->watcher(), &EngineWatcher::engineStatusChanged, this,
                    [&](EngineWatcher::EngineStatus s) {
                        if (s == EngineWatcher::EngineStatus::Disconnected && !away) {
                            away = rowOf(QStringLiteral("api"));
                            awayHealth = m_session->aggregate();
                        }
                    });
        QCOMPARE(::kill(pid_t(harness), SIGUSR1), 0);
        QTRY_COMPARE_WITH_TIMEOUT(int(m_session->watcher()->engineStatus()),
                                  int(EngineWatcher::EngineStatus::Disconnected), 60000);
        QVERIFY(!m_session->watcher()->engineError().isEmpty());
        // Not down while the engine is away: nobody knows what runs. A
        // container seen before is "unreachable" ("last seen ..."); one the
        // stopping daemon stopped listing first is "unknown"; either way with
        // the reason.
        QVERIFY(away.has_value());
        const QString awayState = toString(away->state.state);
        QVERIFY2(awayState == QLatin1String("unreachable") || awayState == QLatin1String("unknown"),
                 qPrintable(awayState));
        QCOMPARE(int(away->health), int(ServiceHealth::Unknown));
        QVERIFY2(away->detail.contains(QLatin1String("not running or not reachable")) ||
                     away->detail.contains(QLatin1String("out of reach")) ||
                     away->detail.startsWith(QLatin1String("last seen ")),
                 qPrintable(away->detail));
        qInfo("api while the engine is away: %s (%s)", qPrintable(awayState),
              qPrintable(away->detail));
        QVERIFY(awayHealth != ServiceHealth::Down);
        disconnect(look);
        QTRY_COMPARE_WITH_TIMEOUT(int(m_session->watcher()->engineStatus()),
                                  int(EngineWatcher::EngineStatus::Connected), 120000);
        // The restart policy brings the stack back; the model follows without help.
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 180000);
        // And it is live again: a kill after the reconnect is seen too.
        const QString id = rowOf(QStringLiteral("worker")).state.containerId;
        QVERIFY(docker({ QStringLiteral("kill"), id }).ok());
        QTRY_VERIFY_WITH_TIMEOUT(!rowOf(QStringLiteral("worker")).state.isRunning(), 5000);
        QVERIFY(docker({ QStringLiteral("start"), id }).ok());
    }

    // Back up now: pg_dump in the database's own container, streamed to a
    // private file, read back whole by pg_restore, its sha256 recorded.
    void backUpThePostgresInTheStack()
    {
        QStandardPaths::setTestModeEnabled(true);
        QDir(backupFolder(m_env->name)).removeRecursively();
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 120000);
        // A row to find in the archive.
        const CommandResult marked = docker(
            { QStringLiteral("exec"), rowOf(QStringLiteral("postgres")).state.containerId,
              QStringLiteral("psql"), QStringLiteral("-U"),
              qEnvironmentVariable("POSTGRES_USER", QStringLiteral("deckhand")),
              QStringLiteral("-d"), qEnvironmentVariable("POSTGRES_DB", QStringLiteral("deckhand")),
              QStringLiteral("-c"),
              QStringLiteral("CREATE TABLE backup_marker (note text); INSERT INTO backup_marker "
                             "VALUES ('found in the archive')") });
        QVERIFY2(marked.ok(), qPrintable(marked.errorOutput));
        BackupJob job(m_session.get());
        QSignalSpy done(&job, &BackupJob::finished);
        QElapsedTimer clock;
        clock.start();
        job.start();
        QVERIFY(done.wait(120000));
        const auto info = done.first().at(0).value<BackupInfo>();
        const QString error = done.first().at(1).toString();
        QVERIFY2(error.isEmpty(), qPrintable(error));
        qInfo("BENCH pg_backup_ms=%lld size=%lld", clock.elapsed(), info.size);
        QCOMPARE(info.format, QStringLiteral("pg_dump-custom"));
        QVERIFY(info.verifiedOk());
        struct stat st
        {
        };
        QCOMPARE(::stat(QFile::encodeName(info.path).constData(), &st), 0);
        QCOMPARE(int(st.st_mode & 0777), 0600);
        QFile archive(info.path);
        QVERIFY(archive.open(QIODevice::ReadOnly));
        const QByteArray bytes = archive.readAll();
        QVERIFY(bytes.startsWith("PGDMP")); // pg_dump's custom format
        QCOMPARE(info.sha256,
                 QString::fromLatin1(
                     QCryptographicHash::hash(bytes, QCryptographicHash::Sha256).toHex()));
        QCOMPARE(listBackups(m_env->name).size(), 1);
        // The archive holds the row: its table of contents lists the table.
        CommandSpec list = dockerCommand(*m_env,
                                         { QStringLiteral("exec"), QStringLiteral("--interactive"),
                                           rowOf(QStringLiteral("postgres")).state.containerId,
                                           QStringLiteral("pg_restore"), QStringLiteral("--list") },
                                         60000, QStringLiteral("pg_restore --list"));
        list.inputFile = info.path;
        Command toc(list);
        QSignalSpy listed(&toc, &Command::finished);
        toc.start();
        QVERIFY(listed.wait(65000));
        const auto r = listed.first().first().value<CommandResult>();
        QVERIFY2(r.ok() && r.output.contains(QLatin1String("TABLE DATA public backup_marker")),
                 qPrintable(r.output + r.errorOutput));
        m_backup = info;
    }

    // Restore: what was written after the backup is gone, the marker row is
    // back, the writers were stopped and started again, and a safety backup
    // of the state before it was taken. A tampered archive is refused
    // before anything is touched.
    void restoreTheBackup()
    {
        QVERIFY(!m_backup.path.isEmpty());
        const QString db = rowOf(QStringLiteral("postgres")).state.containerId;
        const auto psql = [&](const QString &sql) {
            return docker({ QStringLiteral("exec"), db, QStringLiteral("psql"),
                            QStringLiteral("-U"),
                            qEnvironmentVariable("POSTGRES_USER", QStringLiteral("deckhand")),
                            QStringLiteral("-d"),
                            qEnvironmentVariable("POSTGRES_DB", QStringLiteral("deckhand")),
                            QStringLiteral("-At"), QStringLiteral("-c"), sql });
        };
        QVERIFY(psql(QStringLiteral("INSERT INTO backup_marker VALUES ('after the backup')")).ok());
        const QString apiBefore = rowOf(QStringLiteral("api")).state.containerId;
        const QDateTime apiStarted = rowOf(QStringLiteral("api")).state.startedAt;

        // A copy with one byte changed: refused by its sha256, nothing stopped.
        const QString tampered = m_dir.filePath(QStringLiteral("tampered.dump"));
        QFile::remove(tampered);
        QVERIFY(QFile::copy(m_backup.path, tampered));
        {
            QFile t(tampered);
            QVERIFY(t.open(QIODevice::ReadWrite));
            t.seek(t.size() / 2);
            const char c = t.peek(1).at(0);
            t.write(QByteArray(1, char(c ^ 0x55)));
        }
        BackupInfo bad = m_backup;
        bad.path = tampered;
        {
            RestoreJob job(m_session.get());
            QSignalSpy done(&job, &RestoreJob::finished);
            job.start(bad);
            QVERIFY(done.wait(60000));
            QVERIFY2(done.first().at(0).toString().contains(QLatin1String("sha256")),
                     qPrintable(done.first().at(0).toString()));
        }
        QCOMPARE(rowOf(QStringLiteral("api")).state.startedAt, apiStarted);

        RestoreJob job(m_session.get());
        QSignalSpy done(&job, &RestoreJob::finished);
        QElapsedTimer clock;
        clock.start();
        job.start(m_backup);
        QVERIFY(done.wait(300000));
        const QString error = done.first().at(0).toString();
        const QString safety = done.first().at(1).toString();
        QVERIFY2(error.isEmpty(), qPrintable(error));
        qInfo("BENCH pg_restore_ms=%lld", clock.elapsed());
        const CommandResult rows =
            psql(QStringLiteral("SELECT note FROM backup_marker ORDER BY 1"));
        QVERIFY2(rows.ok(), qPrintable(rows.errorOutput));
        QCOMPARE(rows.output.trimmed(), QStringLiteral("found in the archive"));
        QVERIFY(QFileInfo::exists(safety));
        QCOMPARE(listBackups(m_env->name).size(), 2); // the backup and the safety one
        QVERIFY(restoreMarker(m_env->name).isEmpty());
        // The writers were stopped and started again: the same containers, running.
        QTRY_VERIFY_WITH_TIMEOUT(rowOf(QStringLiteral("api")).state.isRunning() &&
                                     rowOf(QStringLiteral("worker")).state.isRunning(),
                                 30000);
        QCOMPARE(rowOf(QStringLiteral("api")).state.containerId, apiBefore);
        QVERIFY(rowOf(QStringLiteral("api")).state.startedAt > apiStarted);
        QTRY_VERIFY_WITH_TIMEOUT(m_session->aggregate() == ServiceHealth::Healthy, 120000);
    }

    void down()
    {
        const OperationResult r = operate([this] { m_session->down(); }, 180000);
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_VERIFY_WITH_TIMEOUT(m_session->watcher()->states().isEmpty(), 30000);
        QCOMPARE(int(m_session->aggregate()), int(ServiceHealth::Down));
        m_session->stopWatching();
    }
};

QTEST_GUILESS_MAIN(TestCompose)
#include "tst_compose.moc"
