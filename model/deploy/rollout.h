#pragma once

#include "core/result.h"
#include "drivers/command.h"

#include <QObject>
#include <QPointer>
#include <QString>
#include <QStringList>
#include <functional>
#include <memory>

// How the services of an image are moved to another tag on one engine. The
// Deployer decides when, and judges the result with its own health gate; a
// strategy only changes what runs. One per engine kind behind this
// interface: compose recreate today; start-first and Swarm plug in here
// without touching the gate or the history.
namespace pilothouse {

class StackSession;

struct RolloutRequest
{
    QStringList services; // every service that runs the image, moved together
    QString tag; // present on the engine already (pulled and tagged)
    bool reverting = false;
};

class RolloutStrategy
{
public:
    virtual ~RolloutStrategy() = default;
    // "recreate", for the history and messages.
    virtual QString name() const = 0;
    // What a person should know before confirming (empty: nothing).
    virtual QString caveat() const = 0;
    // Starts moving the services; `done` follows once, with why not on failure.
    virtual void roll(const RolloutRequest &request, std::function<void(Outcome)> done) = 0;
    // Stops a roll in progress; its `done` follows with an error.
    virtual void cancel() = 0;
};

// compose recreate: `compose up --detach --no-deps --no-build` of the
// services with the tag in the compose variables (v2: `--pull never`, what
// was pinned and tagged is what runs). The old containers stop before the
// new ones start: a short outage.
class ComposeRecreate final : public RolloutStrategy
{
public:
    ComposeRecreate(StackSession *session, QObject *context);
    ~ComposeRecreate() override;
    QString name() const override { return QStringLiteral("recreate"); }
    QString caveat() const override;
    void roll(const RolloutRequest &request, std::function<void(Outcome)> done) override;
    void cancel() override;

private:
    QPointer<StackSession> m_session;
    QPointer<QObject> m_context;
    QPointer<Command> m_command;
    bool m_cancelled = false;
};

// The strategy for an environment's engine.
std::unique_ptr<RolloutStrategy> makeRolloutStrategy(StackSession *session, QObject *context);

} // namespace pilothouse
