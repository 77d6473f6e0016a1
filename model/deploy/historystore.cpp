#include "deploy/historystore.h"

namespace pilothouse {

HistoryStore::HistoryStore(QObject *parent)
    : QObject(parent)
    , m_history(std::make_unique<DeploymentHistory>())
{
    m_thread.setObjectName(QStringLiteral("pilothouse-history"));
    m_worker = new QObject;
    m_worker->moveToThread(&m_thread);
    m_thread.start();
}

HistoryStore::~HistoryStore()
{
    // Queued after every call made so far: they all run first. The database
    // connection is closed on the thread that opened it.
    DeploymentHistory *history = m_history.release();
    QObject *worker = m_worker;
    QMetaObject::invokeMethod(worker, [history, worker] {
        delete history;
        delete worker;
        QThread::currentThread()->quit();
    });
    m_thread.wait();
}

template<typename R>
void HistoryStore::run(QObject *context, std::function<R(DeploymentHistory &)> work,
                       std::function<void(R)> done)
{
    DeploymentHistory *history = m_history.get();
    QPointer<QObject> ctx(context);
    QPointer<HistoryStore> self(this);
    QMetaObject::invokeMethod(
        m_worker, [history, work = std::move(work), done = std::move(done), ctx, self]() mutable {
            R result = work(*history);
            // Back through the store (same thread as the caller), where the
            // context can be checked without a race.
            if (!self)
                return;
            QMetaObject::invokeMethod(self.data(),
                                      [result = std::move(result), done = std::move(done), ctx] {
                                          if (ctx && done)
                                              done(result);
                                      });
        });
}

void HistoryStore::open(const QString &path, DeploymentHistory::Mode mode, QObject *context,
                        std::function<void(Expected<int>)> done)
{
    run<Expected<int>>(
        this, [path, mode](DeploymentHistory &h) { return h.open(path, mode); },
        [this, ctx = QPointer<QObject>(context), done](Expected<int> r) {
            m_open = r.ok();
            if (ctx && done)
                done(r);
        });
}

void HistoryStore::begin(const Deployment &d, QObject *context,
                         std::function<void(Expected<qint64>)> done)
{
    run<Expected<qint64>>(
        this, [d](DeploymentHistory &h) { return h.begin(d); },
        [this, ctx = QPointer<QObject>(context), done](Expected<qint64> r) {
            emit changed();
            if (ctx && done)
                done(r);
        });
}

void HistoryStore::finish(qint64 id, Deployment::Outcome outcome, const QString &reason,
                          const QStringList &logLines, int toSchema, QObject *context,
                          std::function<void(Outcome)> done)
{
    run<Outcome>(
        this,
        [=](DeploymentHistory &h) { return h.finish(id, outcome, reason, logLines, toSchema); },
        [this, ctx = QPointer<QObject>(context), done](Outcome r) {
            emit changed();
            if (ctx && done)
                done(r);
        });
}

void HistoryStore::list(const QString &environment, int limit, QObject *context,
                        std::function<void(Expected<QList<Deployment>>)> done)
{
    run<Expected<QList<Deployment>>>(
        context, [environment, limit](DeploymentHistory &h) { return h.list(environment, limit); },
        std::move(done));
}

void HistoryStore::recordBuild(const Build &b, QObject *context,
                               std::function<void(Expected<qint64>)> done)
{
    run<Expected<qint64>>(
        this, [b](DeploymentHistory &h) { return h.recordBuild(b); },
        [this, ctx = QPointer<QObject>(context), done](Expected<qint64> r) {
            emit changed();
            if (ctx && done)
                done(r);
        });
}

void HistoryStore::builds(const QString &repository, int limit, QObject *context,
                          std::function<void(Expected<QList<Build>>)> done)
{
    run<Expected<QList<Build>>>(
        context, [repository, limit](DeploymentHistory &h) { return h.builds(repository, limit); },
        std::move(done));
}

} // namespace pilothouse
