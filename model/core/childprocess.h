#pragma once

#include <QtGlobal>

class QProcess;

// Every process the panel or pilothousectl starts ends when its owner does,
// whatever ends the owner (Quit, a signal, SIGKILL, a crash).
//
// One mechanism for all children: each child leads a session (and so a
// process group) of its own, so whatever it starts (compose's plugin, compose's ssh, a build's
// steps) stays in that group, and
//  - a parent-death signal (SIGTERM) is set in the child before exec, so the
//    child itself hears of the owner's death at once;
//  - the group is registered, from the child before exec (no window where a
//    dying owner could miss it), with a small reaper process forked from the
//    owner on first use. The reaper holds the other end of a socket only the
//    owner writes to: when the owner is gone, by any means, the socket
//    closes, and the reaper sends SIGTERM to every registered group, then
//    SIGKILL after a grace period, and exits.
// Own sessions also keep a terminal's Ctrl+C away from the children (the
// owner hears it and stops them in order) and leave them no terminal to
// prompt on. The reaper forgets groups that are gone every 2 s and just
// before it signals, so a reused number is never signalled.
namespace pilothouse {

// Call before QProcess::start(): the child gets its own process group, is
// registered with the reaper and gets a parent-death signal.
void bindToOwner(QProcess &process);

// The child `pid` has exited: its group is forgotten once nothing is left in
// it (a group with members left stays registered, to be ended with the owner).
void releaseChild(qint64 pid);

// Sends `signo` to the child's whole process group (the child and everything
// it started that stayed in it); to the child alone when it has no group yet.
void signalChildGroup(qint64 pid, int signo);

// How long the reaper waits between SIGTERM and SIGKILL.
constexpr int kReaperGraceMs = 3000;

} // namespace pilothouse
