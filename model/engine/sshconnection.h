#pragma once

#include "core/result.h"

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QSet>
#include <QStringList>
#include <QTimer>

// One SSH connection per remote engine, owned by the panel: the system's
// OpenSSH client as a control master that forwards the remote engine's
// socket to a private local socket. Every docker and compose call of an
// environment with docker.host ssh://… goes through that socket
// (DOCKER_HOST=unix://…), so no child ever gets an ssh:// host, compose v1
// needs no paramiko, and one session carries every call.
namespace pilothouse {

class Command;
struct Environment;

// ssh://[user@]host[:port], as docker.host names it.
struct SshTarget
{
    QString user; // empty: ssh's own choice (~/.ssh/config, then the login name)
    QString host;
    int port = 0; // 0: ssh's own choice (~/.ssh/config, then 22)
    QString identityFile; // empty: ssh's own choice (agent, config, defaults)

    static Expected<SshTarget> parse(const QString &url);
    // docker.host and docker.identityFile of an environment.
    static Expected<SshTarget> of(const Environment &env);
    // "deploy@staging.example.com:2222", for messages.
    QString display() const;
    // host, or [host]:port as known_hosts and ssh-keyscan name it.
    QString knownHostsName() const;
};

// What ssh's own output says went wrong, in words a person can act on.
struct SshProblem
{
    enum class Kind {
        None,
        HostKeyUnknown, // not in known_hosts (batch mode refuses it)
        HostKeyChanged, // in known_hosts with another key
        AuthRefused, // no key was accepted
        ConnectionRefused,
        TimedOut,
        UnknownHost,
        DockerSocketDenied, // the remote user may not open the engine's socket
        DockerSocketMissing, // no engine socket on the remote host
        Other,
    };
    Kind kind = Kind::None;
    QString message;
};

// Pure: reads ssh's stderr (run with -v) for the first thing that went wrong.
SshProblem explainSsh(const QStringList &stderrLines, const SshTarget &target);

// The options that keep the panel's promises, forced over the user's
// ssh_config: never a prompt, never an unknown host key accepted, no master
// that outlives its owner, a forward that replaces a stale socket and fails
// the connection when it cannot be made, keep-alives that notice a dead link.
QStringList sshForcedOptions();

// [-F $PILOTHOUSE_SSH_CONFIG] [-p PORT] [-l USER]: what every ssh call for a
// target shares (the master, its clients, `ssh -G`).
QStringList sshTargetArguments(const SshTarget &target);

class SshConnection final : public QObject
{
    Q_OBJECT
public:
    // Connected: logged in, the socket forwarded, and the remote engine
    // answering its /_ping through it; when it does not, the remote side is
    // asked why (no socket, a group the login lacks, an engine that is
    // down) and the connection fails with that.
    enum class State { Idle, Connecting, Connected, Failed };
    Q_ENUM(State)

    // `runtimeDir` is the panel's private folder (0700): the local socket
    // (mode 0600) and the control socket go there.
    SshConnection(SshTarget target, QString runtimeDir, QObject *parent = nullptr);
    ~SshConnection() override;

    // Connects (again); a failure is retried with backoff (1 s doubling to 30 s)
    // until close().
    void open();
    void close();

    State state() const { return m_state; }
    // Why it failed or is reconnecting; empty when connected.
    QString reason() const { return m_reason; }
    SshProblem::Kind problem() const { return m_problem; }
    const SshTarget &target() const { return m_target; }
    // The local end of the engine's socket, and DOCKER_HOST for it.
    QString localSocket() const { return m_localSocket; }
    QString dockerHost() const { return QStringLiteral("unix://") + m_localSocket; }
    QString controlSocket() const { return m_controlSocket; }
    // ssh's verbose output of this attempt (the last few hundred lines).
    const QStringList &output() const { return m_stderr; }

    // A TCP port on the remote side (host:port as the remote host sees it,
    // e.g. 127.0.0.1:8000 or a container's address) reachable here at
    // 127.0.0.1:<the returned port>, added through the control master now
    // or as soon as it connects, and again after every reconnect. The same
    // remote end gives the same local port.
    int forwardTcp(const QString &host, int port);
    // Removes it (a container that moved), through the master when connected.
    void cancelTcp(int localPort);
    // The forwards that are established now.
    bool isForwarded(int localPort) const { return m_established.contains(localPort); }

    // For tests: the remote socket to forward (default /var/run/docker.sock),
    // the connect timeout and the first reconnect delay.
    void setRemoteSocket(const QString &path) { m_remoteSocket = path; }
    void setConnectTimeoutMs(int ms) { m_connectTimeoutMs = ms; }
    void setRetryDelayMs(int firstMs, int maxMs);

signals:
    void stateChanged(pilothouse::SshConnection::State state);
    // A TCP forward was added (ok) or refused by the master.
    void forwardChanged(int localPort, bool ok, const QString &error);

private:
    struct TcpForward
    {
        QString host;
        int port = 0;
        int localPort = 0;
    };
    // `ssh -O <op> -L spec` through the control master.
    void control(const QString &op, const TcpForward &f);
    QStringList baseArguments() const;
    QStringList clientArguments() const;
    void start();
    void onLine(const QString &line);
    void onExited();
    void checkForward();
    void fail(SshProblem problem);
    void setState(State s, const QString &reason = {});
    void describeHostKey(SshProblem problem);
    void pingEngine();
    void diagnoseSocket();
    void connected();

    SshTarget m_target;
    QString m_localSocket;
    QString m_controlSocket;
    QString m_remoteSocket = QStringLiteral("/var/run/docker.sock");
    QPointer<Command> m_master;
    QPointer<Command> m_probe; // ssh-keyscan / ssh-keygen for an unknown key
    QStringList m_stderr; // this attempt's, bounded
    QTimer m_poll; // until the forwarded socket appears
    QTimer m_retry;
    QElapsedTimer m_attempt;
    State m_state = State::Idle;
    QString m_reason;
    SshProblem::Kind m_problem = SshProblem::Kind::None;
    bool m_wanted = false;
    QPointer<Command> m_look; // the remote socket's check before Connected
    int m_attemptId = 0; // a ping or look of an earlier attempt is ignored
    int m_connectTimeoutMs = 10000;
    int m_firstRetryMs = 1000;
    int m_maxRetryMs = 30000;
    int m_nextRetryMs = 1000;
    QList<TcpForward> m_forwards;
    QSet<int> m_established;
};

QString toString(SshConnection::State state);

// DOCKER_HOST for the children of an environment whose docker.host is
// ssh://…: the local socket of its connection (where it will be when none
// is open yet: a call then fails, and is explained with the connection's state).
QString sshDockerHost(const Environment &env);

// One connection per target in this process, shared by every environment
// that names it, opened on first use and closed when the last user lets go.
class SshConnections final : public QObject
{
    Q_OBJECT
public:
    static SshConnections &instance();
    // Null when the target is not ssh:// or the runtime folder is unusable
    // (*error then says why).
    SshConnection *acquire(const Environment &env, QString *error = nullptr);
    void release(SshConnection *connection);
    // The connection of an environment with an ssh:// docker host, if one is
    // open in this process.
    SshConnection *find(const Environment &env) const;

private:
    struct Entry
    {
        SshConnection *connection = nullptr;
        int users = 0;
    };
    QHash<QString, Entry> m_entries;
};

} // namespace pilothouse
