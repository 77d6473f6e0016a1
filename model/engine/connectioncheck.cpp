#include "engine/connectioncheck.h"

#include "core/ownerlock.h"
#include "drivers/command.h"
#include "drivers/composedriver.h"
#include "drivers/docker.h"

#include <QDir>
#include <QFile>
#include <QRegularExpression>
#include <QTcpSocket>
#include <QTemporaryDir>

namespace pilothouse {

namespace {

QString captured(const QStringList &lines, const QRegularExpression &re, int group = 1)
{
    QString found;
    for (const QString &l : lines) {
        if (const auto m = re.match(l); m.hasMatch())
            found = m.captured(group);
    }
    return found;
}

// The first lines of a failed child's stderr that a person would read.
QString whatItSaid(const CommandResult &r)
{
    if (r.end == CommandResult::End::FailedToStart)
        return r.startError;
    if (r.end == CommandResult::End::TimedOut)
        return QStringLiteral("no answer within %1 s").arg(r.elapsedMs / 1000);
    QStringList kept;
    const QString text = r.errorOutput.trimmed().isEmpty() ? r.output : r.errorOutput;
    for (const QString &l : text.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
        if (kept.size() < 3)
            kept << l.trimmed();
    }
    return kept.isEmpty() ? QStringLiteral("exit code %1").arg(r.exitCode)
                          : kept.join(QLatin1Char(' '));
}

} // namespace

ConnectionCheck::ConnectionCheck(Environment env, QObject *parent)
    : QObject(parent)
    , m_env(std::move(env))
{
    m_overSsh = m_env.dockerHost.startsWith(QLatin1String("ssh://"));
    for (Stage s :
         { Stage::Tcp, Stage::HostKey, Stage::Login, Stage::DockerSocket, Stage::Compose })
        m_steps.append(Step { s, Result::Waiting, {} });
    m_tcpDeadline.setSingleShot(true);
    m_fingerprintWait.setSingleShot(true);
    connect(&m_fingerprintWait, &QTimer::timeout, this, &ConnectionCheck::finish);
}

ConnectionCheck::~ConnectionCheck()
{
    if (m_ssh)
        m_ssh->close();
}

QString ConnectionCheck::nameOf(Stage stage)
{
    switch (stage) {
    case Stage::Tcp:
        return QStringLiteral("TCP");
    case Stage::HostKey:
        return QStringLiteral("host key");
    case Stage::Login:
        return QStringLiteral("login");
    case Stage::DockerSocket:
        return QStringLiteral("Docker socket");
    case Stage::Compose:
        return QStringLiteral("compose");
    }
    return {};
}

QString ConnectionCheck::nameOf(Result result)
{
    switch (result) {
    case Result::Waiting:
        return QStringLiteral("waiting");
    case Result::Running:
        return QStringLiteral("checking");
    case Result::Passed:
        return QStringLiteral("ok");
    case Result::Failed:
        return QStringLiteral("failed");
    case Result::Skipped:
        return QStringLiteral("skipped");
    }
    return {};
}

bool ConnectionCheck::passed() const
{
    if (!m_finished)
        return false;
    for (const Step &s : m_steps) {
        if (s.result != Result::Passed && s.result != Result::Skipped)
            return false;
    }
    return true;
}

void ConnectionCheck::set(Stage stage, Result result, const QString &detail)
{
    const int i = int(stage);
    m_steps[i].result = result;
    m_steps[i].detail = detail;
    emit stepChanged(i);
}

void ConnectionCheck::fail(Stage stage, const QString &detail)
{
    set(stage, Result::Failed, detail);
    for (int i = int(stage) + 1; i < m_steps.size(); ++i) {
        if (m_steps.at(i).result == Result::Waiting || m_steps.at(i).result == Result::Running)
            set(m_steps.at(i).stage, Result::Skipped,
                QStringLiteral("not checked: %1 failed").arg(nameOf(stage)));
    }
    finish();
}

void ConnectionCheck::finish()
{
    if (m_finished)
        return;
    m_fingerprintWait.stop();
    m_finished = true;
    if (m_ssh)
        m_ssh->close();
    emit finished(passed());
}

Command *ConnectionCheck::run(const QString &program, const QStringList &args, int timeoutMs)
{
    CommandSpec spec;
    spec.program = program;
    spec.arguments = args;
    spec.environment = childEnvironment();
    spec.timeoutMs = timeoutMs;
    spec.description = program + QLatin1Char(' ') + args.value(0);
    auto *cmd = new Command(spec, this);
    connect(cmd, &Command::finished, cmd, &QObject::deleteLater);
    return cmd;
}

QProcessEnvironment ConnectionCheck::childEnvironment() const
{
    QProcessEnvironment pe = dockerEnvironment(m_env);
    if (m_overSsh && !m_dockerHost.isEmpty())
        pe.insert(QStringLiteral("DOCKER_HOST"), m_dockerHost);
    else if (m_overSsh)
        pe.remove(QStringLiteral("DOCKER_HOST")); // ssh itself needs none
    return pe;
}

void ConnectionCheck::start()
{
    if (!m_overSsh) {
        const QString why = m_env.kind == EnvironmentKind::Native
            ? QStringLiteral("not used: a native environment runs no engine")
            : QStringLiteral("not used: the engine is not reached over SSH");
        for (Stage s : { Stage::Tcp, Stage::HostKey, Stage::Login })
            set(s, Result::Skipped, why);
        if (m_env.kind == EnvironmentKind::Native) {
            set(Stage::DockerSocket, Result::Skipped, why);
            set(Stage::Compose, Result::Skipped, why);
            finish();
            return;
        }
        checkDocker();
        return;
    }
    const auto target = SshTarget::of(m_env);
    if (!target) {
        fail(Stage::Tcp, target.error());
        return;
    }
    m_target = *target;
    resolve();
}

// ssh's own view of the target: the host name, port and user after
// ~/.ssh/config (a Host alias names a HostName elsewhere).
void ConnectionCheck::resolve()
{
    set(Stage::Tcp, Result::Running);
    QStringList args = sshTargetArguments(m_target);
    args << QStringLiteral("-G") << QStringLiteral("--") << m_target.host;
    Command *cmd = run(QStringLiteral("ssh"), args, 5000);
    connect(cmd, &Command::finished, this, [this](const CommandResult &r) {
        if (!r.ok()) {
            fail(Stage::Tcp,
                 r.end == CommandResult::End::FailedToStart
                     ? QStringLiteral("ssh could not be started (%1): install openssh-client")
                           .arg(r.startError)
                     : QStringLiteral("ssh could not read its configuration: %1")
                           .arg(whatItSaid(r)));
            return;
        }
        m_hostName = m_target.host;
        QString via;
        for (const QString &line : r.output.split(QLatin1Char('\n'))) {
            const QString key = line.section(QLatin1Char(' '), 0, 0);
            const QString value = line.section(QLatin1Char(' '), 1).trimmed();
            if (key == QLatin1String("hostname"))
                m_hostName = value;
            else if (key == QLatin1String("port"))
                m_port = value.toInt();
            else if (key == QLatin1String("user"))
                m_user = value;
            else if ((key == QLatin1String("proxyjump") || key == QLatin1String("proxycommand")) &&
                     value != QLatin1String("none"))
                via = value;
        }
        if (!via.isEmpty()) {
            // Reached through a jump host or a proxy: a direct TCP try says
            // nothing; ssh itself is the test.
            set(Stage::Tcp, Result::Skipped,
                QStringLiteral("reached through %1 (~/.ssh/config); ssh checks the way").arg(via));
            openSsh();
            return;
        }
        connectTcp();
    });
    cmd->start();
}

void ConnectionCheck::connectTcp()
{
    const QString where = m_hostName.contains(QLatin1Char(':'))
        ? QStringLiteral("[%1]:%2").arg(m_hostName).arg(m_port)
        : QStringLiteral("%1:%2").arg(m_hostName).arg(m_port);
    m_tcp = new QTcpSocket(this);
    auto banner = std::make_shared<QByteArray>();
    const auto done = [this] {
        m_tcpDeadline.stop();
        m_tcp->disconnect(this);
        m_tcp->abort();
        m_tcp->deleteLater();
        m_tcp = nullptr;
    };
    connect(m_tcp, &QTcpSocket::connected, this, [this, where] {
        // An SSH server speaks first; wait a little for its banner.
        m_tcpDeadline.start(3000);
        set(Stage::Tcp, Result::Running, QStringLiteral("%1 answers").arg(where));
    });
    connect(m_tcp, &QTcpSocket::readyRead, this, [this, where, banner, done] {
        *banner += m_tcp->readAll();
        const qsizetype eol = banner->indexOf('\n');
        if (eol < 0 && banner->size() < 256)
            return;
        const QString first = QString::fromLatin1(banner->left(eol < 0 ? 80 : eol)).trimmed();
        done();
        if (!first.startsWith(QLatin1String("SSH-"))) {
            fail(Stage::Tcp,
                 QStringLiteral("%1 answers, but not as an SSH server (it said \"%2\"): check the "
                                "port in docker.host (ssh://user@host:PORT)")
                     .arg(where, first.left(60)));
            return;
        }
        set(Stage::Tcp, Result::Passed, QStringLiteral("%1 answers (%2)").arg(where, first));
        openSsh();
    });
    connect(m_tcp, &QTcpSocket::errorOccurred, this,
            [this, where, done](QAbstractSocket::SocketError e) {
                const QString said = m_tcp->errorString();
                done();
                switch (e) {
                case QAbstractSocket::ConnectionRefusedError:
                    fail(Stage::Tcp,
                         QStringLiteral("%1 refused the connection: is sshd running there, and is "
                                        "the port right (docker.host ssh://user@host:PORT)?")
                             .arg(where));
                    return;
                case QAbstractSocket::HostNotFoundError:
                    fail(Stage::Tcp,
                         QStringLiteral("no such host name \"%1\": check docker.host (or its Host "
                                        "entry in ~/.ssh/config)")
                             .arg(m_hostName));
                    return;
                default:
                    fail(Stage::Tcp, QStringLiteral("%1: %2").arg(where, said));
                }
            });
    disconnect(&m_tcpDeadline, nullptr, this, nullptr);
    connect(&m_tcpDeadline, &QTimer::timeout, this, [this, where, done] {
        const bool connected = m_tcp && m_tcp->state() == QAbstractSocket::ConnectedState;
        done();
        fail(Stage::Tcp,
             connected ? QStringLiteral("%1 accepts connections but sent no SSH banner within 3 s: "
                                        "it is not an SSH server, or an overloaded one")
                             .arg(where)
                       : QStringLiteral("no answer from %1 within %2 s: check the host name, the "
                                        "port and any firewall between here and there")
                             .arg(where)
                             .arg(m_connectTimeoutMs / 1000));
    });
    m_tcpDeadline.start(m_connectTimeoutMs);
    m_tcp->connectToHost(m_hostName, quint16(m_port));
}

void ConnectionCheck::openSsh()
{
    const Expected<QString> runtime = privateRuntimeDir();
    if (!runtime) {
        fail(Stage::HostKey, runtime.error());
        return;
    }
    // A folder of its own: the panel's connection to the same host keeps its sockets.
    m_dir =
        std::make_unique<QTemporaryDir>(QDir(*runtime).filePath(QStringLiteral("check-XXXXXX")));
    if (!m_dir->isValid()) {
        fail(Stage::HostKey, QStringLiteral("cannot make a folder in %1").arg(*runtime));
        return;
    }
    set(Stage::HostKey, Result::Running);
    m_ssh = new SshConnection(m_target, m_dir->path(), this);
    m_ssh->setConnectTimeoutMs(m_connectTimeoutMs);
    if (!m_remoteSocket.isEmpty())
        m_ssh->setRemoteSocket(m_remoteSocket);
    m_ssh->setRetryDelayMs(3600000, 3600000); // one attempt: this is a check
    connect(m_ssh, &SshConnection::stateChanged, this, &ConnectionCheck::onSshState);
    m_ssh->open();
}

void ConnectionCheck::onSshState(SshConnection::State state)
{
    if (!m_ssh)
        return;
    const QStringList &out = m_ssh->output();
    static const QRegularExpression serverKey(
        QStringLiteral("Server host key: (\\S+) (SHA256:\\S+)"));
    static const QRegularExpression foundIn(QStringLiteral("Found key in (\\S+)"));
    static const QRegularExpression matches(
        QStringLiteral("is known and matches the (\\S+) host key"));
    static const QRegularExpression accepted(QStringLiteral("Server accepts key: (\\S+)"));
    static const QRegularExpression as(QStringLiteral("Authenticating to \\S+ as '([^']+)'"));
    const auto hostKeyPassed = [&] {
        QString detail = QStringLiteral("%1 %2")
                             .arg(captured(out, serverKey, 1), captured(out, serverKey, 2))
                             .trimmed();
        const QString file = captured(out, foundIn);
        detail += file.isEmpty() ? QStringLiteral(", trusted")
                                 : QStringLiteral(", trusted in %1").arg(file);
        set(Stage::HostKey, Result::Passed, detail);
    };
    const auto loginPassed = [&] {
        hostKeyPassed();
        const QString user = captured(out, as).isEmpty() ? m_user : captured(out, as);
        const QString key = captured(out, accepted);
        set(Stage::Login, Result::Passed,
            key.isEmpty() ? QStringLiteral("as %1").arg(user)
                          : QStringLiteral("as %1 with the key %2").arg(user, key));
    };

    if (m_steps.at(int(Stage::HostKey)).result == Result::Failed) {
        // The unknown key's fingerprint came (ssh-keyscan): the same failure, with it.
        if (state == SshConnection::State::Failed &&
            m_ssh->problem() == SshProblem::Kind::HostKeyUnknown) {
            m_steps[int(Stage::HostKey)].detail = m_ssh->reason();
            emit stepChanged(int(Stage::HostKey));
            finish();
        }
        return;
    }
    if (m_finished)
        return;
    if (state == SshConnection::State::Connected) {
        loginPassed();
        m_dockerHost = m_ssh->dockerHost();
        checkDocker();
        return;
    }
    if (state != SshConnection::State::Failed)
        return;
    // Lost after it connected: the stage under way fails, not the login.
    if (m_steps.at(int(Stage::Login)).result == Result::Passed) {
        for (const Step &s : m_steps) {
            if (s.result == Result::Running) {
                fail(s.stage, m_ssh->reason());
                return;
            }
        }
        return;
    }
    switch (m_ssh->problem()) {
    case SshProblem::Kind::HostKeyUnknown:
        set(Stage::HostKey, Result::Failed, m_ssh->reason());
        for (Stage s : { Stage::Login, Stage::DockerSocket, Stage::Compose })
            set(s, Result::Skipped, QStringLiteral("not checked: the host key is not trusted"));
        // ssh-keyscan runs for the fingerprint; finish when it is in, or soon.
        m_fingerprintWait.start(6000);
        return;
    case SshProblem::Kind::HostKeyChanged:
        fail(Stage::HostKey, m_ssh->reason());
        return;
    default:
        break;
    }
    // Logged in, then failed: the way to the engine's socket (a refused
    // channel, which the connection looked into).
    static const QRegularExpression authenticated(QStringLiteral("^Authenticated to (\\S+)"));
    if (!captured(out, authenticated).isEmpty()) {
        loginPassed();
        fail(Stage::DockerSocket, m_ssh->reason());
        return;
    }
    if (!captured(out, matches).isEmpty() || !captured(out, serverKey).isEmpty()) {
        hostKeyPassed();
        fail(Stage::Login, m_ssh->reason());
    } else {
        fail(Stage::HostKey, m_ssh->reason());
    }
}

void ConnectionCheck::checkDocker()
{
    set(Stage::DockerSocket, Result::Running);
    Command *cmd =
        run(QStringLiteral("docker"),
            { QStringLiteral("version"), QStringLiteral("--format"),
              QStringLiteral(
                  "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}}") },
            15000);
    connect(cmd, &Command::finished, this, [this](const CommandResult &r) {
        if (m_finished)
            return;
        const QStringList parts = r.output.trimmed().split(QLatin1Char(' '));
        if (r.ok() && parts.size() >= 3) {
            set(Stage::DockerSocket, Result::Passed,
                QStringLiteral("Docker Engine %1 (API %2, %3)%4")
                    .arg(parts.at(0), parts.at(1), parts.at(2),
                         m_overSsh ? QStringLiteral(" through the connection") : QString()));
            checkCompose();
            return;
        }
        fail(Stage::DockerSocket,
             m_overSsh ? QStringLiteral("the engine on %1 did not answer through the "
                                        "connection: %2")
                             .arg(m_target.host, whatItSaid(r))
                       : explainDockerFailure(r, QStringLiteral("docker version"), m_env));
    });
    cmd->start();
}

void ConnectionCheck::checkCompose()
{
    set(Stage::Compose, Result::Running);
    locateCompose(m_env, this, [this](Expected<ComposeCli> cli) {
        if (m_finished)
            return;
        if (!cli) {
            fail(Stage::Compose, cli.error());
            return;
        }
        QStringList versionArgs;
        if (cli->v2)
            versionArgs << QStringLiteral("compose");
        versionArgs << QStringLiteral("version") << QStringLiteral("--short");
        Command *version = run(cli->program, versionArgs, 15000);
        const ComposeCli found = *cli;
        connect(version, &Command::finished, this, [this, found](const CommandResult &v) {
            if (m_finished)
                return;
            const QString name = QStringLiteral("%1 %2").arg(
                found.v2 ? QStringLiteral("docker compose") : QStringLiteral("docker-compose"),
                v.ok() ? v.output.trimmed() : QStringLiteral("(version unknown)"));
            // What a start would do first: a variable the compose file needs
            // and nothing sets is said as the driver says it; a fresh
            // checkout's .env is made by the first Start, not by a check.
            const QString missing = prepareComposeEnv(m_env, {}, false, nullptr);
            if (!missing.isEmpty()) {
                const QDir folder(m_env.stackDirectory());
                if (m_env.envFile.isEmpty() &&
                    !QFile::exists(folder.filePath(QStringLiteral(".env"))) &&
                    QFile::exists(folder.filePath(QStringLiteral(".env.example")))) {
                    set(Stage::Compose, Result::Passed,
                        QStringLiteral("%1; %2 is not made yet: the first Start makes it from "
                                       ".env.example")
                            .arg(name, folder.filePath(QStringLiteral(".env"))));
                    finish();
                } else {
                    fail(Stage::Compose, QStringLiteral("%1: %2").arg(name, missing));
                }
                return;
            }
            CommandSpec spec =
                composeCommand(m_env, found, { QStringLiteral("ps"), QStringLiteral("-q") }, 30000,
                               QStringLiteral("compose ps"));
            spec.environment = childEnvironment();
            auto *ps = new Command(spec, this);
            connect(ps, &Command::finished, this, [this, ps, name](const CommandResult &r) {
                ps->deleteLater();
                if (m_finished)
                    return;
                if (!r.ok()) {
                    fail(Stage::Compose,
                         QStringLiteral("%1 could not read project \"%2\": %3")
                             .arg(name, m_env.project, whatItSaid(r)));
                    return;
                }
                const qsizetype n = r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts).size();
                set(Stage::Compose, Result::Passed,
                    QStringLiteral("%1 reads project \"%2\": %3 container%4")
                        .arg(name, m_env.project)
                        .arg(n)
                        .arg(n == 1 ? QString() : QStringLiteral("s")));
                finish();
            });
            ps->start();
        });
        version->start();
    });
}

} // namespace pilothouse
