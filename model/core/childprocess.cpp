#include "core/childprocess.h"

#include <QLoggingCategory>
#include <QProcess>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

Q_LOGGING_CATEGORY(lcChildren, "pilothouse.children")

namespace pilothouse {

namespace {

// One message a registration: a record on a SOCK_SEQPACKET socket, so
// messages from the owner and from its children just before exec never mix.
struct Message
{
    char op; // '+' a group to end with the owner, '-' one that is gone
    std::int32_t pid;
};

int g_reaperFd = -1; // the owner's end (close-on-exec); -1 without a reaper
pid_t g_owner = 0;
std::once_flag g_reaperOnce;

void send(char op, pid_t pid)
{
    if (g_reaperFd < 0)
        return;
    const Message m { op, std::int32_t(pid) };
    // MSG_NOSIGNAL: a reaper that is gone must not kill the owner with
    // SIGPIPE; MSG_DONTWAIT: a stopped reaper must not hold the GUI thread
    // or a child before its exec.
    [[maybe_unused]] const auto n = ::send(g_reaperFd, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void sleepMs(long ms)
{
    timespec t { ms / 1000, (ms % 1000) * 1000000L };
    while (::nanosleep(&t, &t) != 0 && errno == EINTR) { }
}

// The reaper runs in a child forked from a threaded process, so it calls
// only async-signal-safe functions and allocates nothing.
// Forgets the groups that are gone, so a number the kernel hands out again
// is never signalled.
void prune(pid_t *groups, int *count)
{
    for (int i = 0; i < *count;) {
        if (::kill(-groups[i], 0) != 0 && errno == ESRCH)
            groups[i] = groups[--*count];
        else
            ++i;
    }
}

[[noreturn]] void reap(int fd)
{
    // A session of its own: a signal to the owner's whole group (job
    // control, a CI runner's timeout) does not take the reaper with it.
    ::setsid();
    ::prctl(PR_SET_NAME, "pilothouse-reap", 0, 0, 0);
    struct sigaction ignore = {};
    ignore.sa_handler = SIG_IGN;
    // Signals meant for the owner (a terminal's Ctrl+C reaches the whole
    // foreground group) must not end the reaper before the owner.
    for (int s : { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGTSTP })
        ::sigaction(s, &ignore, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Hold nothing of the owner's: no listening sockets, no pipes a caller
    // reads to the end, no working directory.
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        for (int i = 0; i < 3; ++i)
            ::dup2(null, i);
    }
    if (::syscall(SYS_close_range, 3u, unsigned(fd - 1), 0u) != 0 ||
        ::syscall(SYS_close_range, unsigned(fd + 1), ~0u, 0u) != 0) {
        rlimit limit {};
        const long max = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536
            ? long(limit.rlim_cur)
            : 65536;
        for (long i = 3; i < max; ++i) {
            if (i != fd)
                ::close(int(i));
        }
    }
    [[maybe_unused]] const int cd = ::chdir("/");

    static pid_t groups[8192];
    int count = 0;
    for (;;) {
        pollfd p { fd, POLLIN, 0 };
        const int ready = ::poll(&p, 1, 2000);
        if (ready == 0) {
            prune(groups, &count);
            continue;
        }
        if (ready < 0 && errno == EINTR)
            continue;
        Message m {};
        const ssize_t n = ::recv(fd, &m, sizeof m, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; // the owner is gone
        if (n != sizeof m || m.pid <= 1)
            continue;
        if (m.op == '+') {
            if (count == int(sizeof groups / sizeof groups[0]))
                prune(groups, &count);
            bool known = false;
            for (int i = 0; i < count && !known; ++i)
                known = groups[i] == m.pid;
            if (!known && count < int(sizeof groups / sizeof groups[0]))
                groups[count++] = m.pid;
        } else if (m.op == '-') {
            for (int i = 0; i < count; ++i) {
                if (groups[i] == m.pid) {
                    groups[i] = groups[--count];
                    break;
                }
            }
        }
    }
    prune(groups, &count);
    for (int i = 0; i < count; ++i)
        ::kill(-groups[i], SIGTERM);
    for (int waited = 0; waited < kReaperGraceMs; waited += 50) {
        bool alive = false;
        for (int i = 0; i < count && !alive; ++i)
            alive = ::kill(-groups[i], 0) == 0;
        if (!alive)
            ::_exit(0);
        sleepMs(50);
    }
    for (int i = 0; i < count; ++i)
        ::kill(-groups[i], SIGKILL);
    ::_exit(0);
}

void startReaper()
{
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        qCWarning(lcChildren,
                  "no reaper (socketpair: %s): children rely on their parent-death "
                  "signal alone",
                  strerror(errno));
        return;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        qCWarning(lcChildren,
                  "no reaper (fork: %s): children rely on their parent-death signal "
                  "alone",
                  strerror(errno));
        ::close(sv[0]);
        ::close(sv[1]);
        return;
    }
    if (pid == 0) {
        ::close(sv[0]);
        reap(sv[1]);
    }
    ::close(sv[1]);
    g_owner = ::getpid();
    g_reaperFd = sv[0];
}

} // namespace

void bindToOwner(QProcess &process)
{
    std::call_once(g_reaperOnce, startReaper);
    const pid_t owner = g_owner ? g_owner : ::getpid();
    // Runs in the child between fork and exec: async-signal-safe calls only.
    // The parent-death signal follows the thread that started the child, so
    // children are started from threads that live as long as the owner (the
    // main thread).
    process.setChildProcessModifier([owner] {
        // A session of its own (so a group of its own): no terminal to
        // prompt on (ssh and the like fail with their message instead of
        // stopping on SIGTTIN), and no Ctrl+C meant for the owner.
        ::setsid();
        send('+', ::getpid());
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != owner) // the owner died before the signal was set
            ::_exit(127);
    });
}

void releaseChild(qint64 pid)
{
    if (pid <= 1)
        return;
    if (::kill(-pid_t(pid), 0) == 0)
        return; // something it started lives on in its group
    send('-', pid_t(pid));
}

void signalChildGroup(qint64 pid, int signo)
{
    if (pid <= 1)
        return;
    if (::kill(-pid_t(pid), signo) != 0 && errno == ESRCH)
        ::kill(pid_t(pid), signo);
}

} // namespace pilothouse
