#pragma once

#include "engine/sshconnection.h"
#include "env/environment.h"

#include <QList>
#include <QObject>
#include <QPointer>
#include <QProcessEnvironment>
#include <QString>
#include <QTimer>
#include <memory>

class QTcpSocket;
class QTemporaryDir;

// "Test connection": the way from here to an environment's engine, stage by
// stage, each with what it found or the first thing that went wrong. Over
// SSH: the TCP port (ssh's effective host name and port, from `ssh -G`, so
// ~/.ssh/config's Host entries count), the host key, the login, the
// remote Docker socket through the connection, then compose against it.
// For the local engine, tcp:// or a context only the last two apply.
//
// It opens its own short-lived SSH connection (in a folder of its own, so a
// connection the panel already has is left alone) with the same forced
// options, and closes it when done. Never a prompt; every stage has a timeout.
namespace pilothouse {

class Command;

class ConnectionCheck final : public QObject
{
    Q_OBJECT
public:
    enum class Stage { Tcp, HostKey, Login, DockerSocket, Compose };
    Q_ENUM(Stage)
    enum class Result { Waiting, Running, Passed, Failed, Skipped };
    Q_ENUM(Result)
    struct Step
    {
        Stage stage;
        Result result = Result::Waiting;
        QString detail; // what was found, or what went wrong and what to do
    };

    explicit ConnectionCheck(Environment env, QObject *parent = nullptr);
    ~ConnectionCheck() override;

    void start();
    const QList<Step> &steps() const { return m_steps; }
    bool isFinished() const { return m_finished; }
    // Every stage that applies passed.
    bool passed() const;
    // For tests: the SSH connect timeout (default 5 s).
    void setConnectTimeoutMs(int ms) { m_connectTimeoutMs = ms; }
    // For tests: the remote engine socket (default /var/run/docker.sock).
    void setRemoteSocket(const QString &path) { m_remoteSocket = path; }

    static QString nameOf(Stage stage);
    static QString nameOf(Result result);

signals:
    void stepChanged(int index);
    void finished(bool ok);

private:
    void resolve();
    void connectTcp();
    void openSsh();
    void onSshState(SshConnection::State state);
    void checkDocker();
    void checkCompose();
    void set(Stage stage, Result result, const QString &detail = {});
    // A stage failed: the rest cannot be checked.
    void fail(Stage stage, const QString &detail);
    void finish();
    QProcessEnvironment childEnvironment() const;
    Command *run(const QString &program, const QStringList &args, int timeoutMs);

    Environment m_env;
    bool m_overSsh = false;
    SshTarget m_target;
    QString m_hostName; // as ssh resolves it
    int m_port = 22;
    QString m_user;
    QList<Step> m_steps;
    std::unique_ptr<QTemporaryDir> m_dir;
    QPointer<SshConnection> m_ssh;
    QTcpSocket *m_tcp = nullptr;
    QTimer m_tcpDeadline;
    QTimer m_fingerprintWait; // an unknown key: wait briefly for its fingerprint
    QString m_dockerHost; // DOCKER_HOST for the docker and compose stages
    QString m_remoteSocket;
    int m_connectTimeoutMs = 5000;
    bool m_finished = false;
};

} // namespace pilothouse
