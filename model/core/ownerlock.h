#pragma once

#include "core/result.h"

#include <QString>
#include <memory>

class QLockFile;

// One owner at a time (native processes, a deployment), across processes:
// a lock file that Qt checks against its owner's pid, so a crashed owner's
// lock is free again at once, and never goes stale by age.
namespace pilothouse {

struct LockHolder
{
    qint64 pid = 0;
    QString host;
    QString app;
    // "pilothousectl (pid 4242)", with the host when it is another one.
    QString describe() const;
};

// The folder for this user's owner sockets and their locks: $XDG_RUNTIME_DIR
// when it is a real folder of this user's with mode 0700 (as logind makes
// it), else the per-user cache folder's pilothouse/, created 0700 (a folder
// of ours with wider modes is narrowed; one of another user's, or a symbolic
// link, is refused with what to do).
Expected<QString> privateRuntimeDir();

// Takes the lock without waiting (making its folder when missing). Null when
// it could not: then *holder says who holds it, or, when nobody does (the
// file cannot be written, or is a symbolic link, which is never followed),
// *problem says why and what to do.
std::unique_ptr<QLockFile> takeLock(const QString &path, LockHolder *holder, QString *problem);
// Who holds it now, without taking it.
LockHolder lockHolder(const QString &path);

} // namespace pilothouse
