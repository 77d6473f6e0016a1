#include "commands.h"
#include "database.h"
#include "log.h"
#include "redisclient.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QHostInfo>
#include <QJsonDocument>
#include <QSaveFile>
#include <QThread>
#include <QUuid>
#include <atomic>
#include <csignal>

namespace deckhand {

namespace {

std::atomic<bool> g_stop { false };

void requestStop(int)
{
    g_stop = true;
}

void touchHeartbeat(const QString &path)
{
    QSaveFile file(path);
    if (file.open(QIODevice::WriteOnly)) {
        file.write(QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs).toLatin1());
        file.commit();
    }
}

// Sleeps in short steps so a stop request is noticed quickly; false if stopped.
QString g_heartbeatFile;

// Sleeps in short steps so a stop request is noticed quickly, and keeps the
// heartbeat fresh meanwhile (a long job is not a hung worker); false if stopped.
bool pause(int ms)
{
    QElapsedTimer t;
    t.start();
    QElapsedTimer sinceBeat;
    sinceBeat.start();
    while (t.elapsed() < ms) {
        if (g_stop)
            return false;
        if (sinceBeat.elapsed() >= 5000 && !g_heartbeatFile.isEmpty()) {
            touchHeartbeat(g_heartbeatFile);
            sinceBeat.restart();
        }
        QThread::msleep(std::min<qint64>(50, ms - t.elapsed()));
    }
    return !g_stop;
}

enum class RunOutcome { Finished, Interrupted };

RunOutcome runJob(Job &job)
{
    if (job.type == QLatin1String("echo")) {
        job.result = job.payload;
        job.status = QStringLiteral("succeeded");
        return RunOutcome::Finished;
    }
    if (job.type == QLatin1String("sleep")) {
        const int ms = job.payload.value(QStringLiteral("ms")).toInt();
        if (!pause(ms))
            return RunOutcome::Interrupted;
        job.result = QJsonObject { { QStringLiteral("slept_ms"), ms } };
        job.status = QStringLiteral("succeeded");
        return RunOutcome::Finished;
    }
    job.status = QStringLiteral("failed");
    job.error = QStringLiteral("this worker does not know job type \"%1\"").arg(job.type);
    return RunOutcome::Finished;
}

} // namespace

int runWorker(const Config &config)
{
    if (!config.redis) {
        Log::error(
            "deckhand.worker", QStringLiteral("REDIS_URL is not set"),
            { { QStringLiteral("hint"),
                QStringLiteral(
                    "the worker pops jobs from Redis: set REDIS_URL=redis://host:6379/0") } });
        return kExitConfig;
    }
    g_heartbeatFile = config.workerHeartbeatFile;
    for (int s : { SIGTERM, SIGINT }) {
        struct sigaction action
        {
        };
        action.sa_handler = requestStop;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;
        ::sigaction(s, &action, nullptr);
    }

    const QString workerId = QHostInfo::localHostName() + QLatin1Char('-') +
        QString::number(QCoreApplication::applicationPid());
    auto context = [&workerId](QJsonObject fields = {}) {
        fields.insert(QStringLiteral("worker_id"), workerId);
        return fields;
    };

    Database db(config.database, std::max(config.checkTimeoutMs, 2000), QStringLiteral("worker"));
    RedisClient redis(*config.redis, std::max(config.checkTimeoutMs, 2000));
    Log::info("deckhand.worker", QStringLiteral("worker started"),
              context({ { QStringLiteral("database"), config.database.redacted() },
                        { QStringLiteral("redis"), config.redis->redacted() },
                        { QStringLiteral("queue"), QString::fromLatin1(kJobQueueKey) } }));

    bool migrated = false;
    int backoffMs = 250;
    QString lastProblem;
    auto problem = [&](const QString &what) {
        if (what != lastProblem)
            Log::warning("deckhand.worker", QStringLiteral("dependency unavailable; retrying"),
                         context({ { QStringLiteral("error"), what },
                                   { QStringLiteral("retry_ms"), backoffMs } }));
        lastProblem = what;
        pause(backoffMs);
        backoffMs = std::min(backoffMs * 2, 5000);
    };

    qint64 processed = 0;
    while (!g_stop) {
        touchHeartbeat(config.workerHeartbeatFile);
        if (!migrated) {
            auto applied = db.migrate();
            if (!applied) {
                problem(applied.error());
                continue;
            }
            migrated = true;
        }
        auto popped = redis.brpop(kJobQueueKey, 1);
        if (!popped) {
            problem(popped.error());
            continue;
        }
        if (!lastProblem.isEmpty()) {
            Log::info("deckhand.worker", QStringLiteral("dependencies back"), context());
            lastProblem.clear();
        }
        backoffMs = 250;
        if (!popped->has_value())
            continue;

        const QString id = QString::fromLatin1(**popped);
        auto loaded = db.job(id);
        if (!loaded) {
            // Put it back for later rather than lose it.
            (void)redis.rpush(kJobQueueKey, id.toLatin1());
            problem(loaded.error());
            continue;
        }
        if (!loaded->has_value()) {
            Log::warning("deckhand.worker", QStringLiteral("queued id has no job row; skipped"),
                         context({ { QStringLiteral("job_id"), id } }));
            continue;
        }
        Job job = **loaded;
        job.startedAt = QDateTime::currentDateTimeUtc();
        auto claimed = db.claim(job.id, workerId, job.startedAt);
        if (!claimed) {
            (void)redis.rpush(kJobQueueKey, id.toLatin1());
            problem(claimed.error());
            continue;
        }
        if (!*claimed) {
            // Already taken or finished (a duplicate push): never run a job twice.
            Log::info("deckhand.worker", QStringLiteral("job not queued any more; skipped"),
                      context({ { QStringLiteral("job_id"), job.id },
                                { QStringLiteral("status"), job.status } }));
            continue;
        }
        Log::info("deckhand.worker", QStringLiteral("job started"),
                  context({ { QStringLiteral("job_id"), job.id },
                            { QStringLiteral("job_type"), job.type } }));
        QElapsedTimer timer;
        timer.start();
        if (runJob(job) == RunOutcome::Interrupted) {
            // Stopping mid-job: hand it back to the queue's consumer end so it runs next.
            (void)db.requeue(job.id);
            (void)redis.rpush(kJobQueueKey, job.id.toLatin1());
            Log::info("deckhand.worker", QStringLiteral("job requeued at shutdown"),
                      context({ { QStringLiteral("job_id"), job.id } }));
            break;
        }
        job.finishedAt = QDateTime::currentDateTimeUtc();
        job.durationMs = double(timer.nsecsElapsed()) / 1e6;
        // The result is worth keeping: retry until it is stored (or we are
        // told to stop, when the row stays "running" and says by whom).
        Outcome stored = db.markFinished(job);
        while (!stored && !g_stop) {
            Log::error("deckhand.worker", QStringLiteral("cannot record job result; retrying"),
                       context({ { QStringLiteral("job_id"), job.id },
                                 { QStringLiteral("error"), stored.error() } }));
            pause(backoffMs);
            backoffMs = std::min(backoffMs * 2, 5000);
            stored = db.markFinished(job);
        }
        if (!stored)
            break;
        backoffMs = 250;
        ++processed;
        Log::info("deckhand.worker", QStringLiteral("job finished"),
                  context({ { QStringLiteral("job_id"), job.id },
                            { QStringLiteral("job_type"), job.type },
                            { QStringLiteral("status"), job.status },
                            { QStringLiteral("duration_ms"), *job.durationMs } }));
    }
    QFile::remove(config.workerHeartbeatFile);
    Log::info("deckhand.worker", QStringLiteral("worker stopped"),
              context({ { QStringLiteral("jobs_processed"), processed } }));
    return 0;
}

int runMigrate(const Config &config)
{
    Database db(config.database, std::max(config.checkTimeoutMs, 5000), QStringLiteral("migrate"));
    auto applied = db.migrate();
    if (!applied) {
        Log::error("deckhand.db", QStringLiteral("migration failed"),
                   { { QStringLiteral("database"), config.database.redacted() },
                     { QStringLiteral("error"), applied.error() } });
        return 1;
    }
    auto version = db.schemaVersion();
    Log::info("deckhand.db", QStringLiteral("migrations up to date"),
              { { QStringLiteral("applied"), *applied },
                { QStringLiteral("schema_version"), version ? *version : -1 },
                { QStringLiteral("database"), config.database.redacted() } });
    return 0;
}

} // namespace deckhand
