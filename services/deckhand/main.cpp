// deckhand: the headless backend that Pilothouse controls.
#include "buildinfo.h"
#include "commands.h"
#include "config.h"
#include "log.h"

#include <QCoreApplication>
#include <QJsonArray>
#include <cstdio>

namespace {

constexpr char kUsage[] =
    R"(Usage: deckhand [serve | worker | migrate | healthcheck [--live|--worker]]
       deckhand --version | --help

Commands:
  serve         HTTP API (default): /livez /readyz /health /healthz /version /metrics /v1/jobs
  worker        run jobs from the Redis queue
  migrate       apply database migrations and exit
  healthcheck   exit 0 if the local API is ready (--live: alive; --worker: worker heartbeat fresh)

Configuration is read from the environment only:
  DATABASE_URL             sqlite:///abs/path (default: ~/.local/share/deckhand/deckhand.db)
                           or postgresql://user[:password]@host:5432/db (else PGPASSWORD, ~/.pgpass)
  REDIS_URL                redis://[:password@]host:6379/0 (optional; without it jobs are off)
  HOST, PORT               where to listen (default 127.0.0.1:8000)
  LOG_LEVEL                debug | info | warning | error (default info)
  LOG_FORMAT               json | console (default json)
  SHUTDOWN_GRACE_SECONDS   time for in-flight requests after SIGTERM (default 10)
  CHECK_INTERVAL_SECONDS   dependency check interval (default 5)
  CHECK_TIMEOUT_SECONDS    hard timeout of one check (default 1)
  IDLE_TIMEOUT_SECONDS     close idle keep-alive connections after (default 15)
  REQUEST_TIMEOUT_SECONDS  a request must arrive whole within (default 10)
  MAX_CONNECTIONS          concurrent connections (default 1024)
  HTTP_THREADS             HTTP event loops (default: one per CPU core, at most 8)
  DECKHAND_IMAGE_TAG       reported image tag (default: the one baked in at build)
  WORKER_HEARTBEAT_FILE    worker liveness file (default /tmp/deckhand-worker.heartbeat)
  WORKER_LEASE_SECONDS     a worker silent this long is presumed dead and its job
                           is handed to another (default 30)
)";

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("deckhand"));
    QCoreApplication::setApplicationVersion(QString::fromLatin1(deckhand::build::kVersion));

    QStringList args = QCoreApplication::arguments().mid(1);
    if (args.contains(QLatin1String("--version"))) {
        std::printf("deckhand %s (git %s, built %s, image %s)\n", deckhand::build::kVersion,
                    deckhand::build::kGitSha, deckhand::build::kBuildTime,
                    deckhand::build::kImageTag);
        return 0;
    }
    if (args.contains(QLatin1String("--help")) || args.contains(QLatin1String("-h"))) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    const QString command = args.isEmpty() ? QStringLiteral("serve") : args.takeFirst();
    static const QStringList commands { QStringLiteral("serve"), QStringLiteral("worker"),
                                        QStringLiteral("migrate"), QStringLiteral("healthcheck") };
    if (!commands.contains(command)) {
        std::fprintf(stderr, "deckhand: unknown command \"%s\"\n\n%s", qPrintable(command), kUsage);
        return 64; // EX_USAGE
    }

    auto parsed = deckhand::Config::fromEnvironment(QProcessEnvironment::systemEnvironment());
    if (auto *problems = std::get_if<QStringList>(&parsed)) {
        // Logs stay JSON even when LOG_FORMAT itself is what is wrong.
        deckhand::Log::configure(deckhand::LogLevel::Info, deckhand::LogFormat::Json);
        deckhand::Log::error(
            "deckhand.config", QStringLiteral("invalid configuration"),
            { { QStringLiteral("problems"), QJsonArray::fromStringList(*problems) } });
        std::fprintf(stderr, "deckhand: invalid configuration, nothing started:\n");
        for (const QString &p : *problems)
            std::fprintf(stderr, "  - %s\n", qPrintable(p));
        std::fprintf(stderr, "Fix the variables above; `deckhand --help` lists them all.\n");
        return deckhand::kExitConfig;
    }
    const deckhand::Config &config = std::get<deckhand::Config>(parsed);
    if (command == QLatin1String("healthcheck"))
        return deckhand::runHealthcheck(config, args);

    deckhand::Log::configure(config.logLevel, config.logFormat);
    deckhand::Log::installQtMessageHandler();
    if (command == QLatin1String("worker"))
        return deckhand::runWorker(config);
    if (command == QLatin1String("migrate"))
        return deckhand::runMigrate(config);
    return deckhand::runServe(config);
}
