#include "core/ownerlock.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHostInfo>
#include <QLockFile>
#include <QLoggingCategory>
#include <QStandardPaths>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

Q_LOGGING_CATEGORY(lcOwner, "pilothouse.owner")

namespace pilothouse {

QString LockHolder::describe() const
{
    const QString who =
        app.isEmpty() ? QCoreApplication::translate("LockHolder", "another Pilothouse") : app;
    if (!host.isEmpty() && host != QHostInfo::localHostName())
        return QCoreApplication::translate("LockHolder", "%1 (pid %2 on %3)")
            .arg(who)
            .arg(pid)
            .arg(host);
    return QCoreApplication::translate("LockHolder", "%1 (pid %2)").arg(who).arg(pid);
}

namespace {

// Why `dir` is not a private folder of this user's, or empty when it is.
QString whyNotPrivate(const QString &dir, struct stat *st)
{
    if (::lstat(QFile::encodeName(dir).constData(), st) != 0)
        return QStringLiteral("%1 does not exist").arg(dir);
    if (S_ISLNK(st->st_mode))
        return QStringLiteral("%1 is a symbolic link").arg(dir);
    if (!S_ISDIR(st->st_mode))
        return QStringLiteral("%1 is not a folder").arg(dir);
    if (st->st_uid != ::geteuid())
        return QStringLiteral("%1 belongs to uid %2, not to you (uid %3)")
            .arg(dir)
            .arg(st->st_uid)
            .arg(::geteuid());
    if ((st->st_mode & 0777) != 0700)
        return QStringLiteral("%1 has mode %2, not 0700")
            .arg(dir, QString::number(st->st_mode & 0777, 8).prepend(QLatin1Char('0')));
    return {};
}

} // namespace

Expected<QString> privateRuntimeDir()
{
    struct stat st
    {
    };
    const QString runtime = qEnvironmentVariable("XDG_RUNTIME_DIR");
    if (!runtime.isEmpty()) {
        const QString why = whyNotPrivate(runtime, &st);
        if (why.isEmpty())
            return runtime;
        static bool said = false; // asked every few seconds: said once
        if (!std::exchange(said, true))
            qCInfo(lcOwner, "not using XDG_RUNTIME_DIR: %s", qPrintable(why));
    }
    // No usable runtime dir (root shells, containers, a shared one): a
    // private folder in the home directory, not /tmp, where another user
    // could have made it first.
    QString cache = QStandardPaths::writableLocation(QStandardPaths::GenericCacheLocation);
    if (cache.isEmpty())
        cache = QDir::homePath() + QStringLiteral("/.cache");
    const QString dir = cache + QStringLiteral("/pilothouse");
    if (::lstat(QFile::encodeName(dir).constData(), &st) != 0) {
        QDir().mkpath(cache);
        if (::mkdir(QFile::encodeName(dir).constData(), 0700) != 0 && errno != EEXIST)
            return Error { QStringLiteral("cannot create %1 (%2); check that %3 can be written")
                               .arg(dir, QString::fromLocal8Bit(strerror(errno)), cache) };
    }
    QString why = whyNotPrivate(dir, &st);
    if (!why.isEmpty() && S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode) && st.st_uid == ::geteuid()) {
        // Ours, only too open (made by an older version or by hand): narrow it.
        if (::chmod(QFile::encodeName(dir).constData(), 0700) == 0)
            why = whyNotPrivate(dir, &st);
    }
    if (!why.isEmpty())
        return Error { QStringLiteral("no private folder for the owner sockets: %1; remove it so "
                                      "that Pilothouse can make its own")
                           .arg(why) };
    return dir;
}

std::unique_ptr<QLockFile> takeLock(const QString &path, LockHolder *holder, QString *problem)
{
    *holder = {};
    problem->clear();
    struct stat st
    {
    };
    if (::lstat(QFile::encodeName(path).constData(), &st) == 0 && !S_ISREG(st.st_mode)) {
        *problem = QCoreApplication::translate("LockHolder",
                                               "the lock file %1 is %2, not a file; refusing to "
                                               "use it (remove it if you did not make it)")
                       .arg(path,
                            S_ISLNK(st.st_mode)
                                ? QCoreApplication::translate("LockHolder", "a symbolic link")
                                : QCoreApplication::translate("LockHolder", "something else"));
        return nullptr;
    }
    const QString dir = QFileInfo(path).absolutePath();
    if (!QDir().mkpath(dir)) {
        *problem = QCoreApplication::translate("LockHolder",
                                               "cannot create the folder %1 for the lock file; "
                                               "check that it can be written")
                       .arg(dir);
        return nullptr;
    }
    auto lock = std::make_unique<QLockFile>(path);
    lock->setStaleLockTime(0); // never stale by age; a dead owner's is (Qt checks the pid)
    if (lock->tryLock(0))
        return lock;
    if (lock->error() == QLockFile::LockFailedError &&
        lock->getLockInfo(&holder->pid, &holder->host, &holder->app))
        return nullptr;
    *problem = QCoreApplication::translate("LockHolder",
                                           "cannot write the lock file %1 (%2); check that %3 "
                                           "can be written")
                   .arg(path,
                        lock->error() == QLockFile::PermissionError
                            ? QCoreApplication::translate("LockHolder", "permission denied")
                            : QCoreApplication::translate("LockHolder", "error"),
                        dir);
    return nullptr;
}

LockHolder lockHolder(const QString &path)
{
    LockHolder h;
    QLockFile(path).getLockInfo(&h.pid, &h.host, &h.app);
    return h;
}

} // namespace pilothouse
