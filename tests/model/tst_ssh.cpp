// The panel's SSH connection against Debian's real sshd on a loopback port
// (its own host key, an authorized key generated here): it connects and
// forwards a socket (mode 0600) to the remote one, closes without leaving
// ssh behind, comes back by itself after its master is killed, and says in
// words what went wrong for a wrong port, an unknown host key (with the
// fingerprint the server offers), a changed host key and a refused key, each
// within 5 s. The remote end of the forward is a local socket of this test
// (on loopback, the remote host is this one); the stack e2e forwards the
// real engine's.
#include "engine/connectioncheck.h"
#include "engine/sshconnection.h"
#include "env/environment.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLocalServer>
#include <QLocalSocket>
#include <QPointer>
#include <QProcess>
#include <QStandardPaths>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QtTest>
#include <csignal>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

using namespace pilothouse;

namespace {

// Runs a program to the end; its stdout, or nullopt when it failed.
std::optional<QString> runTool(const QString &program, const QStringList &args)
{
    QProcess p;
    p.start(program, args);
    if (!p.waitForFinished(30000) || p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0)
        return std::nullopt;
    return QString::fromUtf8(p.readAllStandardOutput());
}

int freePort()
{
    QTcpServer s;
    s.listen(QHostAddress::LocalHost);
    return s.serverPort();
}

} // namespace

class TestSsh final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QProcess m_sshd;
    int m_port = 0;
    QString m_runtime;
    QLocalServer m_engine; // the forward's remote end
    // Its connections other than the connection's own /_ping (answered as
    // the engine would), with what each sent first.
    QList<std::pair<QPointer<QLocalSocket>, QByteArray>> m_clients;
    int m_pings = 0;
    QString m_hostFingerprint;

    QString path(const QString &name) const { return m_dir.filePath(name); }

    // An ssh_config for the client (PILOTHOUSE_SSH_CONFIG): this test's
    // known_hosts and key instead of the user's.
    void writeClientConfig(const QString &knownHosts, const QString &key)
    {
        QFile f(path(QStringLiteral("ssh_config")));
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(QStringLiteral("Host *\n  UserKnownHostsFile %1\n  GlobalKnownHostsFile /dev/null\n"
                               "  IdentityFile %2\n  IdentitiesOnly yes\n  IdentityAgent none\n")
                    .arg(knownHosts, key)
                    .toUtf8());
        f.close();
        qputenv("PILOTHOUSE_SSH_CONFIG", f.fileName().toUtf8());
    }

    std::unique_ptr<SshConnection> connection(int port)
    {
        SshTarget t;
        t.host = QStringLiteral("127.0.0.1");
        t.port = port;
        t.user = QString::fromLocal8Bit(qgetenv("USER").isEmpty() ? "root" : qgetenv("USER"));
        auto c = std::make_unique<SshConnection>(t, m_runtime);
        c->setRemoteSocket(m_engine.fullServerName());
        c->setConnectTimeoutMs(3000);
        c->setRetryDelayMs(200, 1000);
        return c;
    }

    QString loginUser() const
    {
        return QString::fromLocal8Bit(qgetenv("USER").isEmpty() ? "root" : qgetenv("USER"));
    }

    // "Test connection" of an environment with docker.host ssh://…:port,
    // run to its end; the steps and how long it took.
    QList<ConnectionCheck::Step> check(int port, qint64 *ms, const QString &identity = {})
    {
        Environment env;
        env.name = QStringLiteral("check");
        env.kind = EnvironmentKind::Compose;
        env.project = QStringLiteral("phcheck");
        env.dockerHost = QStringLiteral("ssh://%1@127.0.0.1:%2").arg(loginUser()).arg(port);
        env.sshIdentityFile = identity;
        ConnectionCheck c(env);
        c.setRemoteSocket(path(QStringLiteral("missing/docker.sock")));
        QSignalSpy finished(&c, &ConnectionCheck::finished);
        QElapsedTimer t;
        t.start();
        c.start();
        if (!c.isFinished())
            (void)finished.wait(10000);
        *ms = t.elapsed();
        return c.steps();
    }

    // Waits for the first Connected or Failed; returns the time it took.
    qint64 settle(SshConnection &c, int timeoutMs = 8000)
    {
        QElapsedTimer t;
        t.start();
        (void)QTest::qWaitFor(
            [&] {
                return c.state() == SshConnection::State::Connected ||
                    c.state() == SshConnection::State::Failed;
            },
            timeoutMs);
        return t.elapsed();
    }

    // The ssh processes whose command line names this control socket.
    QList<int> masters(const SshConnection &c) const
    {
        QList<int> out;
        for (const QString &pid : QDir(QStringLiteral("/proc")).entryList(QDir::Dirs)) {
            QFile f(QStringLiteral("/proc/%1/cmdline").arg(pid));
            if (pid.toInt() > 0 && f.open(QIODevice::ReadOnly) &&
                f.readAll().contains(c.controlSocket().toUtf8()))
                out << pid.toInt();
        }
        return out;
    }

private slots:
    void initTestCase()
    {
        if (geteuid() != 0 || !QFileInfo(QStringLiteral("/usr/sbin/sshd")).isExecutable()) {
            const char *why = "needs root and Debian's openssh-server (make test installs it)";
            if (qgetenv("CI") == "true")
                QFAIL(why);
            QSKIP(why);
        }
        QVERIFY(m_dir.isValid());
        QStandardPaths::setTestModeEnabled(true);
        m_runtime = path(QStringLiteral("run"));
        QVERIFY(QDir().mkpath(m_runtime));
        QFile::setPermissions(
            m_runtime, QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
        for (const char *key : { "host_key", "user_key", "other_key", "new_host_key" })
            QVERIFY(runTool(QStringLiteral("ssh-keygen"),
                            { QStringLiteral("-q"), QStringLiteral("-t"), QStringLiteral("ed25519"),
                              QStringLiteral("-N"), QString(), QStringLiteral("-f"),
                              path(QLatin1String(key)) })
                        .has_value());
        QVERIFY(QFile::copy(path(QStringLiteral("user_key.pub")),
                            path(QStringLiteral("authorized_keys"))));
        m_port = freePort();
        QFile config(path(QStringLiteral("sshd_config")));
        QVERIFY(config.open(QIODevice::WriteOnly));
        config.write(QStringLiteral("Port %1\nListenAddress 127.0.0.1\nHostKey %2\nPidFile %3\n"
                                    "AuthorizedKeysFile %4\nStrictModes no\nUsePAM no\n"
                                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                    "PermitRootLogin prohibit-password\n"
                                    "AllowStreamLocalForwarding yes\nLogLevel VERBOSE\n")
                         .arg(m_port)
                         .arg(path(QStringLiteral("host_key")), path(QStringLiteral("sshd.pid")),
                              path(QStringLiteral("authorized_keys")))
                         .toUtf8());
        config.close();
        QDir().mkpath(QStringLiteral("/run/sshd")); // sshd's privilege separation folder
        m_sshd.setProcessChannelMode(QProcess::MergedChannels);
        m_sshd.start(QStringLiteral("/usr/sbin/sshd"),
                     { QStringLiteral("-D"), QStringLiteral("-e"), QStringLiteral("-f"),
                       config.fileName() });
        QVERIFY(m_sshd.waitForStarted());
        QByteArray said;
        QTRY_VERIFY_WITH_TIMEOUT((said += m_sshd.readAll()).contains("Server listening") ||
                                     m_sshd.state() != QProcess::Running,
                                 10000);
        QVERIFY2(m_sshd.state() == QProcess::Running, said.constData());
        // known_hosts with this server's key, as a user who trusted it has.
        const QString pub = QString::fromUtf8([&] {
                                QFile f(path(QStringLiteral("host_key.pub")));
                                f.open(QIODevice::ReadOnly);
                                return f.readAll();
                            }())
                                .trimmed();
        QFile known(path(QStringLiteral("known_hosts")));
        QVERIFY(known.open(QIODevice::WriteOnly));
        known.write(QStringLiteral("[127.0.0.1]:%1 %2\n")
                        .arg(m_port)
                        .arg(pub.section(QLatin1Char(' '), 0, 1))
                        .toUtf8());
        known.close();
        m_hostFingerprint = runTool(QStringLiteral("ssh-keygen"),
                                    { QStringLiteral("-lf"), path(QStringLiteral("host_key.pub")) })
                                .value_or(QString())
                                .section(QLatin1Char(' '), 1, 1);
        QVERIFY(m_hostFingerprint.startsWith(QLatin1String("SHA256:")));
        QVERIFY(m_engine.listen(path(QStringLiteral("engine.sock"))));
        connect(&m_engine, &QLocalServer::newConnection, this, [this] {
            while (QLocalSocket *s = m_engine.nextPendingConnection()) {
                connect(s, &QLocalSocket::readyRead, this, [this, s] {
                    if (s->property("seen").toBool())
                        return;
                    s->setProperty("seen", true);
                    const QByteArray first = s->readAll();
                    if (first.startsWith("GET /_ping ")) {
                        ++m_pings;
                        s->write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK");
                        s->disconnectFromServer();
                        return;
                    }
                    m_clients.append({ QPointer<QLocalSocket>(s), first });
                });
            }
        });
        writeClientConfig(known.fileName(), path(QStringLiteral("user_key")));
    }

    void forcedOptions()
    {
        const QStringList o = sshForcedOptions();
        for (const char *must : { "BatchMode=yes", "StrictHostKeyChecking=yes", "ControlPersist=no",
                                  "StreamLocalBindUnlink=yes", "ExitOnForwardFailure=yes",
                                  "StreamLocalBindMask=0177" })
            QVERIFY2(o.contains(QLatin1String(must)), must);
        QVERIFY(o.filter(QStringLiteral("ServerAlive")).size() == 2);
    }

    void parsesTargets()
    {
        const auto t = SshTarget::parse(QStringLiteral("ssh://deploy@staging.example.com:2222"));
        QVERIFY(t.ok());
        QCOMPARE(t->user, QStringLiteral("deploy"));
        QCOMPARE(t->port, 2222);
        QCOMPARE(t->knownHostsName(), QStringLiteral("[staging.example.com]:2222"));
        QVERIFY(SshTarget::parse(QStringLiteral("ssh://host")).ok());
        QVERIFY(!SshTarget::parse(QStringLiteral("ssh://-oProxyCommand=x")).ok());
        QVERIFY(!SshTarget::parse(QStringLiteral("ssh://u:secret@host")).ok());
        QVERIFY(!SshTarget::parse(QStringLiteral("tcp://host:2375")).ok());
    }

    void connectsAndForwards()
    {
        auto c = connection(m_port);
        QSignalSpy states(c.get(), &SshConnection::stateChanged);
        c->open();
        const qint64 ms = settle(*c);
        QVERIFY2(c->state() == SshConnection::State::Connected, qPrintable(c->reason()));
        qInfo("connected in %lld ms", ms);
        QCOMPARE(int(states.first().first().value<SshConnection::State>()),
                 int(SshConnection::State::Connecting));
        QVERIFY(c->dockerHost().startsWith(QLatin1String("unix://") + m_runtime));
        struct stat st
        {
        };
        QCOMPARE(::stat(QFile::encodeName(c->localSocket()).constData(), &st), 0);
        QCOMPARE(int(st.st_mode & 0777), 0600);
        // Bytes through the forward reach the remote socket.
        QLocalSocket client;
        client.connectToServer(c->localSocket());
        QVERIFY(client.waitForConnected(3000));
        // The connection asked the engine for /_ping before it said Connected.
        QVERIFY(m_pings >= 1);
        m_clients.clear();
        client.write("GET /version HTTP/1.1\r\n\r\n");
        client.flush();
        QTRY_VERIFY_WITH_TIMEOUT(!m_clients.isEmpty(), 5000);
        QLocalSocket *remote = m_clients.first().first;
        QVERIFY(remote);
        QCOMPARE(m_clients.first().second, QByteArray("GET /version HTTP/1.1\r\n\r\n"));
        remote->write("pong");
        remote->flush();
        QByteArray back;
        QTRY_COMPARE_WITH_TIMEOUT((back += client.readAll()), QByteArray("pong"), 5000);
        client.disconnectFromServer();
        remote->deleteLater();
        // One master, and it is gone with close(), with its sockets.
        QCOMPARE(masters(*c).size(), 1);
        c->close();
        QTRY_VERIFY_WITH_TIMEOUT(masters(*c).isEmpty(), 5000);
        QVERIFY(!QFileInfo::exists(c->localSocket()));
        QCOMPARE(int(c->state()), int(SshConnection::State::Idle));
    }

    // A TCP port of the remote host (here an echo of this test on loopback),
    // forwarded through the master, again after a reconnect, on the same
    // local port; cancelled when asked.
    void tcpForwardThroughTheMaster()
    {
        QTcpServer remote;
        QVERIFY(remote.listen(QHostAddress::LocalHost));
        connect(&remote, &QTcpServer::newConnection, &remote, [&remote] {
            QTcpSocket *s = remote.nextPendingConnection();
            connect(s, &QTcpSocket::readyRead, s, [s] { s->write(s->readAll().toUpper()); });
        });
        auto c = connection(m_port);
        const int local = c->forwardTcp(QStringLiteral("127.0.0.1"), remote.serverPort());
        QVERIFY(local > 0);
        QCOMPARE(c->forwardTcp(QStringLiteral("127.0.0.1"), remote.serverPort()), local);
        QSignalSpy forwarded(c.get(), &SshConnection::forwardChanged);
        c->open();
        settle(*c);
        QCOMPARE(int(c->state()), int(SshConnection::State::Connected));
        QTRY_VERIFY_WITH_TIMEOUT(c->isForwarded(local), 5000);
        const auto echo = [local](const QByteArray &text) -> QByteArray {
            QTcpSocket s;
            s.connectToHost(QHostAddress::LocalHost, quint16(local));
            if (!s.waitForConnected(3000))
                return QByteArray("not connected: ") + s.errorString().toUtf8();
            s.write(text);
            QByteArray got;
            QElapsedTimer t;
            t.start();
            while (got.size() < text.size() && t.elapsed() < 5000) {
                QCoreApplication::processEvents();
                s.waitForReadyRead(50);
                got += s.readAll();
            }
            return got;
        };
        QByteArray answer;
        QTRY_COMPARE_WITH_TIMEOUT((answer = echo("ping")), QByteArray("PING"), 5000);
        // After the master is gone and back, the same local port works again.
        ::kill(masters(*c).value(0), SIGKILL);
        QTRY_VERIFY_WITH_TIMEOUT(!c->isForwarded(local), 5000);
        QTRY_VERIFY_WITH_TIMEOUT(c->isForwarded(local), 10000);
        QTRY_COMPARE_WITH_TIMEOUT((answer = echo("again")), QByteArray("AGAIN"), 5000);
        c->cancelTcp(local);
        QVERIFY(!c->isForwarded(local));
        QTRY_COMPARE_WITH_TIMEOUT((answer = echo("gone")),
                                  QByteArray("not connected: Connection refused"), 5000);
        c->close();
    }

    void reconnectsAfterItsMasterIsKilled()
    {
        auto c = connection(m_port);
        c->open();
        settle(*c);
        QCOMPARE(int(c->state()), int(SshConnection::State::Connected));
        const QList<int> pids = masters(*c);
        QCOMPARE(pids.size(), 1);
        QSignalSpy states(c.get(), &SshConnection::stateChanged);
        ::kill(pids.first(), SIGKILL);
        QTRY_VERIFY_WITH_TIMEOUT(!states.isEmpty(), 5000);
        QTRY_COMPARE_WITH_TIMEOUT(int(c->state()), int(SshConnection::State::Connected), 10000);
        QVERIFY(masters(*c) != pids);
        c->close();
    }

    void wrongPortIsRefused()
    {
        auto c = connection(freePort());
        c->open();
        const qint64 ms = settle(*c);
        QCOMPARE(int(c->state()), int(SshConnection::State::Failed));
        QVERIFY(ms < 5000);
        QCOMPARE(int(c->problem()), int(SshProblem::Kind::ConnectionRefused));
        QVERIFY2(c->reason().contains(QLatin1String("refused the connection")) &&
                     c->reason().contains(QLatin1String("127.0.0.1:")),
                 qPrintable(c->reason()));
        c->close();
    }

    void unknownHostKeyShowsItsFingerprint()
    {
        writeClientConfig(path(QStringLiteral("empty_known_hosts")),
                          path(QStringLiteral("user_key")));
        auto c = connection(m_port);
        c->open();
        const qint64 ms = settle(*c);
        QCOMPARE(int(c->state()), int(SshConnection::State::Failed));
        QVERIFY(ms < 5000);
        QCOMPARE(int(c->problem()), int(SshProblem::Kind::HostKeyUnknown));
        // The fingerprint follows from ssh-keyscan, as ssh-keygen -l shows it.
        QTRY_VERIFY_WITH_TIMEOUT(c->reason().contains(m_hostFingerprint), 5000);
        QVERIFY2(c->reason().contains(QStringLiteral("ssh-keyscan -p %1 127.0.0.1").arg(m_port)),
                 qPrintable(c->reason()));
        QVERIFY(!QFileInfo::exists(path(QStringLiteral("empty_known_hosts")))); // nothing trusted
        c->close();
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("user_key")));
    }

    void changedHostKeyIsRefused()
    {
        QFile other(path(QStringLiteral("new_host_key.pub")));
        QVERIFY(other.open(QIODevice::ReadOnly));
        QFile known(path(QStringLiteral("changed_known_hosts")));
        QVERIFY(known.open(QIODevice::WriteOnly));
        known.write(QStringLiteral("[127.0.0.1]:%1 ").arg(m_port).toUtf8() +
                    other.readAll().trimmed().split(' ').mid(0, 2).join(' ') + '\n');
        known.close();
        writeClientConfig(known.fileName(), path(QStringLiteral("user_key")));
        auto c = connection(m_port);
        c->open();
        const qint64 ms = settle(*c);
        QCOMPARE(int(c->state()), int(SshConnection::State::Failed));
        QVERIFY(ms < 5000);
        QCOMPARE(int(c->problem()), int(SshProblem::Kind::HostKeyChanged));
        QVERIFY2(
            c->reason().contains(QLatin1String("CHANGED")) &&
                c->reason().contains(QStringLiteral("ssh-keygen -R '[127.0.0.1]:%1'").arg(m_port)),
            qPrintable(c->reason()));
        c->close();
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("user_key")));
    }

    void refusedKeyNamesTheKeyTried()
    {
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("other_key")));
        auto c = connection(m_port);
        c->open();
        const qint64 ms = settle(*c);
        QCOMPARE(int(c->state()), int(SshConnection::State::Failed));
        QVERIFY(ms < 5000);
        QCOMPARE(int(c->problem()), int(SshProblem::Kind::AuthRefused));
        QVERIFY2(c->reason().contains(path(QStringLiteral("other_key"))) &&
                     c->reason().contains(QLatin1String("refused the login of user")),
                 qPrintable(c->reason()));
        // It keeps trying (a key may be added on the server), with backoff.
        QSignalSpy again(c.get(), &SshConnection::stateChanged);
        QTRY_VERIFY_WITH_TIMEOUT(!again.isEmpty(), 3000);
        c->close();
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("user_key")));
    }

    // Test connection: each stage says what it found, up to the remote
    // engine socket (missing here, so that stage says so and compose is
    // not tried). The key comes from docker.identityFile (the ssh_config
    // names another), and the diagnosis of the refused socket runs through
    // the connection.
    void checkReportsEachStage()
    {
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("other_key")));
        qint64 ms = 0;
        const auto steps = check(m_port, &ms, path(QStringLiteral("user_key")));
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("user_key")));
        QCOMPARE(steps.size(), 5);
        for (const auto &s : steps)
            qInfo("%s: %s: %s", qPrintable(ConnectionCheck::nameOf(s.stage)),
                  qPrintable(ConnectionCheck::nameOf(s.result)), qPrintable(s.detail));
        QVERIFY(ms < 5000);
        QCOMPARE(int(steps.at(0).result), int(ConnectionCheck::Result::Passed));
        QVERIFY(steps.at(0).detail.contains(
            QStringLiteral("127.0.0.1:%1 answers (SSH-2.0-").arg(m_port)));
        QCOMPARE(int(steps.at(1).result), int(ConnectionCheck::Result::Passed));
        QVERIFY2(steps.at(1).detail.contains(m_hostFingerprint), qPrintable(steps.at(1).detail));
        QCOMPARE(int(steps.at(2).result), int(ConnectionCheck::Result::Passed));
        QVERIFY2(steps.at(2).detail.contains(path(QStringLiteral("user_key"))),
                 qPrintable(steps.at(2).detail));
        QCOMPARE(int(steps.at(3).result), int(ConnectionCheck::Result::Failed));
        QVERIFY2(steps.at(3).detail.contains(QStringLiteral("there is no Docker socket at %1")
                                                 .arg(path(QStringLiteral("missing/docker.sock")))),
                 qPrintable(steps.at(3).detail));
        QCOMPARE(int(steps.at(4).result), int(ConnectionCheck::Result::Skipped));
    }

    void checkNamesTheStageThatFailed()
    {
        qint64 ms = 0;
        // Nothing listens.
        auto steps = check(freePort(), &ms);
        QVERIFY(ms < 5000);
        QCOMPARE(int(steps.at(0).result), int(ConnectionCheck::Result::Failed));
        QVERIFY2(steps.at(0).detail.contains(QLatin1String("refused the connection")),
                 qPrintable(steps.at(0).detail));
        for (int i = 1; i < 5; ++i)
            QCOMPARE(int(steps.at(i).result), int(ConnectionCheck::Result::Skipped));
        // Something that is not sshd listens.
        QTcpServer web;
        QVERIFY(web.listen(QHostAddress::LocalHost));
        connect(&web, &QTcpServer::newConnection, &web, [&web] {
            QTcpSocket *s = web.nextPendingConnection();
            s->write("HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        steps = check(web.serverPort(), &ms);
        QVERIFY(ms < 5000);
        QCOMPARE(int(steps.at(0).result), int(ConnectionCheck::Result::Failed));
        QVERIFY2(steps.at(0).detail.contains(QLatin1String("not as an SSH server")) &&
                     steps.at(0).detail.contains(QLatin1String("HTTP/1.1 400")),
                 qPrintable(steps.at(0).detail));
        // A host key nobody trusted: its fingerprint, and the login is not tried.
        writeClientConfig(path(QStringLiteral("empty_known_hosts")),
                          path(QStringLiteral("user_key")));
        steps = check(m_port, &ms);
        QVERIFY(ms < 8000);
        QCOMPARE(int(steps.at(0).result), int(ConnectionCheck::Result::Passed));
        QCOMPARE(int(steps.at(1).result), int(ConnectionCheck::Result::Failed));
        QVERIFY2(steps.at(1).detail.contains(m_hostFingerprint) &&
                     steps.at(1).detail.contains(QLatin1String("ssh-keyscan")),
                 qPrintable(steps.at(1).detail));
        QCOMPARE(int(steps.at(2).result), int(ConnectionCheck::Result::Skipped));
        // A key the server refuses: the host key passed, the login did not.
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("other_key")));
        steps = check(m_port, &ms);
        writeClientConfig(path(QStringLiteral("known_hosts")), path(QStringLiteral("user_key")));
        QVERIFY(ms < 5000);
        QCOMPARE(int(steps.at(1).result), int(ConnectionCheck::Result::Passed));
        QCOMPARE(int(steps.at(2).result), int(ConnectionCheck::Result::Failed));
        QVERIFY2(steps.at(2).detail.contains(QLatin1String("refused the login of user")),
                 qPrintable(steps.at(2).detail));
        QCOMPARE(int(steps.at(3).result), int(ConnectionCheck::Result::Skipped));
    }

    void cleanupTestCase()
    {
        if (m_sshd.state() == QProcess::Running) {
            m_sshd.terminate();
            m_sshd.waitForFinished(5000);
        }
    }
};

QTEST_GUILESS_MAIN(TestSsh)
#include "tst_ssh.moc"
