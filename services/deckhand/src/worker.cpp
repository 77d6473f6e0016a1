#include "commands.h"
#include "database.h"
#include "log.h"
#include "redisclient.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QHostInfo>
#include <QJsonDocument>
#include <QThread>
#include <QUuid>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <sys/stat.h>
#include <unistd.h>

namespace deckhand {

namespace {

std::atomic<bool> g_stop { false };

void requestStop(int)
{
    g_stop = true;
}

// Written in place, never through a symbolic link (O_NOFOLLOW: a link put
// there by someone else is refused, not followed to a file of theirs choosing),
// mode 0600. A refusal is said once, not every second.
void touchHeartbeat(const QString &path)
{
    static bool warned = false;
    const int fd = ::open(QFile::encodeName(path).constData(),
                          O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (!warned)
            Log::error("deckhand.worker", QStringLiteral("cannot write the heartbeat file"),
                       { { QStringLiteral("path"), path },
                         { QStringLiteral("error"),
                           errno == ELOOP ? QStringLiteral("it is a symbolic link; refused")
                                          : QString::fromLocal8Bit(std::strerror(errno)) } });
        warned = true;
        return;
    }
    warned = false;
    ::fchmod(fd, 0600); // a file left by someone else's umask is narrowed
    const QByteArray now = QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs).toLatin1();
    if (::ftruncate(fd, 0) == 0 && ::write(fd, now.constData(), size_t(now.size())) > 0)
        ::futimens(fd, nullptr); // the age healthcheck reads
    ::close(fd);
}

// Sleeps in short steps so a stop request is noticed quickly; false if stopped.
// Called about once a second from the loops below, also during long jobs:
// keeps the heartbeat file and the Redis lease fresh.
std::function<void()> g_keepAlive;

// Sleeps in short steps so a stop request is noticed quickly, keeping the
// worker's liveness signs fresh meanwhile (a long job is not a hung worker);
// false if stopped.
bool pause(int ms)
{
    QElapsedTimer t;
    t.start();
    QElapsedTimer sinceBeat;
    sinceBeat.start();
    while (t.elapsed() < ms) {
        if (g_stop)
            return false;
        if (sinceBeat.elapsed() >= 1000 && g_keepAlive) {
            g_keepAlive();
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
    const QByteArray processingKey = kProcessingKeyPrefix + workerId.toUtf8();
    const QByteArray leaseKey = kWorkerLeaseKeyPrefix + workerId.toUtf8();
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

    // The default heartbeat folder (the state folder) may not exist yet
    // when the database is not SQLite: made, once.
    if (config.workerHeartbeatDefault) {
        const QString dir = QFileInfo(config.workerHeartbeatFile).absolutePath();
        if (!QFileInfo::exists(dir) && QDir().mkpath(dir))
            QFile::setPermissions(dir, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    }

    QElapsedTimer sinceLease;
    auto renewLease = [&] {
        touchHeartbeat(config.workerHeartbeatFile);
        if (sinceLease.isValid() && sinceLease.elapsed() < config.workerLeaseSeconds * 1000 / 3)
            return;
        if (redis.setWithExpiry(leaseKey, "1", config.workerLeaseSeconds))
            sinceLease.start();
    };
    g_keepAlive = renewLease;

    // Hands back what a worker popped but never finished: its processing list
    // goes to the consumer end of the queue (so it runs next), and its rows to
    // "queued". For ourselves that is what a previous life with the same id
    // (same host name and pid, as after a container restart) left behind.
    auto reclaim = [&](const QString &owner) -> Outcome {
        const QByteArray list = kProcessingKeyPrefix + owner.toUtf8();
        for (;;) {
            auto moved = redis.lmoveToTail(list, kJobQueueKey);
            if (!moved)
                return Error { moved.error() };
            if (!moved->has_value())
                return success();
            const QString id = QString::fromLatin1(**moved);
            (void)db.requeueFrom(id, owner);
            Log::warning("deckhand.worker", QStringLiteral("job of a stopped worker requeued"),
                         context({ { QStringLiteral("job_id"), id },
                                   { QStringLiteral("previous_worker"), owner } }));
        }
    };
    QElapsedTimer sinceReap;
    auto reapDeadWorkers = [&] {
        if (sinceReap.isValid() && sinceReap.elapsed() < config.workerLeaseSeconds * 1000)
            return;
        sinceReap.start();
        auto workers = redis.smembers(kWorkersKey);
        if (!workers)
            return;
        for (const QByteArray &other : *workers) {
            if (other == workerId.toUtf8())
                continue;
            auto alive = redis.exists(kWorkerLeaseKeyPrefix + other);
            if (alive && !*alive && reclaim(QString::fromUtf8(other)))
                (void)redis.srem(kWorkersKey, other);
        }
    };

    bool registered = false;
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
    // Returns a popped id to the queue, then drops it from our list: in that
    // order, a crash in between duplicates it (harmless: claims are checked)
    // rather than losing it.
    auto giveBack = [&](const QString &id) {
        (void)redis.rpush(kJobQueueKey, id.toLatin1());
        (void)redis.lrem(processingKey, id.toLatin1());
    };

    qint64 processed = 0;
    while (!g_stop) {
        renewLease();
        if (!migrated) {
            auto applied = db.migrate();
            if (!applied) {
                problem(applied.error());
                continue;
            }
            migrated = true;
        }
        if (!registered) {
            if (auto reclaimed = reclaim(workerId); !reclaimed) {
                problem(reclaimed.error());
                continue;
            }
            auto added = redis.sadd(kWorkersKey, workerId.toUtf8());
            if (!added) {
                problem(added.error());
                continue;
            }
            registered = true;
        }
        reapDeadWorkers();
        auto popped = redis.blmove(kJobQueueKey, processingKey, 1);
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
            giveBack(id);
            problem(loaded.error());
            continue;
        }
        if (!loaded->has_value()) {
            Log::warning("deckhand.worker", QStringLiteral("queued id has no job row; skipped"),
                         context({ { QStringLiteral("job_id"), id } }));
            (void)redis.lrem(processingKey, id.toLatin1());
            continue;
        }
        Job job = **loaded;
        job.startedAt = QDateTime::currentDateTimeUtc();
        auto claimed = db.claim(job.id, workerId, job.startedAt);
        if (!claimed) {
            giveBack(id);
            problem(claimed.error());
            continue;
        }
        if (!*claimed) {
            // Already taken or finished (a duplicate push): never run a job twice.
            Log::info("deckhand.worker", QStringLiteral("job not queued any more; skipped"),
                      context({ { QStringLiteral("job_id"), job.id },
                                { QStringLiteral("status"), job.status } }));
            (void)redis.lrem(processingKey, id.toLatin1());
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
            giveBack(job.id);
            Log::info("deckhand.worker", QStringLiteral("job requeued at shutdown"),
                      context({ { QStringLiteral("job_id"), job.id } }));
            break;
        }
        job.finishedAt = QDateTime::currentDateTimeUtc();
        job.durationMs = double(timer.nsecsElapsed()) / 1e6;
        // The result is worth keeping: retry until it is stored (or we are
        // told to stop, when the job stays in our list for the next reclaim).
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
        (void)redis.lrem(processingKey, id.toLatin1());
        backoffMs = 250;
        ++processed;
        Log::info("deckhand.worker", QStringLiteral("job finished"),
                  context({ { QStringLiteral("job_id"), job.id },
                            { QStringLiteral("job_type"), job.type },
                            { QStringLiteral("status"), job.status },
                            { QStringLiteral("duration_ms"), *job.durationMs } }));
    }
    g_keepAlive = nullptr;
    // A clean exit needs no reaper: give up the lease and the registration.
    (void)redis.del(leaseKey);
    if (registered)
        (void)redis.srem(kWorkersKey, workerId.toUtf8());
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
