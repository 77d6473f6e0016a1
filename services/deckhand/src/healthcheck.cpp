#include "commands.h"

#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QHostAddress>
#include <QTcpSocket>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

namespace deckhand {

namespace {

int fail(const QString &why)
{
    std::fprintf(stderr, "unhealthy: %s\n", qPrintable(why));
    return 1;
}

int checkHeartbeat(const Config &config)
{
    const QFileInfo info(config.workerHeartbeatFile);
    struct stat st
    {
    };
    if (::lstat(QFile::encodeName(info.filePath()).constData(), &st) != 0)
        return fail(QStringLiteral("no worker heartbeat at %1").arg(info.filePath()));
    // Only the worker's own file counts: not a link, not another user's.
    if (S_ISLNK(st.st_mode))
        return fail(QStringLiteral("%1 is a symbolic link, not the worker's heartbeat")
                        .arg(info.filePath()));
    if (st.st_uid != ::geteuid())
        return fail(QStringLiteral("%1 belongs to uid %2, not to this user (uid %3)")
                        .arg(info.filePath())
                        .arg(st.st_uid)
                        .arg(::geteuid()));
    const qint64 age = info.lastModified().secsTo(QDateTime::currentDateTime());
    if (age > 30)
        return fail(QStringLiteral("worker heartbeat is %1 s old").arg(age));
    std::printf("healthy: worker heartbeat %lld s old\n", static_cast<long long>(age));
    return 0;
}

} // namespace

int runHealthcheck(const Config &config, const QStringList &arguments)
{
    if (arguments.contains(QLatin1String("--worker")))
        return checkHeartbeat(config);
    const QByteArray path = arguments.contains(QLatin1String("--live")) ? "/livez" : "/readyz";

    // Reach the API where it listens; a wildcard address means loopback works.
    QHostAddress address(config.host);
    if (config.host == QLatin1String("localhost") || address == QHostAddress::AnyIPv4 ||
        address.isNull())
        address = QHostAddress::LocalHost;
    else if (address == QHostAddress::AnyIPv6 || address == QHostAddress::Any)
        address = QHostAddress::LocalHostIPv6;

    const int timeoutMs = std::max(config.checkTimeoutMs, 2000);
    QTcpSocket socket;
    socket.connectToHost(address, config.port);
    if (!socket.waitForConnected(timeoutMs))
        return fail(QStringLiteral("cannot connect to %1:%2: %3")
                        .arg(address.toString())
                        .arg(config.port)
                        .arg(socket.errorString()));
    socket.write("GET " + path +
                 " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: deckhand-healthcheck\r\nConnection: "
                 "close\r\n\r\n");
    if (!socket.waitForBytesWritten(timeoutMs))
        return fail(QStringLiteral("cannot send the request: %1").arg(socket.errorString()));
    QByteArray reply;
    while (!reply.contains("\r\n") && socket.waitForReadyRead(timeoutMs))
        reply += socket.readAll();
    const QByteArray statusLine = reply.left(reply.indexOf("\r\n"));
    const QList<QByteArray> parts = statusLine.split(' ');
    if (parts.size() < 2)
        return fail(QStringLiteral("no HTTP answer from %1").arg(QString::fromLatin1(path)));
    if (parts[1] != "200")
        return fail(QStringLiteral("%1 answered %2")
                        .arg(QString::fromLatin1(path), QString::fromLatin1(parts[1])));
    std::printf("healthy: %s answered 200\n", path.constData());
    return 0;
}

} // namespace deckhand
