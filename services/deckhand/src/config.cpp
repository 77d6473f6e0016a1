#include "config.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHostAddress>
#include <QStandardPaths>
#include <QUrl>
#include <QUrlQuery>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace deckhand {

namespace {

// A display form of a value the user gave, never showing a password. Works on
// the raw text, so it holds for URLs QUrl cannot parse (a password with '#'
// or '/' in it, a bad port): whatever stands between "user:" and the last '@'
// is the password as far as anyone reading a log is concerned.
QString shown(const QString &value)
{
    const qsizetype schemeEnd = value.indexOf(QLatin1String("://"));
    if (schemeEnd < 0)
        return value;
    const qsizetype authorityStart = schemeEnd + 3;
    const qsizetype at = value.lastIndexOf(QLatin1Char('@'));
    if (at < authorityStart)
        return value;
    const qsizetype colon = value.indexOf(QLatin1Char(':'), authorityStart);
    if (colon < 0 || colon > at)
        return value;
    return value.left(colon + 1) + QStringLiteral("***") + value.mid(at);
}

} // namespace

Expected<DatabaseUrl> DatabaseUrl::parse(const QString &text)
{
    const QUrl url(text, QUrl::StrictMode);
    const QString scheme = url.scheme().toLower();
    DatabaseUrl db;
    if (scheme == QLatin1String("sqlite")) {
        db.kind = Kind::Sqlite;
        // sqlite:///absolute/path has an empty host and an absolute path.
        if (!url.host().isEmpty())
            return Error { QStringLiteral(
                "sqlite URLs take an absolute path: sqlite:///var/lib/deckhand/deckhand.db") };
        db.path = url.path();
        // Every connection (each HTTP loop, the checks, the worker) would get
        // its own private in-memory database: refuse instead of half-working.
        if (db.path == QLatin1String("/:memory:"))
            return Error { QStringLiteral(
                "in-memory SQLite is not supported (each connection would see "
                "its own empty database); use a file path") };
        if (db.path.isEmpty() || db.path == QLatin1String("/") || !QDir::isAbsolutePath(db.path))
            return Error { QStringLiteral(
                "sqlite URLs take an absolute file path: sqlite:///var/lib/deckhand/deckhand.db") };
        return db;
    }
    if (scheme == QLatin1String("postgresql") || scheme == QLatin1String("postgres")) {
        if (!url.isValid())
            return Error { QStringLiteral(
                "not a valid URL; percent-encode special characters "
                "in the user name and password (# as %23, / as %2F, @ as %40)") };
        db.kind = Kind::Postgres;
        db.host = url.host();
        if (db.host.isEmpty())
            return Error { QStringLiteral("missing host: postgresql://user@host:5432/dbname") };
        db.port = url.port(5432);
        if (db.port < 1 || db.port > 65535)
            return Error { QStringLiteral("port must be 1-65535") };
        db.user = url.userName();
        db.password = url.password();
        db.database = url.path().mid(1);
        if (db.database.isEmpty() || db.database.contains(QLatin1Char('/')))
            return Error { QStringLiteral(
                "missing database name: postgresql://user@host:5432/dbname") };
        QStringList options;
        const auto items = QUrlQuery(url).queryItems(QUrl::FullyDecoded);
        for (const auto &[key, value] : items) {
            static const QStringList allowed = { QStringLiteral("sslmode"),
                                                 QStringLiteral("application_name"),
                                                 QStringLiteral("connect_timeout"),
                                                 QStringLiteral("sslrootcert"),
                                                 QStringLiteral("target_session_attrs") };
            if (!allowed.contains(key))
                return Error { QStringLiteral("unsupported query parameter \"%1\" (supported: %2)")
                                   .arg(key, allowed.join(QStringLiteral(", "))) };
            if (value.contains(QLatin1Char(';')) || value.contains(QLatin1Char(' ')))
                return Error {
                    QStringLiteral("query parameter \"%1\" may not contain spaces or ';'").arg(key)
                };
            options << key + QLatin1Char('=') + value;
        }
        db.options = options.join(QLatin1Char(';'));
        return db;
    }
    return Error { QStringLiteral(
        "expected sqlite:///absolute/path or postgresql://user@host:5432/dbname") };
}

QString DatabaseUrl::redacted() const
{
    if (kind == Kind::Sqlite)
        return QStringLiteral("sqlite://") + path;
    QUrl url;
    url.setScheme(QStringLiteral("postgresql"));
    url.setHost(host);
    url.setPort(port);
    url.setUserName(user);
    if (!password.isEmpty())
        url.setPassword(QStringLiteral("***"));
    url.setPath(QLatin1Char('/') + database);
    return url.toString();
}

Expected<RedisUrl> RedisUrl::parse(const QString &text)
{
    const QUrl url(text, QUrl::StrictMode);
    if (!url.isValid() || url.scheme().toLower() != QLatin1String("redis"))
        return Error { QStringLiteral("expected redis://[:password@]host:6379/0") };
    RedisUrl r;
    r.host = url.host();
    if (r.host.isEmpty())
        return Error { QStringLiteral("missing host: redis://host:6379/0") };
    r.port = url.port(6379);
    if (r.port < 1 || r.port > 65535)
        return Error { QStringLiteral("port must be 1-65535") };
    r.username = url.userName();
    r.password = url.password();
    const QString dbPart = url.path().mid(1);
    if (!dbPart.isEmpty()) {
        bool ok = false;
        r.db = dbPart.toInt(&ok);
        if (!ok || r.db < 0 || r.db > 15)
            return Error { QStringLiteral("database number must be 0-15: redis://host:6379/0") };
    }
    return r;
}

QString RedisUrl::redacted() const
{
    QUrl url;
    url.setScheme(QStringLiteral("redis"));
    url.setHost(host);
    url.setPort(port);
    url.setUserName(username);
    if (!password.isEmpty())
        url.setPassword(QStringLiteral("***"));
    url.setPath(QLatin1Char('/') + QString::number(db));
    return url.toString();
}

QString Config::defaultSqlitePath()
{
    const QString base = QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation);
    return QDir(base).filePath(QStringLiteral("deckhand/deckhand.db"));
}

namespace {

// A secret from <NAME>_FILE (Docker and Swarm secrets): read once, here. The
// file must be a regular file of at most 64 KiB that other users cannot read;
// one trailing newline is dropped. nullopt with *problem set when it is not.
std::optional<QString> secretFromFile(const char *name, const QString &path, QString *problem)
{
    const QString var = QLatin1String(name) + QStringLiteral("_FILE");
    // Links are followed (Kubernetes mounts secrets as links); what they end
    // at must be a regular file. O_NONBLOCK: a FIFO cannot hang the start.
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *problem = QStringLiteral("%1=%2: cannot be read (%3)")
                       .arg(var, path, QString::fromLocal8Bit(std::strerror(errno)));
        return std::nullopt;
    }
    struct stat st
    {
    };
    QString why;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        why = QStringLiteral("not a regular file");
    else if (st.st_mode & S_IROTH)
        why = QStringLiteral("other users can read it (mode %1); chmod 0400 it (or 0440 with "
                             "the service's group), or give the Swarm secret mode: 0400 and "
                             "the service's uid")
                  .arg(st.st_mode & 07777, 4, 8, QLatin1Char('0'));
    else if (st.st_size > 64 * 1024)
        why = QStringLiteral("larger than 64 KiB; it should hold one value");
    QByteArray bytes;
    if (why.isEmpty()) {
        bytes.resize(qsizetype(st.st_size));
        qsizetype got = 0;
        while (got < bytes.size()) {
            const ssize_t n = ::read(fd, bytes.data() + got, size_t(bytes.size() - got));
            if (n <= 0)
                break;
            got += n;
        }
        bytes.truncate(got);
    }
    ::close(fd);
    if (why.isEmpty()) {
        if (bytes.endsWith('\n'))
            bytes.chop(1);
        if (bytes.endsWith('\r'))
            bytes.chop(1);
        if (bytes.isEmpty())
            why = QStringLiteral("the file is empty");
        else if (bytes.contains('\n'))
            why = QStringLiteral("holds more than one line; it should hold one value");
    }
    if (!why.isEmpty()) {
        *problem = QStringLiteral("%1=%2: %3").arg(var, path, why);
        return std::nullopt;
    }
    return QString::fromUtf8(bytes);
}

} // namespace

std::variant<Config, QStringList> Config::fromEnvironment(const QProcessEnvironment &env)
{
    Config c;
    QStringList problems;
    auto problem = [&problems](const char *name, const QString &value, const QString &expected) {
        problems << QStringLiteral("%1=%2: %3").arg(QLatin1String(name), shown(value), expected);
    };
    // A password-bearing variable, or its <NAME>_FILE; empty when neither is set.
    auto secret = [&env, &problems](const char *name, const QString &fallback = {}) -> QString {
        const QString file = env.value(QLatin1String(name) + QStringLiteral("_FILE"));
        if (file.isEmpty())
            return env.value(QLatin1String(name), fallback);
        // Empty counts as unset: a stack clears the image's default that way.
        if (!env.value(QLatin1String(name)).isEmpty()) {
            problems << QStringLiteral("set %1 or %1_FILE, not both").arg(QLatin1String(name));
            return fallback;
        }
        QString why;
        const auto value = secretFromFile(name, file, &why);
        if (!value)
            problems << why;
        return value.value_or(fallback);
    };

    const QString dbText =
        secret("DATABASE_URL", QStringLiteral("sqlite://") + defaultSqlitePath());
    if (auto db = DatabaseUrl::parse(dbText))
        c.database = *db;
    else
        problem("DATABASE_URL", dbText, db.error());

    const QString redisText = secret("REDIS_URL");
    if (!redisText.isEmpty()) {
        if (auto redis = RedisUrl::parse(redisText))
            c.redis = *redis;
        else
            problem("REDIS_URL", redisText, redis.error());
    }

    const QString host = env.value(QStringLiteral("HOST"), c.host);
    if (QHostAddress(host).isNull() && host != QLatin1String("localhost"))
        problem("HOST", host,
                QStringLiteral(
                    "expected an IP address to listen on, such as 0.0.0.0, 127.0.0.1 or ::"));
    else
        c.host = host;

    auto integer = [&](const char *name, int fallback, int min, int max, int *out) {
        const QString text = env.value(QLatin1String(name));
        if (text.isEmpty()) {
            *out = fallback;
            return;
        }
        bool ok = false;
        const int v = text.trimmed().toInt(&ok);
        if (!ok || v < min || v > max)
            problem(name, text,
                    QStringLiteral("expected a whole number from %1 to %2").arg(min).arg(max));
        else
            *out = v;
    };
    // Durations are seconds, fractions allowed ("0.5"), kept as milliseconds.
    auto seconds = [&](const char *name, int fallbackMs, double minS, double maxS, int *out) {
        const QString text = env.value(QLatin1String(name));
        if (text.isEmpty()) {
            *out = fallbackMs;
            return;
        }
        bool ok = false;
        const double v = text.trimmed().toDouble(&ok);
        if (!ok || !std::isfinite(v) || v < minS || v > maxS)
            problem(name, text,
                    QStringLiteral("expected seconds from %1 to %2, e.g. 5 or 0.5")
                        .arg(minS)
                        .arg(maxS));
        else
            *out = int(std::lround(v * 1000));
    };

    int port = c.port;
    integer("PORT", c.port, 1, 65535, &port);
    c.port = quint16(port);

    const QString level =
        env.value(QStringLiteral("LOG_LEVEL"), QStringLiteral("info")).trimmed().toLower();
    if (level == QLatin1String("debug"))
        c.logLevel = LogLevel::Debug;
    else if (level == QLatin1String("info"))
        c.logLevel = LogLevel::Info;
    else if (level == QLatin1String("warning") || level == QLatin1String("warn"))
        c.logLevel = LogLevel::Warning;
    else if (level == QLatin1String("error"))
        c.logLevel = LogLevel::Error;
    else
        problem("LOG_LEVEL", level, QStringLiteral("expected debug, info, warning or error"));

    const QString format =
        env.value(QStringLiteral("LOG_FORMAT"), QStringLiteral("json")).trimmed().toLower();
    if (format == QLatin1String("json"))
        c.logFormat = LogFormat::Json;
    else if (format == QLatin1String("console"))
        c.logFormat = LogFormat::Console;
    else
        problem("LOG_FORMAT", format, QStringLiteral("expected json or console"));

    seconds("SHUTDOWN_GRACE_SECONDS", c.shutdownGraceMs, 0, 3600, &c.shutdownGraceMs);
    seconds("DRAIN_SECONDS", c.drainDelayMs, 0, 600, &c.drainDelayMs);
    seconds("CHECK_INTERVAL_SECONDS", c.checkIntervalMs, 0.05, 3600, &c.checkIntervalMs);
    seconds("CHECK_TIMEOUT_SECONDS", c.checkTimeoutMs, 0.05, 600, &c.checkTimeoutMs);
    seconds("IDLE_TIMEOUT_SECONDS", c.idleTimeoutMs, 0.1, 3600, &c.idleTimeoutMs);
    seconds("REQUEST_TIMEOUT_SECONDS", c.requestTimeoutMs, 0.1, 3600, &c.requestTimeoutMs);
    seconds("SEND_TIMEOUT_SECONDS", c.sendTimeoutMs, 0.1, 3600, &c.sendTimeoutMs);
    integer("MAX_CONNECTIONS", c.maxConnections, 1, 100000, &c.maxConnections);
    integer("HTTP_THREADS", 0, 1, 64, &c.httpThreads);
    integer("WORKER_LEASE_SECONDS", c.workerLeaseSeconds, 1, 3600, &c.workerLeaseSeconds);
    if (c.checkTimeoutMs > c.checkIntervalMs &&
        !env.value(QStringLiteral("CHECK_TIMEOUT_SECONDS")).isEmpty())
        problems << QStringLiteral(
                        "CHECK_TIMEOUT_SECONDS must not exceed CHECK_INTERVAL_SECONDS (%1 s)")
                        .arg(c.checkIntervalMs / 1000.0);

    c.imageTag = env.value(QStringLiteral("DECKHAND_IMAGE_TAG"));
    c.workerHeartbeatFile = env.value(QStringLiteral("WORKER_HEARTBEAT_FILE"));
    if (c.workerHeartbeatFile.isEmpty()) {
        // A private place: the session's runtime folder (0700, the user's
        // own), else the state folder next to the SQLite default.
        const QString runtime = env.value(QStringLiteral("XDG_RUNTIME_DIR"));
        const QString dir = !runtime.isEmpty() && QDir(runtime).exists()
            ? runtime
            : QFileInfo(defaultSqlitePath()).absolutePath();
        c.workerHeartbeatFile = QDir(dir).filePath(QStringLiteral("deckhand-worker.heartbeat"));
        c.workerHeartbeatDefault = true;
    }
    c.jobsToken = secret("JOBS_API_TOKEN").toUtf8();
    if (!c.jobsToken.isEmpty() && c.jobsToken.size() < 16)
        problems << QStringLiteral("JOBS_API_TOKEN: too short to guess at (%1 characters); use 16 "
                                   "or more, e.g. from "
                                   "openssl rand -hex 24")
                        .arg(c.jobsToken.size());
    integer("JOBS_MAX_QUEUED", c.maxQueuedJobs, 1, 10000000, &c.maxQueuedJobs);

    if (!problems.isEmpty())
        return problems;
    return c;
}

} // namespace deckhand
