#pragma once

#include "core/result.h"
#include "drivers/command.h"

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QStringList>
#include <functional>
#include <memory>

// How the services of an image are moved to another tag on one engine. The
// Deployer decides when, and judges the result with its own health gate; a
// strategy only changes what runs. One per engine kind behind this
// interface: compose recreate and start-first today; Swarm plugs in here
// without touching the gate or the history.
namespace pilothouse {

class StackSession;

struct RolloutRequest
{
    QStringList services; // every service that runs the image, moved together
    QString tag; // present on the engine already (pulled and tagged)
    bool reverting = false;
    // service -> every container it had before the change (running or not):
    // start-first keeps them through the gate, then removes exactly these.
    QHash<QString, QStringList> oldContainers;
};

class RolloutStrategy
{
public:
    virtual ~RolloutStrategy() = default;
    // "recreate", "start-first": for the history and messages.
    virtual QString name() const = 0;
    // What a person should know before confirming (empty: nothing).
    virtual QString caveat() const = 0;
    // Whether the old containers keep running while the new ones are gated:
    // then a passed gate is followed by finish() and a failed one (or a
    // cancel) by abandon(), instead of a roll back to the previous tag.
    virtual bool keepsOld() const { return false; }
    // Starts moving the services; `done` follows once, with why not on failure.
    virtual void roll(const RolloutRequest &request, std::function<void(Outcome)> done) = 0;
    // keepsOld(): the gate passed; the old containers are drained (SIGTERM,
    // what they are doing finishes) and removed.
    virtual void finish(std::function<void(Outcome)> done) { done(success()); }
    // keepsOld(): the new containers are stopped and removed; the old ones
    // never stopped.
    virtual void abandon(std::function<void(Outcome)> done)
    {
        done(Error { QStringLiteral("this strategy cannot abandon a rollout") });
    }
    // Stops a roll in progress; its `done` follows with an error.
    virtual void cancel() = 0;
};

// What the compose strategies share: `compose up --detach --no-deps
// --no-build` of the request's services with its tag in the compose
// variables (v2: `--pull never`, what was pinned and tagged is what runs),
// with a strategy's own options; and one command at a time, which cancel()
// stops.
class ComposeRollout : public RolloutStrategy
{
public:
    ComposeRollout(StackSession *session, QObject *context);
    ~ComposeRollout() override;
    void cancel() override;

protected:
    // `explain` may add to the sentence of a failed up (empty: nothing).
    void up(const RolloutRequest &request, const QStringList &options, const QString &what,
            std::function<void(Outcome)> done,
            std::function<QString(const CommandResult &)> explain = {});
    void run(const CommandSpec &spec, std::function<void(const CommandResult &)> done);

    QPointer<StackSession> m_session;
    QPointer<QObject> m_context;
    QPointer<Command> m_command;
    bool m_cancelled = false;
};

// compose recreate: `up --force-recreate`. The old containers stop before
// the new ones start: a short outage.
class ComposeRecreate final : public ComposeRollout
{
public:
    using ComposeRollout::ComposeRollout;
    QString name() const override { return QStringLiteral("recreate"); }
    QString caveat() const override;
    void roll(const RolloutRequest &request, std::function<void(Outcome)> done) override;
};

// compose start-first: `up --no-recreate --scale SERVICE=2N` starts N new
// containers with the new tag next to the N old ones (which keep serving
// behind the proxy); after the gate, the old ones get `docker stop`
// (SIGTERM, up to kDrainSeconds) and are removed. Abandoning removes the
// new ones instead. No outage, and a failed build costs none either.
class ComposeStartFirst final : public ComposeRollout
{
public:
    using ComposeRollout::ComposeRollout;
    QString name() const override { return QStringLiteral("start-first"); }
    QString caveat() const override { return {}; }
    bool keepsOld() const override { return true; }
    void roll(const RolloutRequest &request, std::function<void(Outcome)> done) override;
    void finish(std::function<void(Outcome)> done) override;
    void abandon(std::function<void(Outcome)> done) override;

    static constexpr int kDrainSeconds = 30; // an old container's time to finish after SIGTERM
    static constexpr int kAbandonSeconds = 10; // a new one's, when it is taken away

private:
    // Stops, then removes, the containers (gone ones are fine).
    void removeContainers(const QStringList &ids, int stopSeconds, const QString &what,
                          std::function<void(Outcome)> done);

    RolloutRequest m_request;
};

// The strategy the environment asks for (deploy.strategy).
std::unique_ptr<RolloutStrategy> makeRolloutStrategy(StackSession *session, QObject *context);

} // namespace pilothouse
