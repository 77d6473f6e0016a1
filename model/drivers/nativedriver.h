#pragma once

#include "drivers/stackdriver.h"
#include "env/environment.h"
#include "monitor/ringbuffer.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QTimer>
#include <memory>
#include <vector>

namespace pilothouse {

// Supervises a native environment's processes (for `local`: deckhand on
// SQLite): captures their output, restarts one that crashes with backoff,
// stops them with SIGTERM and then SIGKILL after the grace period. Children
// get SIGTERM from the kernel if the panel dies, so none is left behind.
class NativeDriver final : public StackDriver
{
    Q_OBJECT
public:
    explicit NativeDriver(Environment env, QObject *parent = nullptr);
    ~NativeDriver() override; // stops every process

    void up() override;
    void down() override;
    void restart(const QString &service = {}) override;
    void stopService(const QString &service) override;
    void startService(const QString &service) override;
    void pull() override;
    void cancel() override;
    bool isBusy() const override { return m_pending.has_value(); }

    QList<ServiceState> states() const;
    // Backoff after a crash: first delay, doubled per crash up to the maximum;
    // a process that ran longer than the reset time starts from the first again.
    void setRestartBackoff(int firstMs, int maxMs, int resetAfterMs = 10000);

    // Where a bare program name is looked for: next to the running binary,
    // the build tree, then PATH. Empty when not found.
    static QString resolveProgram(const QString &program);

signals:
    void statesChanged(const QList<pilothouse::ServiceState> &states);

private:
    struct Supervised
    {
        NativeProcess spec;
        std::unique_ptr<QProcess> process;
        qint64 startedPid = 0; // as forked, to release its group whatever happens
        bool wanted = false; // the user wants it running
        bool startAfterExit = false; // started while a stop was still under way
        ServiceState state;
        QTimer restartTimer;
        QTimer killTimer;
        QTimer settleTimer; // a start counts once the process stayed up this long
        bool settling = false;
        RingBuffer<QString> recent { 8 }; // last output lines, for "exited right away"

        QElapsedTimer uptime;
        int backoffMs = 0;
        QByteArray partial;
    };

    Supervised *find(const QString &name);
    void startOne(Supervised &s);
    void stopOne(Supervised &s);
    void onExited(Supervised &s, int exitCode, QProcess::ExitStatus status);
    void readOutput(Supervised &s);
    void begin(StackOperation op, const QString &service, QList<Supervised *> targets, bool stop,
               bool start);
    void checkPending();
    void finishPending(OperationResult::Outcome outcome, const QString &message);
    void publish();

    Environment m_env;
    std::vector<std::unique_ptr<Supervised>> m_processes;
    struct Pending
    {
        StackOperation op;
        QString service;
        QList<Supervised *> targets;
        bool start = false; // after stopping (restart), start again
        bool stopping = false;
        QStringList failures;
    };
    std::optional<Pending> m_pending;
    int m_firstBackoffMs = 500;
    int m_maxBackoffMs = 30000;
    int m_resetAfterMs = 10000;
    static constexpr int kSettleMs = 500;
};

} // namespace pilothouse
