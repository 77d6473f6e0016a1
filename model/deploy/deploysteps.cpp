#include "deploy/deploysteps.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>

namespace pilothouse {

namespace {

QString seconds(qint64 ms)
{
    return QString::number(ms / 1000.0, 'g', 3) + QStringLiteral(" s");
}

// "api" or "api and worker" or "api, worker and jobs", for sentences.
QString named(const QStringList &services)
{
    if (services.size() <= 1)
        return services.value(0, QStringLiteral("the backend"));
    return QStringList(services.mid(0, services.size() - 1)).join(QStringLiteral(", ")) +
        QStringLiteral(" and ") + services.last();
}

} // namespace

QString toString(DeployStep step)
{
    switch (step) {
    case DeployStep::Idle:
        return QStringLiteral("idle");
    case DeployStep::Preparing:
        return QStringLiteral("preparing");
    case DeployStep::Pulling:
        return QStringLiteral("pulling");
    case DeployStep::Recreating:
        return QStringLiteral("recreating");
    case DeployStep::WaitingForHealth:
        return QStringLiteral("waiting for health");
    case DeployStep::Draining:
        return QStringLiteral("draining");
    case DeployStep::Reverting:
        return QStringLiteral("reverting");
    }
    return {};
}

Expected<PreflightPlan> preflight(const PreflightInput &in)
{
    const QString svc = named(in.services);
    if (in.deployerBusy)
        return Error { QStringLiteral("a deployment of %1 to %2 is already running in \"%3\"; "
                                      "wait for it or cancel it")
                           .arg(svc, in.busyWith, in.environment) };
    if (in.kind == EnvironmentKind::Swarm)
        return Error { QStringLiteral("\"%1\" is a swarm stack, and the panel does not move a "
                                      "swarm's image yet: change the tag in the stack's "
                                      "variables and Start (docker stack deploy) again, or use "
                                      "`docker service update --image` with the cluster's own "
                                      "rollback")
                           .arg(in.environment) };
    if (in.kind != EnvironmentKind::Compose)
        return Error { QStringLiteral("\"%1\" runs its processes natively; deployments need a "
                                      "compose environment with an image (image.repository and "
                                      "image.services)")
                           .arg(in.environment) };
    if (in.repository.isEmpty() || in.services.isEmpty())
        return Error { QStringLiteral("\"%1\" has no image to deploy: add image.repository and "
                                      "image.services to the environment")
                           .arg(in.environment) };
    if (!isValidImageTag(in.tag))
        return Error { QStringLiteral("\"%1\" is not a valid image tag (letters, digits, '_', "
                                      "'.', '-'; at most 128)")
                           .arg(in.tag) };
    if (in.sessionBusy)
        return Error { QStringLiteral("a stack operation is running in \"%1\"; wait for it to "
                                      "finish")
                           .arg(in.environment) };
    if (!in.engineKnown)
        return Error { QStringLiteral("the engine's state of \"%1\" is not known yet%2; try "
                                      "again in a moment")
                           .arg(in.environment,
                                in.engineError.isEmpty()
                                    ? QString()
                                    : QStringLiteral(" (%1)").arg(in.engineError)) };
    PreflightPlan plan;
    for (qsizetype i = 0; i < in.services.size(); ++i) {
        const QString &name = in.services.at(i);
        const std::optional<ServiceState> s = in.states.value(i);
        // A crash-looping service can be deployed over (that is when a
        // rollback is wanted most); one without a container cannot.
        if (!s || s->containerId.isEmpty())
            return Error { QStringLiteral("%1 has no container in \"%2\"; start the stack, then "
                                          "deploy")
                               .arg(name, in.environment) };
        if (i == 0 && (s->tag.isEmpty() || s->imageId.isEmpty()))
            return Error { QStringLiteral("%1 runs %2, which has no tag to come back to; deploy "
                                          "needs a service started from a tagged image")
                               .arg(name, s->image) };
        // A service of another image than the first one's cannot move with it.
        const auto repositoryOf = [](const QString &image) {
            const qsizetype colon = image.lastIndexOf(u':');
            return colon > image.lastIndexOf(u'/') ? image.left(colon) : image;
        };
        const std::optional<ServiceState> primary = in.states.value(0);
        if (i > 0 && primary && !s->image.isEmpty() &&
            repositoryOf(s->image) != repositoryOf(primary->image))
            return Error { QStringLiteral("%1 runs %2, not an image of %3 as %4 does; take it out "
                                          "of image.services of \"%5\"")
                               .arg(name, s->image, repositoryOf(primary->image),
                                    in.services.first(), in.environment) };
        plan.previousContainers.insert(name, s->containerId);
        const QString identity = in.byImageId ? s->imageId : s->digest;
        plan.running.insert(name, s->tag + QLatin1Char('@') + identity);
        if (i == 0) {
            plan.fromTag = s->tag;
            plan.fromDigest = identity;
            plan.previousImageId = s->imageId;
        }
    }
    return plan;
}

bool alreadyRunning(const PreflightPlan &plan, const QString &tag, const QString &digest)
{
    if (plan.running.isEmpty())
        return false;
    for (const QString &at : plan.running) {
        const qsizetype sep = at.indexOf(u'@');
        const QString runningTag = at.left(sep);
        const QString runningDigest = at.mid(sep + 1);
        if (runningTag != tag || (!runningDigest.isEmpty() && runningDigest != digest))
            return false;
    }
    return true;
}

QString lockRefusal(const QString &environment, const QString &holder, const QString &problem)
{
    if (!problem.isEmpty())
        return QStringLiteral("%1; nothing was changed").arg(problem);
    return QStringLiteral("another deployment to \"%1\" is running in %2; wait for it to finish")
        .arg(environment, holder);
}

GateJudgement judgeGate(const GateTarget &target, const QList<std::optional<ServiceState>> &states,
                        const QList<EndpointSeen> &endpoints)
{
    QStringList waiting;
    for (qsizetype i = 0; i < target.services.size(); ++i) {
        const QString &svc = target.services.at(i);
        const std::optional<ServiceState> s = states.value(i);
        const QString replaced = target.replacedContainers.value(svc);
        // The container of the image this gate waits for; the one it
        // replaces may still be listed for a moment.
        const bool wanted = s && s->tag == target.tag &&
            (replaced.isEmpty() || s->containerId != replaced) &&
            (!target.reverting || target.imageId.isEmpty() || s->imageId == target.imageId);
        if (!wanted) {
            waiting << QStringLiteral("%1 has no container of the new image yet").arg(svc);
            continue;
        }
        if (!target.reverting && !target.imageId.isEmpty() && !s->imageId.isEmpty() &&
            s->imageId != target.imageId)
            return { GateVerdict::Failed,
                     QStringLiteral("the engine started %1 with image %2, not the pinned %3 "
                                    "(does the compose file pull it again, e.g. pull_policy: "
                                    "always?)")
                         .arg(svc, s->imageId.left(19), target.imageId.left(19)) };
        switch (s->state) {
        case RunState::Exited:
        case RunState::Dead:
            return { GateVerdict::Failed,
                     QStringLiteral("%1 exited (exit code %2)").arg(svc).arg(s->exitCode) };
        case RunState::Restarting:
            return { GateVerdict::Failed,
                     QStringLiteral("%1 is restarting (exit code %2): it keeps crashing")
                         .arg(svc)
                         .arg(s->exitCode) };
        default:
            break;
        }
        if (s->restartCount > 0)
            return { GateVerdict::Failed,
                     QStringLiteral("%1 restarted %2 time(s) (last exit code %3)")
                         .arg(svc)
                         .arg(s->restartCount)
                         .arg(s->exitCode) };
        if (s->health == EngineHealth::Unhealthy)
            return { GateVerdict::Failed,
                     QStringLiteral("the engine's healthcheck says %1 is unhealthy%2")
                         .arg(svc,
                              s->detail.isEmpty() ? QString() : QStringLiteral(": ") + s->detail) };
        if (s->state != RunState::Running)
            waiting << QStringLiteral("%1 is %2").arg(svc, toString(s->state));
        else if (s->health == EngineHealth::Starting)
            waiting << QStringLiteral("the engine's healthcheck of %1 is still starting").arg(svc);
        for (const EndpointSeen &e : endpoints) {
            if (e.service != svc || (!e.containerId.isEmpty() && e.containerId != s->containerId))
                continue;
            // An answer from before the change is the old container's.
            if (!e.lastChecked.isValid() || e.lastChecked < target.changedAt)
                waiting << QStringLiteral("%1 not checked yet").arg(e.url);
            else if (e.status != EndpointStatus::Pass && e.status != EndpointStatus::Warn)
                waiting << QStringLiteral("%1: %2%3")
                               .arg(e.url, toString(e.status),
                                    e.detail.isEmpty() ? QString()
                                                       : QStringLiteral(" (") + e.detail + u')');
        }
    }
    if (!waiting.isEmpty())
        return { GateVerdict::Waiting, waiting.join(QStringLiteral("; ")) };
    return { GateVerdict::Passed, {} };
}

GateDecision advanceGate(const GateJudgement &judgement, qint64 elapsedMs, qint64 healthyForMs,
                         int windowMs, int timeoutMs)
{
    switch (judgement.verdict) {
    case GateVerdict::Failed:
        return { GateAction::Fail, judgement.why };
    case GateVerdict::Passed:
        if (healthyForMs < 0)
            return { GateAction::StartWindow, {} };
        if (healthyForMs < windowMs)
            return { GateAction::Hold, {} };
        return { GateAction::Pass, {} };
    case GateVerdict::Waiting:
        break;
    }
    if (healthyForMs >= 0)
        return { GateAction::Fail,
                 QStringLiteral("health failed during the %1 window: %2")
                     .arg(seconds(windowMs), judgement.why) };
    if (elapsedMs > timeoutMs)
        return {
            GateAction::Fail,
            QStringLiteral("not healthy within %1: %2").arg(seconds(timeoutMs), judgement.why)
        };
    return { GateAction::KeepWaiting, judgement.why };
}

CancelAction cancelAction(RunPhase phase, bool alreadyRequested)
{
    if (phase == RunPhase::Reverting)
        return CancelAction::FinishRevert;
    if (alreadyRequested)
        return CancelAction::Ignore;
    switch (phase) {
    case RunPhase::Planning:
    case RunPhase::Resolving:
        return CancelAction::ConcludeNow;
    case RunPhase::Recording:
    case RunPhase::ShortCommand:
        return CancelAction::NoteOnly;
    case RunPhase::Command:
        return CancelAction::StopCommand;
    case RunPhase::Gating:
        return CancelAction::RevertNow;
    case RunPhase::Reverting:
        break;
    }
    return CancelAction::FinishRevert;
}

Conclusion afterRevert(bool ok, bool cancelledByUser, const QString &failure,
                       const QString &revertError, const Deployment &d)
{
    const QString svc = named(d.service.split(u',', Qt::SkipEmptyParts));
    if (!ok)
        return { DeploymentOutcome::Failed,
                 QStringLiteral("%1; going back to %2 failed too: %3. Look at %4 (pilothousectl "
                                "status --env %5)")
                     .arg(failure, d.fromTag, revertError, svc, d.environment) };
    if (cancelledByUser)
        return { DeploymentOutcome::Cancelled,
                 QStringLiteral("cancelled; %1 %2 back on %3 and healthy")
                     .arg(svc,
                          d.service.contains(u',') ? QStringLiteral("are") : QStringLiteral("is"),
                          d.fromTag) };
    return { DeploymentOutcome::Reverted,
             QStringLiteral("%1 failed its health gate: %2. Reverted: %3 %4 back on %5 and "
                            "healthy")
                 .arg(d.toTag, failure, svc,
                      d.service.contains(u',') ? QStringLiteral("are") : QStringLiteral("is"),
                      d.fromTag) };
}

QString pinAfter(DeploymentOutcome outcome, bool changed, const Deployment &d)
{
    if (outcome == DeploymentOutcome::Succeeded)
        return d.toTag;
    // Back on the previous tag after a revert or a cancel; a failed revert
    // leaves it unknown, so the pin stays as it was.
    if (changed &&
        (outcome == DeploymentOutcome::Reverted || outcome == DeploymentOutcome::Cancelled))
        return d.fromTag;
    return {};
}

QList<Deployment> rowsFor(const QList<Deployment> &rows, const QStringList &services)
{
    QList<Deployment> mine;
    if (services.isEmpty())
        return mine;
    for (const Deployment &d : rows) {
        if (d.service.split(u',', Qt::SkipEmptyParts).contains(services.first()))
            mine << d;
    }
    return mine;
}

Expected<RollbackPlan> planRollback(const QList<Deployment> &rows, const QStringList &services,
                                    const ServiceState &running, const QString &toTag,
                                    int databaseSchema, const QHash<QString, int> &buildSchemas)
{
    RollbackPlan plan;
    plan.service = services.join(u',');
    plan.fromTag = running.tag;
    plan.fromDigest = running.digest;
    const QList<Deployment> mine = rowsFor(rows, services);
    if (toTag.isEmpty()) {
        const auto previous = previousSuccessful(mine, { running.tag, running.digest });
        if (!previous)
            return Error { QStringLiteral("no earlier successful deployment of %1 to roll back "
                                          "to; choose a tag (pilothousectl rollback --to TAG)")
                               .arg(named(services)) };
        plan.toTag = previous->tag;
        plan.toDigest = previous->digest;
    } else {
        if (!isValidImageTag(toTag))
            return Error { QStringLiteral("\"%1\" is not a valid image tag").arg(toTag) };
        plan.toTag = toTag;
        plan.toDigest = recordedDigest(mine, toTag); // exact, when it ran here before
    }
    plan.targetSchema = expectedSchema(mine, plan.toTag);
    if (plan.targetSchema < 0)
        plan.targetSchema = buildSchemas.value(plan.toTag, -1);
    plan.databaseSchema = databaseSchema;
    if (plan.targetSchema >= 0 && plan.databaseSchema > plan.targetSchema)
        plan.schemaWarning = QStringLiteral("The database is at schema version %1, newer than %2 "
                                            "expects (%3): that build may not work with it. Roll "
                                            "the migration back first, or choose a build that "
                                            "knows schema %1.")
                                 .arg(plan.databaseSchema)
                                 .arg(plan.toTag)
                                 .arg(plan.targetSchema);
    return plan;
}

QList<ImageTag> orderTags(const QStringList &names, const QHash<QString, QDateTime> &times)
{
    QList<ImageTag> tags;
    for (const QString &n : names)
        tags.append({ n, times.value(n) });
    std::stable_sort(tags.begin(), tags.end(), [](const ImageTag &a, const ImageTag &b) {
        if (a.builtAt.isValid() != b.builtAt.isValid())
            return a.builtAt.isValid();
        if (a.builtAt.isValid() && a.builtAt != b.builtAt)
            return a.builtAt > b.builtAt;
        return a.name < b.name;
    });
    return tags;
}

QHash<QString, QDateTime> tagTimes(const QList<Deployment> &rows)
{
    // A build is about as old as the first time it shows up here (deployed,
    // or replaced by a deployment): a rollback to an old build does not make
    // it new.
    QHash<QString, QDateTime> times;
    const auto seen = [&times](const QString &tag, const QDateTime &at) {
        if (!tag.isEmpty() && at.isValid() && (!times.contains(tag) || at < times.value(tag)))
            times.insert(tag, at);
    };
    for (const Deployment &d : rows) {
        seen(d.toTag, d.startedAt);
        seen(d.fromTag, d.startedAt.addMSecs(-1));
    }
    return times;
}

QHash<QString, QDateTime> imageTimes(const QByteArray &lines)
{
    QHash<QString, QDateTime> times;
    for (const QByteArray &line : lines.split('\n')) {
        const QJsonObject o = QJsonDocument::fromJson(line).object();
        const QString tag = o.value(u"Tag").toString();
        // "2026-12-02 17:00:00 +0000 UTC": the date, the time and the offset.
        const QStringList parts = o.value(u"CreatedAt").toString().split(u' ');
        if (tag.isEmpty() || tag == QLatin1String("<none>") || parts.size() < 3)
            continue;
        const QDateTime at = QDateTime::fromString(
            parts.at(0) + u'T' + parts.at(1) + parts.at(2).left(3) + u':' + parts.at(2).mid(3, 2),
            Qt::ISODate);
        if (at.isValid())
            times.insert(tag, at.toUTC());
    }
    return times;
}

QStringList imageTags(const QByteArray &lines)
{
    QStringList tags;
    for (const QByteArray &line : lines.split('\n')) {
        const QString tag = QJsonDocument::fromJson(line).object().value(u"Tag").toString();
        if (!tag.isEmpty() && tag != QLatin1String("<none>") && !tags.contains(tag))
            tags << tag;
    }
    return tags;
}

} // namespace pilothouse
