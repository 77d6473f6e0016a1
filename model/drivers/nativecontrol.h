#pragma once

#include "core/result.h"
#include "engine/servicestate.h"

#include <QJsonObject>
#include <QLocalServer>
#include <QObject>
#include <QPointer>
#include <functional>
#include <memory>

class QLockFile;

class QLocalSocket;

// A native environment's processes belong to the process that started them
// (a `pilothousectl up` or the window). That owner listens on a local socket,
// private to the user, so other front ends can see and steer the same
// processes: status, down, restart, stop/start one, logs. One owner per
// environment: a second `up` finds the first and says so.
namespace pilothouse {

class StackSession;

// The owner socket of an environment, in this user's private runtime folder.
Expected<QString> nativeControlPath(const QString &environment);

class NativeControlServer final : public QObject
{
    Q_OBJECT
public:
    NativeControlServer(StackSession *session, QObject *parent = nullptr);
    ~NativeControlServer() override;

    // Fails when another live owner already answers on the socket.
    Outcome listen();
    QString path() const { return m_path; }

private:
    void onConnection();
    void handle(QLocalSocket *socket, const QJsonObject &request);

    StackSession *m_session;
    QLocalServer m_server;
    QString m_path;
    QString m_pathError; // no private folder for it
    std::unique_ptr<QLockFile> m_lock;
};

// One request to the owner; `reply` for each answer line, then `done`.
class NativeControlClient final : public QObject
{
    Q_OBJECT
public:
    explicit NativeControlClient(const QString &environment, QObject *parent = nullptr);

    void send(const QJsonObject &request);
    void close();

signals:
    void reply(const QJsonObject &answer);
    // error empty: the owner answered and closed; otherwise why not (e.g. none runs).
    void done(const QString &error);

private:
    QString m_path;
    QString m_pathError;
    QLocalSocket *m_socket = nullptr;
    void finish(const QString &error);

    QByteArray m_buffer;
    bool m_connected = false;
    bool m_finished = false;
};

} // namespace pilothouse
