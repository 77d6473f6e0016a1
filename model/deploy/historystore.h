#pragma once

#include "deploy/history.h"

#include <QObject>
#include <QPointer>
#include <QThread>
#include <functional>
#include <memory>

// The deployment history on a thread of its own, so the window never waits on
// SQLite (another process's write can hold the file for seconds). Calls run in
// the order they are made; each answer comes back on the caller's thread, to
// the context object, and is dropped if that object is gone.
namespace pilothouse {

class HistoryStore final : public QObject
{
    Q_OBJECT
public:
    explicit HistoryStore(QObject *parent = nullptr);
    // Finishes the calls already made (a deployment's last write), then stops.
    ~HistoryStore() override;

    void open(const QString &path, DeploymentHistory::Mode mode, QObject *context,
              std::function<void(Expected<int>)> done);
    void begin(const Deployment &d, QObject *context, std::function<void(Expected<qint64>)> done);
    void finish(qint64 id, Deployment::Outcome outcome, const QString &reason,
                const QStringList &logLines, int toSchema, QObject *context,
                std::function<void(Outcome)> done);
    void list(const QString &environment, int limit, QObject *context,
              std::function<void(Expected<QList<Deployment>>)> done);

    void recordBuild(const Build &b, QObject *context, std::function<void(Expected<qint64>)> done);
    void builds(const QString &repository, int limit, QObject *context,
                std::function<void(Expected<QList<Build>>)> done);

    // Whether open() succeeded (known once its answer came back).
    bool isOpen() const { return m_open; }

signals:
    // A deployment began or ended (through this store): views reload.
    void changed();

private:
    template<typename R>
    void run(QObject *context, std::function<R(DeploymentHistory &)> work,
             std::function<void(R)> done);

    QThread m_thread;
    QObject *m_worker = nullptr; // lives in m_thread
    std::unique_ptr<DeploymentHistory> m_history; // used only in m_thread
    bool m_open = false;
};

} // namespace pilothouse
