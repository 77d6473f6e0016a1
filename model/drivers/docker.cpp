#include "drivers/docker.h"

#include "engine/sshconnection.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QPointer>
#include <QRegularExpression>
#include <QSet>
#include <unistd.h>

namespace pilothouse {

namespace {

// The inodes of the sockets listening on a TCP port, from /proc/net/tcp{,6}.
QSet<QByteArray> listeningInodes(int port)
{
    QSet<QByteArray> inodes;
    const QByteArray hexPort = QByteArray::number(port, 16).toUpper().rightJustified(4, '0');
    for (const char *table : { "/proc/net/tcp", "/proc/net/tcp6" }) {
        QFile f { QString::fromLatin1(table) };
        if (!f.open(QIODevice::ReadOnly))
            continue;
        f.readLine(); // the header
        while (!f.atEnd()) {
            const QList<QByteArray> fields = f.readLine().simplified().split(' ');
            // sl local rem st tx:rx tr:when retr uid timeout inode
            if (fields.size() < 10 || fields.at(3) != "0A")
                continue;
            if (fields.at(1).endsWith(QByteArray(QByteArray(":") + hexPort)))
                inodes.insert(fields.at(9));
        }
    }
    return inodes;
}

} // namespace

QString localPortOwner(int port)
{
    if (port <= 0 || port > 65535)
        return {};
    const QSet<QByteArray> inodes = listeningInodes(port);
    if (inodes.isEmpty())
        return {};
    const QDir proc(QStringLiteral("/proc"));
    for (const QString &pid : proc.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        if (!pid.at(0).isDigit())
            continue;
        const QDir fds(proc.filePath(pid + QStringLiteral("/fd")));
        for (const QString &fd : fds.entryList(QDir::System | QDir::NoDotAndDotDot)) {
            // readlink(2) itself: QFile::symLinkTarget makes "socket:[n]" a path.
            char buffer[64] = {};
            const ssize_t n = ::readlink(QFile::encodeName(fds.filePath(fd)).constData(), buffer,
                                         sizeof buffer - 1);
            const QString target = QString::fromLatin1(buffer, n > 0 ? n : 0);
            // "socket:[12345]"
            if (!target.startsWith(QLatin1String("socket:[")))
                continue;
            if (!inodes.contains(target.mid(8).chopped(1).toLatin1()))
                continue;
            QFile comm(proc.filePath(pid + QStringLiteral("/comm")));
            const QString name = comm.open(QIODevice::ReadOnly)
                ? QString::fromLocal8Bit(comm.readAll()).trimmed()
                : QStringLiteral("a process");
            if (name == QLatin1String("docker-proxy"))
                return QStringLiteral("a container of the engine (docker-proxy, pid %1; docker ps "
                                      "--filter publish=%2 names it)")
                    .arg(pid)
                    .arg(port);
            return QStringLiteral("%1 (pid %2)").arg(name, pid);
        }
    }
    return {};
}

QProcessEnvironment dockerEnvironment(const Environment &env)
{
    QProcessEnvironment pe = QProcessEnvironment::systemEnvironment();
    // Tool output is parsed: keep it in one language and free of colour codes.
    pe.insert(QStringLiteral("LANG"), QStringLiteral("C"));
    pe.insert(QStringLiteral("LC_ALL"), QStringLiteral("C"));
    pe.insert(QStringLiteral("NO_COLOR"), QStringLiteral("1"));
    pe.insert(QStringLiteral("COMPOSE_INTERACTIVE_NO_CLI"), QStringLiteral("1"));
    if (env.dockerHost.startsWith(QLatin1String("ssh://"))) {
        // Through the panel's own SSH connection, never ssh:// for a child:
        // its forwarded socket (the connection made on the session's first use).
        pe.insert(QStringLiteral("DOCKER_HOST"), sshDockerHost(env));
        pe.remove(QStringLiteral("DOCKER_CONTEXT"));
    } else if (!env.dockerHost.isEmpty()) {
        pe.insert(QStringLiteral("DOCKER_HOST"), env.dockerHost);
        pe.remove(QStringLiteral("DOCKER_CONTEXT"));
    }
    return pe;
}

static QStringList contextArgs(const Environment &env)
{
    if (env.dockerContext.isEmpty())
        return {};
    return { QStringLiteral("--context"), env.dockerContext };
}

CommandSpec dockerCommand(const Environment &env, const QStringList &args, int timeoutMs,
                          const QString &description)
{
    CommandSpec spec;
    spec.program = QStringLiteral("docker");
    spec.arguments = contextArgs(env) + args;
    spec.environment = dockerEnvironment(env);
    spec.timeoutMs = timeoutMs;
    spec.description = description;
    return spec;
}

static QString engineName(const Environment &env)
{
    if (!env.dockerHost.isEmpty())
        return env.dockerHost;
    if (!env.dockerContext.isEmpty())
        return QStringLiteral("context \"%1\"").arg(env.dockerContext);
    return QStringLiteral("this machine");
}

static QString lastMeaningfulLine(const QString &text)
{
    const QStringList lines = text.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    for (auto it = lines.crbegin(); it != lines.crend(); ++it) {
        const QString l = it->trimmed();
        if (!l.isEmpty())
            return l;
    }
    return {};
}

namespace {
// Where the stack's compose variables live, as a path a person can open.
QString stackEnvFile(const Environment &env)
{
    if (!env.envFile.isEmpty())
        return env.envFile;
    const QString folder = env.stackDirectory();
    return folder.isEmpty() ? QStringLiteral("the stack's .env")
                            : QDir(folder).filePath(QStringLiteral(".env"));
}
} // namespace

QString explainDockerFailure(const CommandResult &result, const QString &what,
                             const Environment &env)
{
    using End = CommandResult::End;
    switch (result.end) {
    case End::FailedToStart:
        return QStringLiteral("%1: %2. Install Docker (Debian: apt-get install docker.io "
                              "docker-compose) or put it on PATH.")
            .arg(what, result.startError);
    case End::TimedOut:
        return QStringLiteral("%1 did not finish within %2 s and was stopped. Is the engine at "
                              "%3 reachable and responsive?")
            .arg(what)
            .arg(result.elapsedMs / 1000)
            .arg(engineName(env));
    case End::Cancelled:
        return QStringLiteral("%1 was cancelled").arg(what);
    case End::Crashed:
        return QStringLiteral("%1 crashed").arg(what);
    case End::Exited:
        break;
    }
    const QString err = result.errorOutput + QLatin1Char('\n') + result.output;
    const auto has = [&err](const char *needle) {
        return err.contains(QLatin1String(needle), Qt::CaseInsensitive);
    };
    // A pull (compose's of a base image, a build's FROM): which image, why,
    // and what to do. Before the daemon test: "connection refused" to a
    // registry is not the engine being down.
    static const QRegularExpression pulling(
        QStringLiteral("(?:pull access denied for ([^ ,]+)|manifest for ([^ ]+) not found|"
                       "Pulling [^ ]+ \\(([^)]+)\\)|Step 1/\\d+ : FROM ([^ ]+)|"
                       "failed to resolve source metadata for ([^ :]+:[^ :]+)|"
                       "(?:image|reference) \"?([^ \"]+)\"?: not found)"));
    QString pulledImage;
    for (auto it = pulling.globalMatch(err); it.hasNext();) {
        const auto m = it.next();
        for (int g = 1; g <= m.lastCapturedIndex(); ++g) {
            if (!m.captured(g).isEmpty())
                pulledImage = m.captured(g);
        }
    }
    const QString image = pulledImage.isEmpty() ? QStringLiteral("an image") : pulledImage;
    const bool registryUnreachable =
        (has("dial tcp") || has("TLS handshake timeout") || has("net/http: request canceled")) &&
        (has("/v2/") || has("registry") || has("docker.io") || has("ghcr.io"));
    if (registryUnreachable) {
        return QStringLiteral("%1: %2 could not be pulled: its registry is unreachable (%3). "
                              "Check the network or proxy, or load the image on the engine "
                              "another way (docker load) and try again.")
            .arg(what, image, lastMeaningfulLine(result.errorOutput));
    }
    if (has("pull access denied") || has("unauthorized") || has("denied: ")) {
        return QStringLiteral("%1: %2 could not be pulled: it does not exist or needs a login. "
                              "Check its name, or run docker login for its registry, and try "
                              "again.")
            .arg(what, image);
    }
    if (has("manifest unknown") || has("not found: manifest") ||
        (has("manifest for") && has("not found"))) {
        return QStringLiteral("%1: %2 does not exist in its registry. Check the image name and "
                              "tag (%3 sets them) and try again.")
            .arg(what, image, stackEnvFile(env));
    }
    if (has("permission denied while trying to connect") ||
        (has("PermissionError") && has("Permission denied"))) {
        return QStringLiteral("%1: permission denied on the Docker socket. Add your user to the "
                              "docker group (usermod -aG docker $USER) and log in again.")
            .arg(what);
    }
    if (env.dockerHost.startsWith(QLatin1String("ssh://"))) {
        // The connection's own words first: its failure, or a refused socket.
        const SshConnection *c = SshConnections::instance().find(env);
        if (!c)
            return QStringLiteral("%1: there is no SSH connection to %2").arg(what, env.dockerHost);
        if (c->state() == SshConnection::State::Failed)
            return QStringLiteral("%1: the SSH connection to %2 failed: %3")
                .arg(what, c->target().display(), c->reason());
        if (c->state() != SshConnection::State::Connected)
            return QStringLiteral("%1: the SSH connection to %2 is %3%4")
                .arg(what, c->target().display(), toString(c->state()),
                     c->reason().isEmpty() ? QString() : QStringLiteral(": ") + c->reason());
    }
    if (has("Cannot connect to the Docker daemon") || has("Is the docker daemon running") ||
        has("Couldn't connect to Docker daemon") || has("connect: connection refused") ||
        has("error during connect") ||
        // compose v1 (python) on a socket nobody listens at
        has("Error while fetching server API version")) {
        return QStringLiteral("%1: the Docker daemon at %2 is not running or not reachable. "
                              "Start it (systemctl start docker) or check the environment's "
                              "docker host/context.")
            .arg(what, engineName(env));
    }
    static const QRegularExpression port(
        QStringLiteral("(?:Bind for [^ ]*?:(\\d+) failed: port is already allocated|"
                       "listen tcp[46]? [^ ]*?:(\\d+): bind: address already in use)"));
    const auto pm = port.match(err);
    if (pm.hasMatch()) {
        const QString p = pm.captured(1).isEmpty() ? pm.captured(2) : pm.captured(1);
        const QString owner = env.isRemote() ? QString() : localPortOwner(p.toInt());
        return QStringLiteral("%1: port %2 is already in use%3. Stop that program, or give "
                              "the stack another port (API_PORT in %4), and try again.")
            .arg(what, p,
                 owner.isEmpty() ? QStringLiteral(" by another program")
                                 : QStringLiteral(" by %1").arg(owner),
                 stackEnvFile(env));
    }
    if (has("is invalid because") || has("yaml:") || has("ScannerError") || has("ParserError") ||
        has("validating ") || has("Additional property") || has("Unsupported config option") ||
        has("has neither an image nor a build context") || has("no configuration file provided")) {
        return QStringLiteral("%1: the compose file is invalid: %2")
            .arg(what, lastMeaningfulLine(result.errorOutput));
    }
    if (has("No such image") || has("manifest unknown") || has("not found: manifest") ||
        has("pull access denied")) {
        return QStringLiteral("%1: the image is not available: %2")
            .arg(what, lastMeaningfulLine(result.errorOutput));
    }
    const QString line = lastMeaningfulLine(result.errorOutput);
    return QStringLiteral("%1 failed (exit %2)%3")
        .arg(what)
        .arg(result.exitCode)
        .arg(line.isEmpty() ? QString() : QStringLiteral(": ") + line);
}

namespace {
struct ComposeCache
{
    QString path; // PATH it was found with
    std::optional<ComposeCli> cli;
};
ComposeCache &composeCache()
{
    static ComposeCache cache;
    return cache;
}
} // namespace

void resetComposeCache()
{
    composeCache() = {};
}

void locateCompose(const Environment &env, QObject *context,
                   std::function<void(Expected<ComposeCli>)> done)
{
    const QProcessEnvironment pe = dockerEnvironment(env);
    ComposeCache &cache = composeCache();
    if (cache.cli && cache.path == pe.value(QStringLiteral("PATH"))) {
        const ComposeCli cli = *cache.cli;
        QMetaObject::invokeMethod(
            context, [done, cli] { done(cli); }, Qt::QueuedConnection);
        return;
    }
    const QString pathValue = pe.value(QStringLiteral("PATH"));
    const auto fallback = [done, pe, pathValue] {
        if (!findProgram(QStringLiteral("docker-compose"), pe).isEmpty()) {
            ComposeCli cli { QStringLiteral("docker-compose"), false };
            composeCache() = { pathValue, cli };
            done(cli);
            return;
        }
        done(Error {
            QStringLiteral("Docker Compose is not installed: neither `docker compose` (v2) nor "
                           "`docker-compose` (v1) was found. Install one (Debian: apt-get install "
                           "docker-compose).") });
    };
    if (findProgram(QStringLiteral("docker"), pe).isEmpty()) {
        QMetaObject::invokeMethod(context, fallback, Qt::QueuedConnection);
        return;
    }
    CommandSpec spec;
    spec.program = QStringLiteral("docker");
    spec.arguments = { QStringLiteral("compose"), QStringLiteral("version") };
    spec.environment = pe;
    spec.timeoutMs = 15000;
    auto *cmd = new Command(spec, context);
    QObject::connect(
        cmd, &Command::finished, context, [cmd, done, fallback, pathValue](const CommandResult &r) {
            cmd->deleteLater();
            if (r.ok() && r.output.contains(QLatin1String("version"), Qt::CaseInsensitive)) {
                ComposeCli cli { QStringLiteral("docker"), true };
                composeCache() = { pathValue, cli };
                done(cli);
                return;
            }
            fallback();
        });
    cmd->start();
}

CommandSpec composeCommand(const Environment &env, const ComposeCli &cli, const QStringList &args,
                           int timeoutMs, const QString &description,
                           const QMap<QString, QString> &variables)
{
    QStringList a;
    if (cli.v2)
        a << contextArgs(env) << QStringLiteral("compose");
    else if (!env.dockerContext.isEmpty())
        a << QStringLiteral("--context") << env.dockerContext;
    a << QStringLiteral("--project-name") << env.project;
    for (const QString &f : env.composeFiles)
        a << QStringLiteral("--file") << f;
    if (!env.envFile.isEmpty())
        a << QStringLiteral("--env-file") << env.envFile;
    if (!cli.v2)
        a << QStringLiteral("--ansi") << QStringLiteral("never");
    a << args;
    CommandSpec spec;
    spec.program = cli.program;
    spec.arguments = a;
    spec.environment = dockerEnvironment(env);
    for (auto it = variables.cbegin(); it != variables.cend(); ++it)
        spec.environment.insert(it.key(), it.value());
    spec.timeoutMs = timeoutMs;
    spec.description = description;
    if (!env.composeFiles.isEmpty())
        spec.workingDirectory = QFileInfo(env.composeFiles.first()).absolutePath();
    return spec;
}

} // namespace pilothouse
