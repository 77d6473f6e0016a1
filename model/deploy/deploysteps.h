#pragma once

#include "core/result.h"
#include "deploy/history.h"
#include "engine/servicestate.h"
#include "env/environment.h"
#include "monitor/healthmonitor.h"

#include <QDateTime>
#include <QHash>
#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>
#include <optional>

// The decisions of a deployment, as pure functions over what was observed:
// facts in, a plan, a verdict or a sentence out. The Deployer (deployer.h)
// runs the side effects they call for (registry, pull, the rollout strategy,
// history) and nothing else decides; tests/model/tst_deploysteps.cpp checks
// every refusal, verdict, cancel point and conclusion without an engine.
namespace pilothouse {

// The steps a deployment goes through, in order (Reverting only after a
// failed gate or a cancel once something changed).
// Draining: start-first only, after the gate passed (the old containers
// finish what they do and are removed).
enum class DeployStep {
    Idle,
    Preparing,
    Pulling,
    Recreating,
    WaitingForHealth,
    Draining,
    Reverting
};
QString toString(DeployStep step);

// ---- Before anything changes

struct PreflightInput
{
    QString environment;
    EnvironmentKind kind = EnvironmentKind::Compose;
    QString repository;
    QStringList services; // image.services; the first is the primary one
    QString tag;
    bool deployerBusy = false;
    QString busyWith; // the tag of the deployment already running
    bool sessionBusy = false;
    bool engineKnown = false; // the watcher has seen the engine's state once
    QString engineError;
    QList<std::optional<ServiceState>> states; // one per service, same order
    // Tags from the engine (image.source "engine"): a build's identity is its
    // image id, which stands in for the registry digest everywhere.
    bool byImageId = false;
};

// What the run starts from once preflight agrees.
struct PreflightPlan
{
    QString fromTag;
    QString fromDigest;
    // The primary service's image: a revert brings every service back to it.
    QString previousImageId;
    QMap<QString, QString> previousContainers; // service -> container id
    // service -> "tag@digest" it runs (digest empty when unknown)
    QMap<QString, QString> running;
};

// Whether every service already runs `tag` at `digest` (nothing to deploy).
bool alreadyRunning(const PreflightPlan &plan, const QString &tag, const QString &digest);

// A plan, or the sentence that refuses (nothing changed).
Expected<PreflightPlan> preflight(const PreflightInput &in);

// The sentence for a deployment lock that could not be taken (problem: the
// lock cannot be written; else who holds it, described).
QString lockRefusal(const QString &environment, const QString &holder, const QString &problem);

// ---- The health gate

// What the gate waits for.
struct GateTarget
{
    QStringList services;
    QString tag; // every service must run this tag
    QString imageId; // deploy: the pinned image (empty: unknown); revert: the previous image
    bool reverting = false;
    // deploy: the containers being replaced; revert: the failed new ones.
    // A service still on one of these has not been changed yet.
    QMap<QString, QString> replacedContainers;
    QDateTime changedAt; // health answers older than this do not count
};

// One endpoint as the monitor saw it last.
struct EndpointSeen
{
    QString service;
    QString url;
    EndpointStatus status = EndpointStatus::Unknown;
    QString detail;
    QDateTime lastChecked;
    // The container it checks directly (start-first's gate); empty: the
    // service's endpoint as configured (through the proxy, if any).
    QString containerId = {};
};

enum class GateVerdict { Waiting, Passed, Failed };
struct GateJudgement
{
    GateVerdict verdict = GateVerdict::Waiting;
    QString why; // what it waits for, or why it failed
};

// One look at the services (states: one per target service, same order; a
// service with several containers is listed once for each).
GateJudgement judgeGate(const GateTarget &target, const QList<std::optional<ServiceState>> &states,
                        const QList<EndpointSeen> &endpoints);

// The gate over time: healthy without a break for windowMs passes; any
// failure, a break in the window or no health within timeoutMs fails.
enum class GateAction {
    KeepWaiting, // not healthy yet (ask the monitor again)
    StartWindow, // just turned healthy: hold it for the window
    Hold, // healthy, inside the window
    Pass,
    Fail
};
struct GateDecision
{
    GateAction action = GateAction::KeepWaiting;
    QString why;
};
// elapsedMs: since the change; healthyForMs: since it turned healthy, -1 when not yet.
GateDecision advanceGate(const GateJudgement &judgement, qint64 elapsedMs, qint64 healthyForMs,
                         int windowMs, int timeoutMs);

// ---- Cancel

// Where a run is when the user cancels.
enum class RunPhase {
    Planning, // working out a rollback, nothing started
    Resolving, // asking the registry or the backend, nothing changed
    Recording, // the history has not answered begin() yet
    Command, // a long step runs (pull, recreate)
    ShortCommand, // a step that must finish (tagging, reading logs)
    Gating,
    Reverting
};
enum class CancelAction {
    Ignore, // already asked, or nothing runs
    ConcludeNow, // nothing changed: end as cancelled at once
    StopCommand, // stop the running command; its step ends the run
    NoteOnly, // remembered; the step running looks at it when it ends
    RevertNow, // fail the gate on purpose: the previous tag comes back
    FinishRevert // the revert runs on, so the service ends on a known tag
};
CancelAction cancelAction(RunPhase phase, bool alreadyRequested);

// ---- How it ends

struct Conclusion
{
    DeploymentOutcome outcome = DeploymentOutcome::Failed;
    QString message;
};
// After a revert (ok: the previous tag passed its gate again).
Conclusion afterRevert(bool ok, bool cancelledByUser, const QString &failure,
                       const QString &revertError, const Deployment &d);
// The tag a later stack start should keep (empty: leave the pin as it is).
QString pinAfter(DeploymentOutcome outcome, bool changed, const Deployment &d);

// ---- Rollback plans

// What a rollback would do, for a confirmation before it starts.
struct RollbackPlan
{
    QString service; // the services, "api,worker"
    QString fromTag;
    QString fromDigest;
    QString toTag;
    QString toDigest; // as recorded when it last ran; empty: resolved from the registry
    int targetSchema = -1; // the schema version the target build expects; -1 unknown
    int databaseSchema = -1; // the database's migration version; -1 unknown
    // Set when the database is newer than the target build expects.
    QString schemaWarning;
};

// The history rows of these services (a row of the older form names only
// the primary service).
QList<Deployment> rowsFor(const QList<Deployment> &rows, const QStringList &services);
// From the services' rows (newest first) and what runs: the target (the
// previous success, or the tag asked for, with its recorded digest) and any
// schema warning; or why there is no target.
// buildSchemas: the schema each local build expects (the history's builds),
// for a tag never deployed here.
Expected<RollbackPlan> planRollback(const QList<Deployment> &rows, const QStringList &services,
                                    const ServiceState &running, const QString &toTag,
                                    int databaseSchema,
                                    const QHash<QString, int> &buildSchemas = {});

// ---- Tags

// A tag a person can pick, with the time its build is known by (the history
// or the engine's image; invalid when neither knows it).
struct ImageTag
{
    QString name;
    QDateTime builtAt;
};
// The one order of tags, for the window and pilothousectl alike: newest
// first by the known build time, then the tags without one by name
// (registries list tags lexically, which says nothing about age).
QList<ImageTag> orderTags(const QStringList &names, const QHash<QString, QDateTime> &times);
// The build times the history knows: when each tag first showed up here
// (deployed, or replaced by a deployment).
QHash<QString, QDateTime> tagTimes(const QList<Deployment> &rows);
// The creation times of the engine's local images, from the lines of
// `docker image ls --format '{{json .}}' REPOSITORY` (tag -> time).
QHash<QString, QDateTime> imageTimes(const QByteArray &lines);
// The tags of those lines (no "<none>"), as the engine lists them.
QStringList imageTags(const QByteArray &lines);

} // namespace pilothouse
