#include "core/ownerlock.h"

#include <QCoreApplication>
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

std::unique_ptr<QLockFile> takeLock(const QString &path, LockHolder *holder)
{
    auto lock = std::make_unique<QLockFile>(path);
    lock->setStaleLockTime(0); // never stale by age; a dead owner's is (Qt checks the pid)
    if (lock->tryLock(0))
        return lock;
    if (holder)
        lock->getLockInfo(&holder->pid, &holder->host, &holder->app);
    return nullptr;
}

LockHolder lockHolder(const QString &path)
{
    LockHolder h;
    QLockFile(path).getLockInfo(&h.pid, &h.host, &h.app);
    return h;
}

} // namespace pilothouse
