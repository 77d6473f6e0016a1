#include "drivers/command.h"

#include "core/childprocess.h"
#include "env/dotenv.h"

#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>
#include <algorithm>
#include <csignal>

namespace pilothouse {

namespace {
constexpr int kKillGraceMs = 3000;
}

QString CommandSpec::display() const
{
    QStringList parts { program };
    for (const QString &a : arguments)
        parts << (a.contains(QLatin1Char(' ')) ? QLatin1Char('\'') + a + QLatin1Char('\'') : a);
    return parts.join(QLatin1Char(' '));
}

QString commandDetails(const CommandSpec &spec, const CommandResult &result,
                       const QStringList &secrets)
{
    QString text = QStringLiteral("$ ") + spec.display() + QLatin1Char('\n');
    switch (result.end) {
    case CommandResult::End::Exited:
        text += QStringLiteral("exit code %1").arg(result.exitCode);
        break;
    case CommandResult::End::FailedToStart:
        text += QStringLiteral("could not start: ") + result.startError;
        break;
    case CommandResult::End::Crashed:
        text += QStringLiteral("crashed");
        break;
    case CommandResult::End::TimedOut:
        text += QStringLiteral("stopped after %1 s without an end").arg(result.elapsedMs / 1000);
        break;
    case CommandResult::End::Cancelled:
        text += QStringLiteral("cancelled");
        break;
    }
    text += QStringLiteral(" after %1 s\n").arg(result.elapsedMs / 1000.0, 0, 'f', 1);
    if (!result.errorOutput.trimmed().isEmpty())
        text +=
            QStringLiteral("\n--- stderr ---\n") + result.errorOutput.trimmed() + QLatin1Char('\n');
    if (!result.output.trimmed().isEmpty())
        text += QStringLiteral("\n--- stdout ---\n") + result.output.trimmed() + QLatin1Char('\n');
    QStringList hidden = secrets;
    for (const QString &name : spec.environment.keys()) {
        if (isSecretVariable(name))
            hidden << spec.environment.value(name);
    }
    // Longest first: a secret that contains another is hidden whole.
    std::sort(hidden.begin(), hidden.end(),
              [](const QString &a, const QString &b) { return a.size() > b.size(); });
    for (const QString &secret : std::as_const(hidden)) {
        if (secret.size() >= 4)
            text.replace(secret, QStringLiteral("***"));
    }
    return text;
}

QString findProgram(const QString &name, const QProcessEnvironment &env)
{
    if (name.contains(QLatin1Char('/')))
        return QFileInfo(name).isExecutable() ? name : QString();
    const QStringList path =
        env.value(QStringLiteral("PATH")).split(QLatin1Char(':'), Qt::SkipEmptyParts);
    return QStandardPaths::findExecutable(name, path);
}

Command::Command(CommandSpec spec, QObject *parent)
    : QObject(parent)
    , m_spec(std::move(spec))
{
    qRegisterMetaType<pilothouse::CommandResult>();
    m_timeout.setSingleShot(true);
    m_killTimer.setSingleShot(true);
    connect(&m_timeout, &QTimer::timeout, this, [this] { stopWith(CommandResult::End::TimedOut); });
    connect(&m_killTimer, &QTimer::timeout, this,
            [this] { signalChildGroup(m_process.processId(), SIGKILL); });
    connect(&m_process, &QProcess::started, this, [this] { m_pid = m_process.processId(); });
    connect(&m_process, &QProcess::readyReadStandardOutput, this,
            [this] { readStream(QProcess::StandardOutput); });
    connect(&m_process, &QProcess::readyReadStandardError, this,
            [this] { readStream(QProcess::StandardError); });
    connect(&m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
        if (error == QProcess::FailedToStart) {
            releaseChild(m_pid); // it registered before its exec failed
            finish(CommandResult::End::FailedToStart, -1);
        }
    });
    connect(&m_process, &QProcess::finished, this,
            [this](int exitCode, QProcess::ExitStatus status) {
                releaseChild(m_pid);
                readStream(QProcess::StandardOutput);
                readStream(QProcess::StandardError);
                for (int c = 0; c < 2; ++c) {
                    if (!m_partial[c].isEmpty()) {
                        emit outputLine(QString::fromUtf8(m_partial[c]), c == 1);
                        m_partial[c].clear();
                    }
                }
                if (m_stopReason)
                    finish(*m_stopReason, exitCode);
                else
                    finish(status == QProcess::CrashExit ? CommandResult::End::Crashed
                                                         : CommandResult::End::Exited,
                           exitCode);
            });
}

Command::~Command()
{
    if (m_process.state() != QProcess::NotRunning) {
        m_done = true; // no signals from a dying object
        signalChildGroup(m_process.processId(), SIGKILL);
        m_process.waitForFinished(1000);
        releaseChild(m_pid);
    }
}

void Command::start()
{
    m_clock.start();
    m_process.setProcessEnvironment(m_spec.environment);
    if (!m_spec.workingDirectory.isEmpty())
        m_process.setWorkingDirectory(m_spec.workingDirectory);
    const QString program = findProgram(m_spec.program, m_spec.environment);
    if (program.isEmpty()) {
        m_process.setProgram(m_spec.program);
        // Report asynchronously, like a real start failure, so callers see one path.
        QMetaObject::invokeMethod(
            this, [this] { finish(CommandResult::End::FailedToStart, -1); }, Qt::QueuedConnection);
        return;
    }
    m_process.setProgram(program);
    m_process.setArguments(m_spec.arguments);
    if (m_spec.inputData.isNull())
        m_process.setStandardInputFile(m_spec.inputFile.isEmpty() ? QProcess::nullDevice()
                                                                  : m_spec.inputFile);
    if (!m_spec.outputFile.isEmpty()) {
        // Private before anything is written to it.
        QFile out(m_spec.outputFile);
        if (!out.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
            !out.setPermissions(QFile::ReadOwner | QFile::WriteOwner)) {
            m_startError =
                QStringLiteral("cannot write %1: %2").arg(m_spec.outputFile, out.errorString());
            QMetaObject::invokeMethod(
                this, [this] { finish(CommandResult::End::FailedToStart, -1); },
                Qt::QueuedConnection);
            return;
        }
        out.close();
        m_process.setStandardOutputFile(m_spec.outputFile, QIODevice::Append);
    }
    bindToOwner(m_process);
    if (m_spec.timeoutMs > 0)
        m_timeout.start(m_spec.timeoutMs);
    m_process.start();
    m_pid = m_process.processId(); // forked by now: known even if it never reports started
    if (!m_spec.inputData.isNull()) {
        // Small (a secret): the pipe takes it whole; then end of input.
        m_process.write(m_spec.inputData);
        m_process.closeWriteChannel();
    }
}

void Command::cancel()
{
    stopWith(CommandResult::End::Cancelled);
}

void Command::dismiss()
{
    QObject::disconnect(this, nullptr, nullptr, nullptr);
    cancel();
    deleteLater();
}

bool Command::isRunning() const
{
    return !m_done;
}

void Command::stopWith(CommandResult::End reason)
{
    if (m_done || m_stopReason)
        return;
    m_stopReason = reason;
    m_timeout.stop();
    if (m_process.state() == QProcess::NotRunning) {
        finish(reason, -1);
        return;
    }
    // The whole group: compose's plugin or ssh stop with it.
    signalChildGroup(m_process.processId(), SIGTERM);
    m_killTimer.start(kKillGraceMs);
}

void Command::readStream(QProcess::ProcessChannel channel)
{
    const int c = channel == QProcess::StandardError ? 1 : 0;
    m_process.setReadChannel(channel);
    const QByteArray data = m_process.readAll();
    if (data.isEmpty())
        return;
    // A tail is kept, trimmed only at twice the limit so the copy is amortised.
    if (m_spec.keepOutput) {
        m_kept[c] += data;
        if (m_kept[c].size() > 2 * kMaxKeptBytes)
            m_kept[c] = m_kept[c].right(kMaxKeptBytes);
    } else if (c == 1) {
        m_kept[c] = QByteArray(m_kept[c] + data).right(4096); // the reason it ended
    }
    m_partial[c] += data;
    qsizetype start = 0;
    for (;;) {
        const qsizetype nl = m_partial[c].indexOf('\n', start);
        if (nl < 0)
            break;
        QByteArray line = m_partial[c].mid(start, nl - start);
        if (line.endsWith('\r'))
            line.chop(1);
        emit outputLine(QString::fromUtf8(line), c == 1);
        start = nl + 1;
    }
    m_partial[c].remove(0, start);
}

void Command::finish(CommandResult::End end, int exitCode)
{
    if (m_done)
        return;
    m_done = true;
    m_timeout.stop();
    m_killTimer.stop();
    CommandResult r;
    r.end = end;
    r.exitCode = exitCode;
    r.output = QString::fromUtf8(m_kept[0].right(kMaxKeptBytes));
    r.errorOutput = QString::fromUtf8(m_kept[1].right(kMaxKeptBytes));
    r.elapsedMs = m_clock.isValid() ? m_clock.elapsed() : 0;
    if (end == CommandResult::End::FailedToStart) {
        r.startError = !m_startError.isEmpty() ? m_startError
            : findProgram(m_spec.program, m_spec.environment).isEmpty()
            ? QStringLiteral("%1 is not installed (not found on PATH)").arg(m_spec.program)
            : m_process.errorString();
    }
    emit finished(r);
}

} // namespace pilothouse
