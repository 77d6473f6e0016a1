#include "drivers/nativecontrol.h"

#include "core/ownerlock.h"
#include "core/session.h"
#include "drivers/nativedriver.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLocalSocket>
#include <QLockFile>
#include <QLoggingCategory>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

Q_LOGGING_CATEGORY(lcControl, "pilothouse.control")

namespace pilothouse {

Expected<QString> nativeControlPath(const QString &environment)
{
    const Expected<QString> dir = privateRuntimeDir();
    if (!dir)
        return Error { dir.error() };
    return QString(*dir + QStringLiteral("/pilothouse-%1.sock").arg(environment));
}

static void write(QLocalSocket *socket, const QJsonObject &o)
{
    socket->write(QJsonDocument(o).toJson(QJsonDocument::Compact) + '\n');
    socket->flush(); // the owner may exit right after answering (a remote down)
}

NativeControlServer::NativeControlServer(StackSession *session, QObject *parent)
    : QObject(parent)
    , m_session(session)
{
    if (const auto path = nativeControlPath(session->environment().name))
        m_path = *path;
    else
        m_pathError = path.error();
    m_server.setSocketOptions(QLocalServer::UserAccessOption);
    connect(&m_server, &QLocalServer::newConnection, this, &NativeControlServer::onConnection);
}

NativeControlServer::~NativeControlServer()
{
    m_server.close(); // removes the socket file
}

Outcome NativeControlServer::listen()
{
    // The lock (Qt checks its pid, so a dead owner's is stale at once) makes
    // "is anyone there? then I am" atomic, and needs no wait on a socket.
    if (!m_pathError.isEmpty())
        return Error { m_pathError };
    LockHolder holder;
    QString problem;
    m_lock = takeLock(m_path + QStringLiteral(".lock"), &holder, &problem);
    if (!m_lock && !problem.isEmpty())
        return Error { problem };
    if (!m_lock) {
        return Error { QStringLiteral("\"%1\" is already running under %2; use that one, or "
                                      "stop it first (pilothousectl down --env %1)")
                           .arg(m_session->environment().name, holder.describe()) };
    }
    // We hold the lock, so whatever socket file is there is a dead owner's.
    QLocalServer::removeServer(m_path);
    if (!m_server.listen(m_path))
        return Error {
            QStringLiteral("cannot listen on %1: %2").arg(m_path, m_server.errorString())
        };
    return success();
}

void NativeControlServer::onConnection()
{
    while (QLocalSocket *socket = m_server.nextPendingConnection()) {
        connect(socket, &QLocalSocket::disconnected, socket, &QObject::deleteLater);
        // The folder and the socket's mode keep other users out; the peer's
        // uid is checked all the same (root, a folder made wider by hand).
        ucred peer {};
        socklen_t len = sizeof peer;
        QString refusal;
        if (::getsockopt(int(socket->socketDescriptor()), SOL_SOCKET, SO_PEERCRED, &peer, &len) !=
                0 ||
            peer.uid != ::geteuid()) {
            qCWarning(lcControl, "refused a connection from uid %d on %s", int(peer.uid),
                      qPrintable(m_path));
            refusal = QStringLiteral("refused: the owner of \"%1\" answers only its own user "
                                     "(uid %2), and this request came from uid %3")
                          .arg(m_session->environment().name)
                          .arg(::geteuid())
                          .arg(peer.uid);
        }
        connect(socket, &QLocalSocket::readyRead, this, [this, socket, refusal] {
            if (!socket->canReadLine()) {
                if (socket->bytesAvailable() > 64 * 1024)
                    socket->abort(); // not a request
                return;
            }
            const QByteArray line = socket->readLine();
            if (!refusal.isEmpty()) {
                // Read first, then answer: a socket closed on unread data
                // would reset the connection before the answer is read.
                write(socket,
                      { { QStringLiteral("ok"), false }, { QStringLiteral("message"), refusal } });
                socket->disconnectFromServer();
                return;
            }
            handle(socket, QJsonDocument::fromJson(line).object());
        });
    }
}

void NativeControlServer::handle(QLocalSocket *socket, const QJsonObject &request)
{
    const QString op = request.value(QStringLiteral("op")).toString();
    const QString service = request.value(QStringLiteral("service")).toString();
    if (op == QLatin1String("status")) {
        QJsonArray states;
        if (NativeDriver *d = m_session->nativeDriver()) {
            for (const ServiceState &s : d->states())
                states.append(toJson(s));
        }
        write(socket, { { QStringLiteral("states"), states } });
        socket->disconnectFromServer();
        return;
    }
    if (op == QLatin1String("logs")) {
        const int tail = std::max(0, request.value(QStringLiteral("tail")).toInt(100));
        const QList<LogLine> lines = m_session->logs()->lines(service);
        for (qsizetype i = std::max<qsizetype>(0, lines.size() - tail); i < lines.size(); ++i)
            write(socket, { { QStringLiteral("line"), lines.at(i).text } });
        if (!request.value(QStringLiteral("follow")).toBool()) {
            socket->disconnectFromServer();
            return;
        }
        connect(m_session->logs(), &LogStore::appended, socket,
                [socket, service](const QString &s, const LogLine &l) {
                    if (s == service)
                        write(socket, { { QStringLiteral("line"), l.text } });
                });
        return;
    }
    using Call = void (StackSession::*)(const QString &);
    std::function<void()> call;
    if (op == QLatin1String("down"))
        call = [this] { m_session->down(); };
    else if (op == QLatin1String("restart"))
        call = [this, service] { m_session->restart(service); };
    else if (op == QLatin1String("stop") || op == QLatin1String("start")) {
        const Call c =
            op == QLatin1String("stop") ? &StackSession::stopService : &StackSession::startService;
        call = [this, c, service] { (m_session->*c)(service); };
    }
    if (!call) {
        write(socket,
              { { QStringLiteral("ok"), false },
                { QStringLiteral("message"), QStringLiteral("unknown request \"%1\"").arg(op) } });
        socket->disconnectFromServer();
        return;
    }
    // The answer is the operation's outcome; one connection per request.
    // The socket is the context: if the client goes away first, Qt drops the
    // connection and the operation just goes on.
    // Only the outcome of this request's operation answers it (another one may
    // finish meanwhile, or this one may be refused while another runs).
    const StackOperation expected = op == QLatin1String("down") ? StackOperation::Down
        : op == QLatin1String("restart")                        ? StackOperation::Restart
        : op == QLatin1String("stop")                           ? StackOperation::StopService
                                                                : StackOperation::StartService;
    auto conn = std::make_shared<QMetaObject::Connection>();
    *conn = connect(
        m_session, &StackSession::operationFinished, socket,
        [socket, conn, expected, service](const OperationResult &r) {
            if (r.operation != expected || r.service != service)
                return;
            QObject::disconnect(*conn);
            write(socket,
                  { { QStringLiteral("ok"), r.ok() }, { QStringLiteral("message"), r.message } });
            socket->disconnectFromServer();
        });
    call();
}

NativeControlClient::NativeControlClient(const QString &environment, QObject *parent)
    : QObject(parent)
{
    if (const auto path = nativeControlPath(environment))
        m_path = *path;
    else
        m_pathError = path.error();
}

void NativeControlClient::send(const QJsonObject &request)
{
    if (!m_pathError.isEmpty()) {
        QMetaObject::invokeMethod(
            this, [this] { finish(QStringLiteral("not reachable: %1").arg(m_pathError)); },
            Qt::QueuedConnection);
        return;
    }
    m_socket = new QLocalSocket(this);
    connect(m_socket, &QLocalSocket::connected, this, [this, request] {
        m_connected = true;
        write(m_socket, request);
    });
    connect(m_socket, &QLocalSocket::readyRead, this, [this] {
        while (m_socket->canReadLine())
            emit reply(QJsonDocument::fromJson(m_socket->readLine()).object());
    });
    connect(m_socket, &QLocalSocket::disconnected, this, [this] { finish({}); });
    connect(m_socket, &QLocalSocket::errorOccurred, this, [this](QLocalSocket::LocalSocketError e) {
        if (e == QLocalSocket::PeerClosedError)
            return; // disconnected() follows
        if (!m_connected)
            finish(QStringLiteral("not running (nothing owns it: no socket at %1)").arg(m_path));
        else
            finish(m_socket->errorString());
    });
    m_socket->connectToServer(m_path);
}

void NativeControlClient::finish(const QString &error)
{
    if (m_finished)
        return;
    m_finished = true;
    emit done(error);
}

void NativeControlClient::close()
{
    if (m_socket)
        m_socket->abort();
}

} // namespace pilothouse
