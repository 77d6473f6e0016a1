#include "engine/sshconnection.h"

#include "core/ownerlock.h"
#include "drivers/command.h"
#include "env/environment.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLocalSocket>
#include <QLoggingCategory>
#include <QRegularExpression>
#include <QTcpServer>
#include <QUrl>

namespace pilothouse {

Q_LOGGING_CATEGORY(lcSsh, "pilothouse.ssh")

Expected<SshTarget> SshTarget::parse(const QString &url)
{
    const QUrl u(url, QUrl::StrictMode);
    if (!u.isValid() || u.scheme() != QLatin1String("ssh") || u.host().isEmpty())
        return Error {
            QStringLiteral("\"%1\" is not an ssh://[user@]host[:port] address").arg(url)
        };
    if (!u.password().isEmpty())
        return Error { QStringLiteral(
            "an ssh:// address carries no password: use a key (ssh-agent or ~/.ssh/config)") };
    if ((!u.path().isEmpty() && u.path() != QLatin1String("/")) || u.hasQuery())
        return Error { QStringLiteral("\"%1\": an ssh:// docker host has no path or query")
                           .arg(u.toString(QUrl::RemoveUserInfo)) };
    static const QRegularExpression safe(QStringLiteral("^[A-Za-z0-9_.:\\[\\]-]+$"));
    static const QRegularExpression safeUser(QStringLiteral("^[A-Za-z0-9_.][A-Za-z0-9_.-]*$"));
    SshTarget t;
    t.host = u.host();
    t.user = u.userName();
    t.port = u.port(0);
    // Neither may start an option of ssh's command line.
    if (!safe.match(t.host).hasMatch() || t.host.startsWith(QLatin1Char('-')))
        return Error { QStringLiteral("\"%1\" is not a host name").arg(t.host) };
    if (!t.user.isEmpty() && !safeUser.match(t.user).hasMatch())
        return Error { QStringLiteral("\"%1\" is not a user name").arg(t.user) };
    return t;
}

Expected<SshTarget> SshTarget::of(const Environment &env)
{
    auto t = parse(env.dockerHost);
    if (t)
        t->identityFile = env.sshIdentityFile;
    return t;
}

QString SshTarget::display() const
{
    QString out = user.isEmpty() ? host : user + QLatin1Char('@') + host;
    if (port > 0)
        out += QLatin1Char(':') + QString::number(port);
    return out;
}

QString SshTarget::knownHostsName() const
{
    return port > 0 && port != 22 ? QStringLiteral("[%1]:%2").arg(host).arg(port) : host;
}

QStringList sshForcedOptions()
{
    return {
        QStringLiteral("BatchMode=yes"), // never a prompt: no TTY to answer it
        QStringLiteral("StrictHostKeyChecking=yes"), // never accept an unknown key
        QStringLiteral("ControlMaster=yes"), // its own master, not the user's
        QStringLiteral("ControlPersist=no"), // and none that outlives this process
        QStringLiteral("StreamLocalBindUnlink=yes"), // replace a stale local socket
        QStringLiteral("StreamLocalBindMask=0177"), // the local socket is 0600
        QStringLiteral("ExitOnForwardFailure=yes"), // no connection without its forward
        QStringLiteral("ServerAliveInterval=10"),
        QStringLiteral("ServerAliveCountMax=3"),
        QStringLiteral("ClearAllForwardings=no"),
        QStringLiteral("PermitLocalCommand=no"),
        QStringLiteral("RequestTTY=no"),
    };
}

SshProblem explainSsh(const QStringList &lines, const SshTarget &t)
{
    const auto has = [&lines](const char *needle) {
        for (const QString &l : lines) {
            if (l.contains(QLatin1String(needle)))
                return true;
        }
        return false;
    };
    const QString where = t.display();
    if (has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key for") ||
        has("has changed and you have requested strict checking")) {
        return { SshProblem::Kind::HostKeyChanged,
                 QStringLiteral(
                     "The host key of %1 has CHANGED since you trusted it: this can be an attack, "
                     "or the server was reinstalled. Nothing was sent. If the new key is right, "
                     "remove the old one (ssh-keygen -R '%2') and trust the new one after "
                     "checking its fingerprint.")
                     .arg(where, t.knownHostsName()) };
    }
    if (has("host key is known for") || has("Host key verification failed")) {
        return { SshProblem::Kind::HostKeyUnknown,
                 QStringLiteral("The host key of %1 is not known (not in ~/.ssh/known_hosts), "
                                "and the panel never accepts one by itself. Check the "
                                "fingerprint with the server's administrator, then trust it: "
                                "ssh-keyscan %3%2 >> ~/.ssh/known_hosts")
                     .arg(where, t.host,
                          t.port > 0 ? QStringLiteral("-p %1 ").arg(t.port) : QString()) };
    }
    if (has("Permission denied (")) {
        // The keys ssh offered, from its verbose output.
        static const QRegularExpression offered(
            QStringLiteral("(?:Offering public key|Trying private key|Will attempt key): (\\S+)"));
        QStringList keys;
        for (const QString &l : lines) {
            const auto m = offered.match(l);
            if (m.hasMatch() && !keys.contains(m.captured(1)))
                keys << m.captured(1);
        }
        static const QRegularExpression authUser(
            QStringLiteral("Authenticating to \\S+ as '([^']+)'"));
        QString user = t.user;
        for (const QString &l : lines) {
            if (const auto m = authUser.match(l); m.hasMatch())
                user = m.captured(1);
        }
        return { SshProblem::Kind::AuthRefused,
                 QStringLiteral("%1 refused the login of user \"%2\" (keys tried: %3). Add your "
                                "public key to ~%2/.ssh/authorized_keys on %4, or name the right "
                                "key for this host in ~/.ssh/config (IdentityFile) or load it "
                                "into ssh-agent.")
                     .arg(where, user.isEmpty() ? QStringLiteral("?") : user,
                          keys.isEmpty() ? QStringLiteral("none") : keys.join(QStringLiteral(", ")),
                          t.host) };
    }
    if (has("Connection refused")) {
        return { SshProblem::Kind::ConnectionRefused,
                 QStringLiteral("%1 refused the connection: is sshd running there, and is the "
                                "port right (docker.host ssh://user@host:PORT)?")
                     .arg(where) };
    }
    if (has("timed out") || has("Connection timed out") || has("No route to host") ||
        has("Network is unreachable")) {
        return { SshProblem::Kind::TimedOut,
                 QStringLiteral("%1 did not answer: check the host name, the port and any "
                                "firewall between here and there.")
                     .arg(where) };
    }
    if (has("Could not resolve hostname") || has("Name or service not known")) {
        return { SshProblem::Kind::UnknownHost,
                 QStringLiteral("%1: no such host name; check docker.host (or its Host entry "
                                "in ~/.ssh/config).")
                     .arg(t.host) };
    }
    // The last line ssh itself meant for a person.
    for (qsizetype i = lines.size() - 1; i >= 0; --i) {
        const QString l = lines.at(i).trimmed();
        if (!l.isEmpty() && !l.startsWith(QLatin1String("debug")) &&
            !l.startsWith(QLatin1String("OpenSSH_")) &&
            !l.startsWith(QLatin1String("Transferred:")) &&
            !l.startsWith(QLatin1String("Authenticated to")))
            return { SshProblem::Kind::Other,
                     QStringLiteral("ssh to %1 failed: %2").arg(where, l) };
    }
    return { SshProblem::Kind::Other,
             QStringLiteral("ssh to %1 ended without saying why").arg(where) };
}

QString toString(SshConnection::State state)
{
    switch (state) {
    case SshConnection::State::Idle:
        return QStringLiteral("not connected");
    case SshConnection::State::Connecting:
        return QStringLiteral("connecting");
    case SshConnection::State::Connected:
        return QStringLiteral("connected");
    case SshConnection::State::Failed:
        return QStringLiteral("failed");
    }
    return {};
}

namespace {

QString socketStem(const SshTarget &t)
{
    const QByteArray key = t.display().toUtf8() + '\n' + t.identityFile.toUtf8();
    return QStringLiteral("ssh-") +
        QString::fromLatin1(
               QCryptographicHash::hash(key, QCryptographicHash::Sha256).toHex().left(12));
}

// "SHA256:…" of a key line of ssh-keyscan ("host type base64"), as ssh-keygen -l shows it.
QString fingerprintOf(const QString &line, QString *type)
{
    const QStringList parts = line.split(QLatin1Char(' '), Qt::SkipEmptyParts);
    if (parts.size() < 3)
        return {};
    const QByteArray blob = QByteArray::fromBase64(parts.at(2).toLatin1());
    if (blob.isEmpty())
        return {};
    *type = parts.at(1);
    QByteArray b64 = QCryptographicHash::hash(blob, QCryptographicHash::Sha256).toBase64();
    while (b64.endsWith('='))
        b64.chop(1);
    return QStringLiteral("SHA256:") + QString::fromLatin1(b64);
}

} // namespace

SshConnection::SshConnection(SshTarget target, QString runtimeDir, QObject *parent)
    : QObject(parent)
    , m_target(std::move(target))
{
    const QDir dir(runtimeDir);
    const QString stem = socketStem(m_target);
    m_localSocket = dir.filePath(stem + QStringLiteral(".sock"));
    m_controlSocket = dir.filePath(stem + QStringLiteral(".ctl"));
    m_poll.setInterval(25);
    connect(&m_poll, &QTimer::timeout, this, &SshConnection::checkForward);
    m_retry.setSingleShot(true);
    connect(&m_retry, &QTimer::timeout, this, &SshConnection::start);
}

SshConnection::~SshConnection()
{
    close();
}

void SshConnection::setRetryDelayMs(int firstMs, int maxMs)
{
    m_firstRetryMs = firstMs;
    m_maxRetryMs = maxMs;
    m_nextRetryMs = firstMs;
}

void SshConnection::open()
{
    m_wanted = true;
    if (m_master || m_state == State::Connecting)
        return;
    m_retry.stop();
    m_nextRetryMs = m_firstRetryMs;
    start();
}

void SshConnection::close()
{
    m_wanted = false;
    m_retry.stop();
    m_poll.stop();
    if (m_probe)
        m_probe->dismiss();
    if (m_look)
        m_look->dismiss();
    if (m_master) {
        // SIGTERM to the master's group; it removes its sockets as it leaves.
        m_master->dismiss();
        m_master = nullptr;
    }
    QFile::remove(m_localSocket);
    m_established.clear();
    if (m_state != State::Idle)
        setState(State::Idle);
}

void SshConnection::start()
{
    if (!m_wanted || m_master)
        return;
    // A socket left by a master that was killed would look connected.
    QFile::remove(m_localSocket);
    QFile::remove(m_controlSocket);
    m_stderr.clear();
    ++m_attemptId;
    if (m_look)
        m_look->dismiss();
    CommandSpec spec;
    spec.program = QStringLiteral("ssh");
    spec.description = QStringLiteral("ssh to %1").arg(m_target.display());
    spec.timeoutMs = 0; // it runs for as long as the connection is used
    spec.keepOutput = false;
    QStringList args { QStringLiteral("-v"), QStringLiteral("-N"), QStringLiteral("-T") };
    args << baseArguments();
    args << QStringLiteral("-L") << m_localSocket + QLatin1Char(':') + m_remoteSocket;
    args << QStringLiteral("--") << m_target.host;
    spec.arguments = args;
    auto *cmd = new Command(spec, this);
    m_master = cmd;
    connect(cmd, &Command::outputLine, this, [this](const QString &line, bool) { onLine(line); });
    connect(cmd, &Command::finished, this, [this, cmd](const CommandResult &r) {
        cmd->deleteLater();
        if (m_master != cmd)
            return;
        m_master = nullptr;
        if (r.end == CommandResult::End::FailedToStart) {
            m_stderr << QStringLiteral("ssh could not be started: %1 (install openssh-client)")
                            .arg(r.startError);
        }
        onExited();
    });
    m_attempt.start();
    setState(State::Connecting);
    qCInfo(lcSsh, "connecting to %s", qPrintable(m_target.display()));
    cmd->start();
    m_poll.start();
}

QStringList sshTargetArguments(const SshTarget &t)
{
    QStringList args;
    // PILOTHOUSE_SSH_CONFIG: an ssh_config to use instead of ~/.ssh/config
    // (and the system's), e.g. for a panel that must not read the user's.
    const QString config = qEnvironmentVariable("PILOTHOUSE_SSH_CONFIG");
    if (!config.isEmpty())
        args << QStringLiteral("-F") << config;
    if (t.port > 0)
        args << QStringLiteral("-p") << QString::number(t.port);
    if (!t.user.isEmpty())
        args << QStringLiteral("-l") << t.user;
    return args;
}

QStringList SshConnection::baseArguments() const
{
    QStringList args = sshTargetArguments(m_target);
    QStringList options = sshForcedOptions();
    options << QStringLiteral("ControlPath=") + m_controlSocket
            << QStringLiteral("ConnectTimeout=%1").arg(qMax(1, m_connectTimeoutMs / 1000));
    for (const QString &o : std::as_const(options))
        args << QStringLiteral("-o") << o;
    if (!m_target.identityFile.isEmpty())
        args << QStringLiteral("-i") << m_target.identityFile << QStringLiteral("-o")
             << QStringLiteral("IdentitiesOnly=yes");
    return args;
}

int SshConnection::forwardTcp(const QString &host, int port)
{
    for (const TcpForward &f : std::as_const(m_forwards)) {
        if (f.host == host && f.port == port)
            return f.localPort;
    }
    // A free port now; the same one is asked for again after a reconnect.
    QTcpServer probe;
    if (!probe.listen(QHostAddress::LocalHost))
        return 0;
    const TcpForward f { host, port, probe.serverPort() };
    probe.close();
    m_forwards << f;
    if (m_state == State::Connected)
        control(QStringLiteral("forward"), f);
    return f.localPort;
}

void SshConnection::cancelTcp(int localPort)
{
    for (qsizetype i = 0; i < m_forwards.size(); ++i) {
        if (m_forwards.at(i).localPort != localPort)
            continue;
        const TcpForward f = m_forwards.takeAt(i);
        if (m_state == State::Connected && m_established.contains(localPort))
            control(QStringLiteral("cancel"), f);
        m_established.remove(localPort);
        return;
    }
}

// A client of the master: its socket and the target, none of the master's
// options (a client given ControlMaster=yes would become a master itself).
QStringList SshConnection::clientArguments() const
{
    return sshTargetArguments(m_target)
        << QStringLiteral("-o") << QStringLiteral("ControlPath=") + m_controlSocket
        << QStringLiteral("-o") << QStringLiteral("BatchMode=yes");
}

void SshConnection::control(const QString &op, const TcpForward &f)
{
    CommandSpec spec;
    spec.program = QStringLiteral("ssh");
    spec.description = QStringLiteral("ssh -O %1").arg(op);
    spec.timeoutMs = 10000;
    const QString hostPart =
        f.host.contains(QLatin1Char(':')) ? QStringLiteral("[%1]").arg(f.host) : f.host;
    spec.arguments = clientArguments();
    spec.arguments
        << QStringLiteral("-O") << op << QStringLiteral("-L")
        << QStringLiteral("127.0.0.1:%1:%2:%3").arg(f.localPort).arg(hostPart).arg(f.port)
        << QStringLiteral("--") << m_target.host;
    auto *cmd = new Command(spec, this);
    const int local = f.localPort;
    const bool adding = op == QLatin1String("forward");
    connect(cmd, &Command::finished, this, [this, cmd, local, adding, f](const CommandResult &r) {
        cmd->deleteLater();
        if (!adding)
            return;
        const QString error = r.ok()
            ? QString()
            : QStringLiteral("the SSH connection could not forward 127.0.0.1:%1 to %2:%3: %4")
                  .arg(local)
                  .arg(f.host)
                  .arg(f.port)
                  .arg(r.errorOutput.trimmed().isEmpty() ? r.startError : r.errorOutput.trimmed());
        if (r.ok()) {
            m_established.insert(local);
            qCInfo(lcSsh, "forwarding 127.0.0.1:%d to %s:%d through %s", local, qPrintable(f.host),
                   f.port, qPrintable(m_target.display()));
        }
        if (!r.ok())
            qCWarning(lcSsh, "%s", qPrintable(error));
        emit forwardChanged(local, r.ok(), error);
    });
    cmd->start();
}

void SshConnection::onLine(const QString &line)
{
    if (m_stderr.size() > 400)
        m_stderr.remove(0, 200);
    m_stderr << line;
}

// Through the forward: the engine's /_ping. Any answer means the remote end
// is usable (a few ms); a channel the remote refuses closes with nothing
// (ssh says no more than "open failed"), and then the remote side is asked
// why. Something that accepts and stays silent is given the benefit of the
// doubt after a while.
void SshConnection::pingEngine()
{
    auto *socket = new QLocalSocket(this);
    auto *limit = new QTimer(socket);
    limit->setSingleShot(true);
    auto settled = std::make_shared<bool>(false);
    const int attempt = m_attemptId;
    const auto settle = [this, socket, settled, attempt](bool answered) {
        if (*settled)
            return;
        *settled = true;
        socket->disconnect(this);
        socket->abort();
        socket->deleteLater();
        if (attempt != m_attemptId || m_state != State::Connecting || !m_master)
            return;
        if (answered)
            connected();
        else
            diagnoseSocket();
    };
    connect(socket, &QLocalSocket::connected, this,
            [socket] { socket->write("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"); });
    connect(socket, &QLocalSocket::readyRead, this, [settle] { settle(true); });
    connect(socket, &QLocalSocket::disconnected, this, [settle] { settle(false); });
    connect(socket, &QLocalSocket::errorOccurred, this, [settle] { settle(false); });
    connect(limit, &QTimer::timeout, this, [settle] { settle(true); });
    limit->start(3000);
    socket->connectToServer(m_localSocket);
}

// Why the engine's socket did not answer, asked of the remote side through
// the master: no socket, a group the login lacks, or an engine that is down.
void SshConnection::diagnoseSocket()
{
    CommandSpec spec;
    spec.program = QStringLiteral("ssh");
    spec.description = QStringLiteral("a look at the Docker socket of %1").arg(m_target.display());
    spec.timeoutMs = 10000;
    spec.arguments = clientArguments();
    // The remote login shell reads this line; it is fixed text (the socket
    // path is a constant of this class), nothing of the user's goes in.
    spec.arguments << QStringLiteral("--") << m_target.host
                   << QStringLiteral("LC_ALL=C stat -L -c socket=%G:%a %1; echo user=$(id -un); "
                                     "echo groups=$(id -Gn)")
                          .arg(m_remoteSocket);
    auto *cmd = new Command(spec, this);
    m_look = cmd;
    const int attempt = m_attemptId;
    connect(cmd, &Command::finished, this, [this, cmd, attempt](const CommandResult &r) {
        cmd->deleteLater();
        if (m_look != cmd || attempt != m_attemptId || m_state != State::Connecting || !m_master)
            return;
        m_look = nullptr;
        QString group, mode, user = m_target.user;
        QStringList groups;
        bool answered = false;
        for (const QString &l : r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
            if (l.startsWith(QLatin1String("socket="))) {
                group = l.mid(7).section(QLatin1Char(':'), 0, 0);
                mode = l.mid(7).section(QLatin1Char(':'), 1);
            } else if (l.startsWith(QLatin1String("user="))) {
                user = l.mid(5).trimmed();
                answered = true;
            } else if (l.startsWith(QLatin1String("groups="))) {
                groups = l.mid(7).split(QLatin1Char(' '), Qt::SkipEmptyParts);
            }
        }
        const QString who = user.isEmpty() ? QStringLiteral("your login") : user;
        // It runs only after the engine did not answer: every outcome fails
        // the attempt, with the most specific reason found.
        SshProblem problem;
        if (!answered) { // no shell for the look (a forced command, a restricted shell)
            problem = { SshProblem::Kind::Other,
                        QStringLiteral("%1 refused the channel to its Docker socket %2, and a "
                                       "look at why failed: %3")
                            .arg(m_target.display(), m_remoteSocket,
                                 r.errorOutput.trimmed().left(200)) };
        } else if (group.isEmpty()) {
            problem = { SshProblem::Kind::DockerSocketMissing,
                        QStringLiteral("On %1 there is no Docker socket at %2: is Docker "
                                       "installed and running there (sudo systemctl start "
                                       "docker)?")
                            .arg(m_target.host, m_remoteSocket) };
        } else if (user != QLatin1String("root") && !groups.contains(group) &&
                   !mode.endsWith(QLatin1Char('6')) && !mode.endsWith(QLatin1Char('7'))) {
            problem = { SshProblem::Kind::DockerSocketDenied,
                        QStringLiteral("On %1, user \"%2\" may not use the Docker socket %3 (it "
                                       "belongs to group \"%4\", and %2 is not in it). Add them to "
                                       "it there (sudo usermod -aG %4 %2), then connect again.")
                            .arg(m_target.host, who, m_remoteSocket, group) };
        } else {
            problem = { SshProblem::Kind::DockerSocketMissing,
                        QStringLiteral("On %1 the Docker socket %2 is there (group %3, mode %4) "
                                       "but the forward to it gets no answer: is the engine "
                                       "running (sudo systemctl start docker), and does sshd "
                                       "there allow socket forwarding (AllowStreamLocalForwarding "
                                       "yes, no DisableForwarding)?")
                            .arg(m_target.host, m_remoteSocket, group, mode) };
        }
        // Not usable: the master goes (a retry looks again, with backoff).
        if (m_master) {
            m_master->dismiss();
            m_master = nullptr;
        }
        QFile::remove(m_localSocket);
        fail(problem);
    });
    cmd->start();
}

void SshConnection::checkForward()
{
    if (m_state != State::Connecting) {
        m_poll.stop();
        return;
    }
    if (QFileInfo(m_localSocket).exists()) {
        m_poll.stop();
        pingEngine();
        return;
    }
    // ssh's own ConnectTimeout covers the TCP connect; this covers a server
    // that accepts and then says nothing.
    if (m_attempt.elapsed() > 2 * qint64(m_connectTimeoutMs) + 2000 && m_master) {
        m_stderr << QStringLiteral("connection timed out during the handshake");
        m_master->dismiss();
        m_master = nullptr;
        onExited();
    }
}

void SshConnection::connected()
{
    m_nextRetryMs = m_firstRetryMs;
    qCInfo(lcSsh, "connected to %s in %lld ms", qPrintable(m_target.display()),
           m_attempt.elapsed());
    setState(State::Connected);
    for (const TcpForward &f : std::as_const(m_forwards))
        control(QStringLiteral("forward"), f);
}

void SshConnection::onExited()
{
    m_poll.stop();
    m_established.clear();
    QFile::remove(m_localSocket);
    if (!m_wanted) {
        setState(State::Idle);
        return;
    }
    SshProblem p = explainSsh(m_stderr, m_target);
    if (m_state == State::Connected && p.kind == SshProblem::Kind::Other)
        p.message = p.message.endsWith(QLatin1String("without saying why"))
            ? QStringLiteral("The SSH connection to %1 was lost; reconnecting")
                  .arg(m_target.display())
            : QStringLiteral("The SSH connection to %1 was lost (%2); reconnecting")
                  .arg(m_target.display(), p.message);
    if (p.kind == SshProblem::Kind::HostKeyUnknown)
        describeHostKey(p);
    else
        fail(p);
}

void SshConnection::describeHostKey(SshProblem problem)
{
    // The fingerprint the server offers, so the user can compare it.
    fail(problem);
    CommandSpec spec;
    spec.program = QStringLiteral("ssh-keyscan");
    spec.description = QStringLiteral("ssh-keyscan");
    spec.timeoutMs = 5000;
    spec.arguments = { QStringLiteral("-T"), QStringLiteral("4") };
    if (m_target.port > 0)
        spec.arguments << QStringLiteral("-p") << QString::number(m_target.port);
    spec.arguments << QStringLiteral("--") << m_target.host;
    auto *cmd = new Command(spec, this);
    m_probe = cmd;
    connect(cmd, &Command::finished, this, [this, cmd, problem](const CommandResult &r) {
        cmd->deleteLater();
        if (m_probe != cmd || m_state != State::Failed)
            return;
        QStringList prints;
        for (const QString &line : r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
            if (line.startsWith(QLatin1Char('#')))
                continue;
            QString type;
            const QString fp = fingerprintOf(line, &type);
            if (!fp.isEmpty())
                prints << QStringLiteral("%1 %2").arg(type, fp);
        }
        if (prints.isEmpty())
            return;
        // The fingerprint before the command that trusts it.
        m_reason = QString(problem.message)
                       .replace(QStringLiteral("Check the fingerprint"),
                                QStringLiteral("It offers %1; check that fingerprint")
                                    .arg(prints.join(QStringLiteral(", "))));
        emit stateChanged(m_state);
    });
    cmd->start();
}

void SshConnection::fail(SshProblem problem)
{
    m_problem = problem.kind;
    qCWarning(lcSsh, "%s", qPrintable(problem.message));
    setState(State::Failed, problem.message);
    if (m_wanted) {
        m_retry.start(m_nextRetryMs);
        m_nextRetryMs = qMin(m_nextRetryMs * 2, m_maxRetryMs);
    }
}

void SshConnection::setState(State s, const QString &reason)
{
    if (s == State::Connected)
        m_problem = SshProblem::Kind::None;
    if (s == m_state && reason == m_reason)
        return;
    m_state = s;
    m_reason = reason;
    emit stateChanged(s);
}

QString sshDockerHost(const Environment &env)
{
    if (const SshConnection *c = SshConnections::instance().find(env))
        return c->dockerHost();
    const auto target = SshTarget::of(env);
    const Expected<QString> dir = privateRuntimeDir();
    if (!target || !dir)
        return QStringLiteral("unix:///nonexistent/pilothouse-no-ssh-connection.sock");
    return QStringLiteral("unix://") +
        QDir(*dir).filePath(socketStem(*target) + QStringLiteral(".sock"));
}

// ---- SshConnections

SshConnections &SshConnections::instance()
{
    static SshConnections *connections = new SshConnections;
    return *connections;
}

SshConnection *SshConnections::acquire(const Environment &env, QString *error)
{
    if (!env.dockerHost.startsWith(QLatin1String("ssh://")))
        return nullptr;
    const auto target = SshTarget::of(env);
    if (!target) {
        if (error)
            *error = target.error();
        return nullptr;
    }
    const QString key = socketStem(*target);
    auto it = m_entries.find(key);
    if (it != m_entries.end()) {
        ++it->users;
        it->connection->open();
        return it->connection;
    }
    const Expected<QString> dir = privateRuntimeDir();
    if (!dir) {
        if (error)
            *error = dir.error();
        return nullptr;
    }
    auto *c = new SshConnection(*target, *dir, this);
    m_entries.insert(key, Entry { c, 1 });
    c->open();
    return c;
}

void SshConnections::release(SshConnection *connection)
{
    for (auto it = m_entries.begin(); it != m_entries.end(); ++it) {
        if (it->connection != connection)
            continue;
        if (--it->users <= 0) {
            it->connection->close();
            it->connection->deleteLater();
            m_entries.erase(it);
        }
        return;
    }
}

SshConnection *SshConnections::find(const Environment &env) const
{
    const auto target = SshTarget::of(env);
    if (!target)
        return nullptr;
    const auto it = m_entries.constFind(socketStem(*target));
    return it == m_entries.cend() ? nullptr : it->connection;
}

} // namespace pilothouse
