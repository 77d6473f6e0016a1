#pragma once

#include "engine/servicestate.h"

#include <QMetaType>
#include <QObject>

// Start, stop and restart a stack. Calls return at once; what happens is
// reported by signals. One operation at a time per driver.
namespace pilothouse {

enum class StackOperation {
    Up,
    Down,
    Restart,
    StopService,
    StartService,
    Pull,
    Build,
    Scale,
    Node
};
QString toString(StackOperation op);

struct OperationResult
{
    enum class Outcome { Succeeded, Failed, Cancelled };
    StackOperation operation = StackOperation::Up;
    QString service; // empty: the whole stack
    Outcome outcome = Outcome::Succeeded;
    QString message; // on failure: what went wrong and what to do
    // On failure, when a program failed: its command line and raw output,
    // for a Details view (the message holds only what a person acts on).
    QString details {};
    bool ok() const { return outcome == Outcome::Succeeded; }
};

class StackDriver : public QObject
{
    Q_OBJECT
public:
    using QObject::QObject;

    virtual void up() = 0;
    virtual void down() = 0;
    virtual void restart(const QString &service = {}) = 0;
    virtual void stopService(const QString &service) = 0;
    virtual void startService(const QString &service) = 0;
    virtual void pull() = 0;
    virtual void cancel() = 0;
    virtual bool isBusy() const = 0;

protected:
    // Says no to a call without starting anything; reported like any outcome,
    // after the call has returned.
    void refuseLater(StackOperation operation, const QString &service, const QString &message)
    {
        const OperationResult r { operation, service, OperationResult::Outcome::Failed, message };
        QMetaObject::invokeMethod(
            this, [this, r] { emit operationFinished(r); }, Qt::QueuedConnection);
    }

signals:
    void operationStarted(pilothouse::StackOperation operation, const QString &service);
    void progress(const QString &message);
    // A line of output from the tool (compose) or a supervised process (native).
    void outputLine(const QString &service, const QString &line);
    void operationFinished(const pilothouse::OperationResult &result);
};

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::OperationResult)
