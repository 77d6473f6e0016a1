#include "drivers/nativedriver.h"

#include "core/childprocess.h"
#include "drivers/command.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <csignal>
#include <cstring>
#include <unistd.h>

#ifndef PILOTHOUSE_BIN_DIRS
#define PILOTHOUSE_BIN_DIRS ""
#endif

namespace pilothouse {

NativeDriver::NativeDriver(Environment env, QObject *parent)
    : StackDriver(parent)
    , m_env(std::move(env))
{
    qRegisterMetaType<pilothouse::OperationResult>();
    qRegisterMetaType<QList<pilothouse::ServiceState>>();
    for (const NativeProcess &p : m_env.processes) {
        auto s = std::make_unique<Supervised>();
        s->spec = p;
        s->state.service = p.name;
        // Not started by this driver: it may still run elsewhere (another panel).
        s->state.state = RunState::Unknown;
        s->state.image = p.program;
        s->restartTimer.setSingleShot(true);
        s->killTimer.setSingleShot(true);
        s->settleTimer.setSingleShot(true);
        s->settleTimer.setInterval(kSettleMs);
        Supervised *raw = s.get();
        connect(&s->settleTimer, &QTimer::timeout, this, [this, raw] {
            raw->settling = false;
            checkPending();
        });
        connect(&s->restartTimer, &QTimer::timeout, this, [this, raw] {
            if (raw->wanted)
                startOne(*raw);
        });
        connect(&s->killTimer, &QTimer::timeout, this, [this, raw] {
            if (raw->process && raw->process->state() != QProcess::NotRunning) {
                emit outputLine(
                    raw->spec.name,
                    QStringLiteral("pilothouse: %1 did not stop within %2 s; killing it")
                        .arg(raw->spec.name)
                        .arg(raw->spec.stopGraceMs / 1000.0));
                signalChildGroup(raw->process->processId(), SIGKILL);
            }
        });
        m_processes.push_back(std::move(s));
    }
}

NativeDriver::~NativeDriver()
{
    // The panel is going away: stop children now, politely first.
    for (auto &s : m_processes) {
        s->wanted = false;
        if (s->process && s->process->state() != QProcess::NotRunning) {
            s->process->disconnect(this);
            signalChildGroup(s->process->processId(), SIGTERM);
        }
    }
    for (auto &s : m_processes) {
        if (s->process && s->process->state() != QProcess::NotRunning) {
            const qint64 pid = s->process->processId();
            if (!s->process->waitForFinished(std::max(1000, s->spec.stopGraceMs))) {
                signalChildGroup(pid, SIGKILL);
                s->process->waitForFinished(2000);
            }
            releaseChild(pid); // onExited no longer runs: it was disconnected
        }
    }
}

void NativeDriver::setRestartBackoff(int firstMs, int maxMs, int resetAfterMs)
{
    m_firstBackoffMs = firstMs;
    m_maxBackoffMs = maxMs;
    m_resetAfterMs = resetAfterMs;
}

QString NativeDriver::resolveProgram(const QString &program)
{
    if (program.contains(QLatin1Char('/')))
        return QFileInfo(program).isExecutable() ? program : QString();
    QStringList dirs;
    if (QCoreApplication::instance())
        dirs << QCoreApplication::applicationDirPath();
    for (const QString &d :
         QStringLiteral(PILOTHOUSE_BIN_DIRS).split(QLatin1Char(';'), Qt::SkipEmptyParts))
        dirs << d;
    for (const QString &d : dirs) {
        const QFileInfo fi(QDir(d).filePath(program));
        if (fi.isFile() && fi.isExecutable())
            return fi.absoluteFilePath();
    }
    return findProgram(program, QProcessEnvironment::systemEnvironment());
}

QList<ServiceState> NativeDriver::states() const
{
    QList<ServiceState> out;
    for (const auto &s : m_processes)
        out << s->state;
    return out;
}

NativeDriver::Supervised *NativeDriver::find(const QString &name)
{
    for (auto &s : m_processes) {
        if (s->spec.name == name)
            return s.get();
    }
    return nullptr;
}

void NativeDriver::publish()
{
    emit statesChanged(states());
}

void NativeDriver::up()
{
    QList<Supervised *> all;
    for (auto &s : m_processes)
        all << s.get();
    begin(StackOperation::Up, {}, all, false, true);
}

void NativeDriver::down()
{
    QList<Supervised *> all;
    for (auto &s : m_processes)
        all << s.get();
    begin(StackOperation::Down, {}, all, true, false);
}

void NativeDriver::restart(const QString &service)
{
    QList<Supervised *> targets;
    if (service.isEmpty()) {
        for (auto &s : m_processes)
            targets << s.get();
    } else if (Supervised *s = find(service)) {
        targets << s;
    }
    begin(StackOperation::Restart, service, targets, true, true);
}

void NativeDriver::stopService(const QString &service)
{
    Supervised *s = find(service);
    begin(StackOperation::StopService, service,
          s ? QList<Supervised *> { s } : QList<Supervised *> {}, true, false);
}

void NativeDriver::startService(const QString &service)
{
    Supervised *s = find(service);
    begin(StackOperation::StartService, service,
          s ? QList<Supervised *> { s } : QList<Supervised *> {}, false, true);
}

void NativeDriver::pull()
{
    // Nothing to download for local processes: succeed without doing anything.
    begin(StackOperation::Pull, {}, {}, false, false);
}

void NativeDriver::cancel()
{
    if (!m_pending)
        return;
    // Leave each process in a known state: whatever was started keeps running
    // under supervision, whatever was stopping is stopped.
    m_pending->start = false;
    finishPending(OperationResult::Outcome::Cancelled,
                  QStringLiteral("%1 was cancelled").arg(toString(m_pending->op)));
}

void NativeDriver::begin(StackOperation op, const QString &service, QList<Supervised *> targets,
                         bool stop, bool start)
{
    if (m_pending) {
        refuseLater(
            op, service,
            QStringLiteral("another operation (%1) is still running in \"%2\"; wait for it or "
                           "cancel it")
                .arg(toString(m_pending->op), m_env.name));
        return;
    }
    if (!service.isEmpty() && targets.isEmpty()) {
        QStringList names;
        for (const auto &s : m_processes)
            names << s->spec.name;
        refuseLater(op, service,
                    QStringLiteral("\"%1\" has no process called \"%2\" (it has: %3)")
                        .arg(m_env.name, service, names.join(u", ")));
        return;
    }
    m_pending = Pending { op, service, targets, start, stop, {} };
    emit operationStarted(op, service);
    if (stop) {
        for (Supervised *s : targets)
            stopOne(*s);
    } else if (start) {
        m_pending->start = false;
        for (Supervised *s : targets)
            startOne(*s);
    }
    publish();
    QMetaObject::invokeMethod(this, &NativeDriver::checkPending, Qt::QueuedConnection);
}

void NativeDriver::startOne(Supervised &s)
{
    s.wanted = true;
    s.restartTimer.stop();
    if (s.process && s.process->state() != QProcess::NotRunning) {
        // Still stopping (a cancelled stop): start again once it has exited.
        if (s.state.state == RunState::Stopping)
            s.startAfterExit = true;
        return;
    }
    const QString program = resolveProgram(s.spec.program);
    if (program.isEmpty()) {
        s.wanted = false;
        s.state.state = RunState::Exited;
        s.state.detail = QStringLiteral("%1 not found: build it (make) or give an absolute path "
                                        "in the environment's processes[].program")
                             .arg(s.spec.program);
        if (m_pending)
            m_pending->failures << s.state.detail;
        publish();
        return;
    }
    s.process = std::make_unique<QProcess>();
    QProcess *p = s.process.get();
    QProcessEnvironment pe = QProcessEnvironment::systemEnvironment();
    for (auto it = s.spec.environment.cbegin(); it != s.spec.environment.cend(); ++it)
        pe.insert(it.key(), it.value());
    p->setProcessEnvironment(pe);
    p->setProgram(program);
    p->setArguments(s.spec.arguments);
    p->setStandardInputFile(QProcess::nullDevice());
    p->setProcessChannelMode(QProcess::MergedChannels);
    if (!s.spec.workingDirectory.isEmpty())
        p->setWorkingDirectory(s.spec.workingDirectory);
    // Ctrl+C in the panel's terminal reaches the panel, which then stops the
    // child in order; if the panel dies without cleaning up, the child ends
    // with it (core/childprocess.h).
    bindToOwner(*p);
    Supervised *raw = &s;
    connect(p, &QProcess::readyReadStandardOutput, this, [this, raw] { readOutput(*raw); });
    connect(p, &QProcess::started, this, [this, raw, p] {
        raw->uptime.start();
        raw->state.state = RunState::Running;
        raw->state.pid = p->processId();
        raw->state.container = QStringLiteral("pid %1").arg(raw->state.pid);
        raw->state.startedAt = QDateTime::currentDateTimeUtc();
        raw->state.exitCode = -1;
        raw->state.detail.clear();
        raw->recent.clear();
        raw->settling = true;
        raw->settleTimer.start();
        publish();
    });
    connect(p, &QProcess::errorOccurred, this, [this, raw](QProcess::ProcessError error) {
        if (error != QProcess::FailedToStart)
            return;
        releaseChild(raw->startedPid); // it registered before its exec failed
        raw->wanted = false;
        raw->state.state = RunState::Exited;
        raw->state.detail = QStringLiteral("cannot start %1: %2")
                                .arg(raw->spec.program, raw->process->errorString());
        if (m_pending)
            m_pending->failures << raw->state.detail;
        publish();
        checkPending();
    });
    connect(p, &QProcess::finished, this,
            [this, raw](int code, QProcess::ExitStatus status) { onExited(*raw, code, status); });
    s.state.state = RunState::Starting;
    // Progress of what the user asked for; a restart after a crash is the
    // notices' news (crashed, then recovered), not a status line that would
    // say "Starting" long after it is up.
    if (m_pending)
        emit progress(QStringLiteral("Starting %1").arg(s.spec.name));
    p->start();
    s.startedPid = p->processId();
}

void NativeDriver::stopOne(Supervised &s)
{
    s.wanted = false;
    s.startAfterExit = false;
    s.settling = false;
    s.settleTimer.stop();
    s.restartTimer.stop();
    if (!s.process || s.process->state() == QProcess::NotRunning) {
        if (s.state.state == RunState::Restarting)
            s.state.state = RunState::Exited;
        return;
    }
    emit progress(QStringLiteral("Stopping %1").arg(s.spec.name));
    s.state.state = RunState::Stopping;
    // The whole group: whatever it started stops with it.
    signalChildGroup(s.process->processId(), SIGTERM);
    s.killTimer.start(s.spec.stopGraceMs);
}

void NativeDriver::readOutput(Supervised &s)
{
    s.partial += s.process->readAllStandardOutput();
    qsizetype start = 0;
    for (;;) {
        const qsizetype nl = s.partial.indexOf('\n', start);
        if (nl < 0)
            break;
        const QString line = QString::fromUtf8(s.partial.mid(start, nl - start));
        s.recent.push(line);
        emit outputLine(s.spec.name, line);
        start = nl + 1;
    }
    s.partial.remove(0, start);
    if (s.partial.size() > (1 << 20)) { // a line without end: pass it on in pieces
        emit outputLine(s.spec.name, QString::fromUtf8(s.partial));
        s.partial.clear();
    }
}

namespace {

// "exited (exit code 3)", "killed (SIGKILL)", "killed (SIGSEGV)": what a
// person reads, not a raw number whose meaning depends on how it ended.
QString describeExit(QProcess::ExitStatus status, int exitCode)
{
    if (status == QProcess::CrashExit) {
        const char *name = exitCode > 0 ? ::sigabbrev_np(exitCode) : nullptr;
        return name ? QStringLiteral("killed (SIG%1)").arg(QLatin1String(name))
                    : QStringLiteral("crashed");
    }
    return QStringLiteral("exited (exit code %1)").arg(exitCode);
}

} // namespace

void NativeDriver::onExited(Supervised &s, int exitCode, QProcess::ExitStatus status)
{
    readOutput(s);
    s.killTimer.stop();
    releaseChild(s.startedPid);
    s.state.pid = 0;
    s.state.finishedAt = QDateTime::currentDateTimeUtc();
    s.state.exitCode = status == QProcess::CrashExit ? -1 : exitCode;
    const qint64 ranMs = s.uptime.isValid() ? s.uptime.elapsed() : 0;
    if (s.settling) {
        // It did not even stay up: the start failed (bad configuration, port in use...).
        s.settling = false;
        s.settleTimer.stop();
        if (m_pending && m_pending->targets.contains(&s)) {
            s.wanted = false; // a start that failed is not retried: the user sees why
            m_pending->failures << QStringLiteral("%1 %2 right after it started%3")
                                       .arg(s.spec.name, describeExit(status, exitCode))
                                       .arg(s.recent.isEmpty() ? QString()
                                                               : QStringLiteral(":\n  ") +
                                                    s.recent.toList().join(QStringLiteral("\n  ")));
        }
    }
    s.process.release()->deleteLater();
    if (s.startAfterExit) {
        s.startAfterExit = false;
        s.state.state = RunState::Exited;
        if (s.wanted) {
            startOne(s);
            publish();
            return;
        }
    }
    if (s.wanted) {
        // It stopped on its own: a crash. Try again, waiting longer each time.
        s.backoffMs = ranMs >= m_resetAfterMs || s.backoffMs == 0
            ? m_firstBackoffMs
            : std::min(s.backoffMs * 2, m_maxBackoffMs);
        s.state.state = RunState::Restarting;
        s.state.restartCount += 1;
        s.state.detail = QStringLiteral("%1; restarting in %2 s")
                             .arg(describeExit(status, exitCode))
                             .arg(s.backoffMs / 1000.0);
        emit outputLine(s.spec.name,
                        QStringLiteral("pilothouse: %1 %2").arg(s.spec.name, s.state.detail));
        s.restartTimer.start(s.backoffMs);
    } else {
        s.state.state = RunState::Exited;
        s.state.detail.clear();
        s.backoffMs = 0;
    }
    publish();
    checkPending();
}

void NativeDriver::checkPending()
{
    if (!m_pending)
        return;
    Pending &p = *m_pending;
    if (p.stopping) {
        for (Supervised *s : p.targets) {
            if (s->process && s->process->state() != QProcess::NotRunning)
                return;
        }
        p.stopping = false;
        if (p.start) {
            p.start = false;
            for (Supervised *s : p.targets)
                startOne(*s);
            publish();
            return checkPending();
        }
    }
    for (Supervised *s : p.targets) {
        if (s->wanted && (s->state.state == RunState::Starting || s->startAfterExit || s->settling))
            return;
    }
    if (!p.failures.isEmpty()) {
        QString message = p.failures.join(QLatin1Char('\n'));
        if (p.op == StackOperation::Up) {
            // All or nothing: what this start did bring up goes down again, so
            // a failed `up` leaves the environment as it found it.
            QStringList stopped;
            for (Supervised *s : p.targets) {
                if (s->wanted) {
                    stopOne(*s);
                    stopped << s->spec.name;
                }
            }
            if (!stopped.isEmpty())
                message += QStringLiteral("\nstopped again: %1").arg(stopped.join(u", "));
        }
        finishPending(OperationResult::Outcome::Failed, message);
    } else
        finishPending(OperationResult::Outcome::Succeeded, {});
}

void NativeDriver::finishPending(OperationResult::Outcome outcome, const QString &message)
{
    if (!m_pending)
        return;
    const OperationResult r { m_pending->op, m_pending->service, outcome, message };
    m_pending.reset();
    emit operationFinished(r);
}

} // namespace pilothouse
