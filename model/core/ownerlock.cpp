#include "core/ownerlock.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QHostInfo>
#include <QLockFile>

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

std::unique_ptr<QLockFile> takeLock(const QString &path, LockHolder *holder, QString *problem)
{
    *holder = {};
    problem->clear();
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
