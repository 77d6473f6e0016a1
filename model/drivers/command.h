#pragma once

#include <QByteArray>
#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QStringList>
#include <QTimer>
#include <optional>

// One external program run as an argument list (never a shell string), with a
// timeout, cancellation, and its output as lines while it runs.
namespace pilothouse {

struct CommandSpec
{
    QString program; // absolute path, or a name looked up on PATH at start
    QStringList arguments;
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    QString workingDirectory;
    int timeoutMs = 120000; // 0: none (followers such as `docker events`)
    // Followers stream lines for as long as they run: keep none of them, only
    // the last of stderr (why it ended).
    bool keepOutput = true;
    QString description; // "docker compose up", for messages
    // Binary streams: stdin read from this file, stdout written to this one
    // (created 0600, truncated) instead of being kept; empty: /dev/null in,
    // stdout kept as text.
    QString inputFile;
    QString outputFile;
    // Bytes written to stdin, which is then closed (a secret's value for
    // `docker secret create NAME -`: never an argument or a file). Wins over
    // inputFile.
    QByteArray inputData;

    QString display() const; // program and arguments, for logs (no secrets go in arguments)
};

struct CommandResult
{
    enum class End { Exited, FailedToStart, Crashed, TimedOut, Cancelled };
    End end = End::Exited;
    int exitCode = -1;
    QString output; // stdout, the last part when very long
    QString errorOutput; // stderr, the last part when very long
    QString startError; // why it could not start
    qint64 elapsedMs = 0;

    bool ok() const { return end == End::Exited && exitCode == 0; }
};

// How a program ended and what it printed, for a Details view: the command
// line, the end (exit code, timeout, ...), stderr and stdout. Every value of
// a secret variable in the command's environment (*_PASSWORD, *_SECRET,
// *_TOKEN) and every string in `secrets` is shown as ***.
QString commandDetails(const CommandSpec &spec, const CommandResult &result,
                       const QStringList &secrets = {});

class Command final : public QObject
{
    Q_OBJECT
public:
    explicit Command(CommandSpec spec, QObject *parent = nullptr);
    ~Command() override;

    const CommandSpec &spec() const { return m_spec; }
    void start();
    // Stops it and what it started (SIGTERM to its process group, then SIGKILL
    // after a short grace); finished() reports Cancelled.
    void cancel();
    // Stops it without hearing back: no more signals, and it deletes itself.
    void dismiss();
    bool isRunning() const;
    // Output is kept up to this many bytes per stream (the tail).
    static constexpr qsizetype kMaxKeptBytes = 1 << 20;

signals:
    void outputLine(const QString &line, bool isStderr);
    void finished(const pilothouse::CommandResult &result);

private:
    void readStream(QProcess::ProcessChannel channel);
    void stopWith(CommandResult::End reason);
    void finish(CommandResult::End end, int exitCode);

    CommandSpec m_spec;
    QProcess m_process;
    QTimer m_timeout;
    QTimer m_killTimer;
    QElapsedTimer m_clock;
    QByteArray m_partial[2];
    QByteArray m_kept[2];
    std::optional<CommandResult::End> m_stopReason;
    qint64 m_pid = 0; // once started; kept after it exits, to release its group
    bool m_done = false;
    QString m_startError; // set before the process could be started
};

// Finds a program on PATH (as given in env) without running anything.
QString findProgram(const QString &name, const QProcessEnvironment &env);

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::CommandResult)
