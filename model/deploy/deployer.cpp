#include "deploy/deployer.h"

#include "core/ownerlock.h"
#include "core/session.h"
#include "deploy/historystore.h"
#include "drivers/docker.h"
#include "registry/registryclient.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>
#include <QNetworkReply>
#include <QStandardPaths>

Q_LOGGING_CATEGORY(lcDeploy, "pilothouse.deploy")

namespace pilothouse {

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
    case DeployStep::Reverting:
        return QStringLiteral("reverting");
    }
    return {};
}

QString toString(DeployResult::Outcome outcome)
{
    switch (outcome) {
    case DeployResult::Outcome::Succeeded:
        return QStringLiteral("succeeded");
    case DeployResult::Outcome::Refused:
        return QStringLiteral("refused");
    case DeployResult::Outcome::Reverted:
        return QStringLiteral("reverted");
    case DeployResult::Outcome::Cancelled:
        return QStringLiteral("cancelled");
    case DeployResult::Outcome::Failed:
        return QStringLiteral("failed");
    }
    return {};
}

// One deployment in progress.
struct Deployer::Run
{
    quint64 generation = 0;
    Deployment record;
    QString previousImageId; // what ran before: the revert brings back exactly this image
    QString previousContainerId;
    QString targetImageId; // the image id of the pinned digest, once known
    QString failedContainerId; // the new container, for its logs
    QString schemaWarning;
    QDateTime changedAt; // health answers must be newer than the last recreate
    QElapsedTimer gateClock;
    QElapsedTimer windowClock; // running while the service is healthy
    bool gating = false;
    bool reverting = false;
    bool changed = false; // the service was touched: cancelling means reverting
    bool cancelRequested = false;
    bool cancelled = false; // the revert running is the user's cancel
    bool beginPending = false; // the history has not answered begin() yet
    QString failure; // why the gate failed, kept for the record
    QStringList logLines;
    QElapsedTimer clock; // since the call
};

namespace {

constexpr int kCommandTimeoutMs = 300000;
constexpr int kPullTimeoutMs = 900000;
constexpr int kGateTickMs = 250;
constexpr int kLogLines = 30;

QString seconds(int ms)
{
    return QString::number(ms / 1000.0, 'g', 3) + QStringLiteral(" s");
}

QStringList lastLines(const QString &text, int n)
{
    QStringList lines = text.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    if (lines.size() > n)
        lines = lines.mid(lines.size() - n);
    return lines;
}

} // namespace

Deployer::Deployer(StackSession *session, HistoryStore *history, QObject *parent)
    : QObject(parent)
    , m_session(session)
    , m_history(history)
{
    qRegisterMetaType<pilothouse::DeployResult>();
    qRegisterMetaType<pilothouse::Deployment>();
    qRegisterMetaType<pilothouse::DeployStep>();
    if (session) {
        m_windowMs = session->environment().healthWindowMs;
        m_timeoutMs = session->environment().deployTimeoutMs;
        connect(session, &StackSession::servicesChanged, this, &Deployer::evaluateGate);
    }
    m_gateTimer.setInterval(kGateTickMs);
    connect(&m_gateTimer, &QTimer::timeout, this, &Deployer::evaluateGate);
}

Deployer::~Deployer()
{
    if (m_session)
        m_session->setOperationLock({});
}

template<typename F> auto Deployer::guarded(F f)
{
    const quint64 gen = m_generation;
    return [this, gen, f = std::move(f)](auto &&...args) {
        if (!m_run || m_run->generation != gen)
            return; // an answer for a run that is over
        f(std::forward<decltype(args)>(args)...);
    };
}

void Deployer::resetRegistry()
{
    m_registryCredentialsStale = true;
}

QString Deployer::service() const
{
    return m_session ? m_session->environment().backendService : QString();
}

QString Deployer::runningTag() const
{
    if (!m_session)
        return {};
    const auto s = m_session->stateOf(service());
    return s && s->isRunning() ? s->tag : QString();
}

void Deployer::restorePin()
{
    // After a restart of the panel, a stack start keeps the tag deployed last.
    if (!m_session || !m_history || m_session->environment().imageRepository.isEmpty())
        return;
    const QString env = m_session->environment().name;
    const QString svc = service();
    m_history->list(env, 50, this, [this, svc](Expected<QList<Deployment>> rows) {
        if (!rows || !m_session || !m_session->pinnedTag().isEmpty())
            return;
        for (const Deployment &d : *rows) {
            if (d.service != svc)
                continue;
            if (d.outcome == Deployment::Outcome::Succeeded) {
                m_session->setPinnedTag(d.toTag);
                return;
            }
            if (d.outcome == Deployment::Outcome::Reverted ||
                d.outcome == Deployment::Outcome::Cancelled) {
                m_session->setPinnedTag(d.fromTag);
                return;
            }
        }
    });
}

void Deployer::setStep(DeployStep step, const QString &message)
{
    m_step = step;
    qCInfo(lcDeploy, "%s: %s", qPrintable(toString(step)), qPrintable(message));
    emit stepChanged(step, message);
}

CommandSpec Deployer::docker(const QStringList &args, int timeoutMs, const QString &what) const
{
    return dockerCommand(m_session->environment(), args, timeoutMs, what);
}

void Deployer::runCommand(const CommandSpec &spec, std::function<void(const CommandResult &)> done,
                          bool cancellable)
{
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    m_commandCancellable = cancellable;
    connect(cmd, &Command::finished, this, [this, cmd, done](const CommandResult &r) {
        cmd->deleteLater();
        if (m_command == cmd)
            m_command = nullptr;
        done(r);
    });
    cmd->start();
}

void Deployer::withCompose(std::function<void(const ComposeCli &)> then)
{
    locateCompose(m_session->environment(), this,
                  guarded([this, then = std::move(then)](Expected<ComposeCli> cli) {
                      if (!cli) {
                          if (m_run->reverting)
                              reverted(false, cli.error());
                          else if (m_run->changed)
                              gateFailed(cli.error());
                          else
                              conclude(DeployResult::Outcome::Failed, cli.error());
                          return;
                      }
                      then(*cli);
                  }));
}

void Deployer::withRegistry(std::function<void(Expected<RegistryClient *>)> then)
{
    if (!m_session) {
        then(Error { QStringLiteral("no environment") });
        return;
    }
    // One client for the deployer's life (its token serves every call);
    // credentials are read again after resetRegistry().
    if (m_registry && !m_registryCredentialsStale) {
        then(m_registry.get());
        return;
    }
    if (!m_registry) {
        m_registryCredentialsStale = false; // read as the client is made
        makeRegistryClient(m_session->environment(), this,
                           [this, then](Expected<std::shared_ptr<RegistryClient>> client) {
                               if (!client) {
                                   then(Error { client.error() });
                                   return;
                               }
                               if (!m_registry) // two first calls: the first made is kept
                                   m_registry = *client;
                               then(m_registry.get());
                           });
        return;
    }
    m_registryCredentialsStale = false;
    applyRegistryCredentials(m_session->environment(), m_registry, this,
                             [this, then](Outcome applied) {
                                 if (!applied) {
                                     m_registryCredentialsStale = true;
                                     then(Error { applied.error() });
                                     return;
                                 }
                                 then(m_registry.get());
                             });
}

void Deployer::listTags(QObject *context, std::function<void(Expected<QStringList>)> done)
{
    QPointer<QObject> ctx(context);
    withRegistry([this, ctx, done](Expected<RegistryClient *> client) {
        if (!client) {
            if (ctx)
                done(Error { client.error() });
            return;
        }
        (*client)->listTags([ctx, done](Expected<QStringList> tags) {
            if (!ctx)
                return;
            if (!tags)
                done(Error { tags.error() });
            else
                done(RegistryClient::deployableTags(*tags));
        });
    });
}

void Deployer::fetchSchema(std::function<void(int)> done)
{
    // deckhand's /version says which schema this build expects; it sits next
    // to the backend's health endpoint.
    QUrl url;
    if (m_session) {
        for (const WatchedService &s : m_session->environment().services) {
            if (s.name == service() && !s.endpoints.isEmpty()) {
                url = s.endpoints.first().url;
                break;
            }
        }
    }
    if (!url.isValid()) {
        QMetaObject::invokeMethod(
            this, [done] { done(-1); }, Qt::QueuedConnection);
        return;
    }
    url.setPath(QStringLiteral("/version"));
    url.setQuery(QString());
    QNetworkRequest request(url);
    request.setTransferTimeout(3000);
    QNetworkReply *reply = m_network.get(request);
    connect(reply, &QNetworkReply::finished, this, [reply, done] {
        reply->deleteLater();
        const QJsonObject o = QJsonDocument::fromJson(reply->readAll()).object();
        done(reply->error() == QNetworkReply::NoError && o.contains(u"schema_version")
                 ? o.value(u"schema_version").toInt(-1)
                 : -1);
    });
}

int Deployer::databaseSchema() const
{
    if (!m_session)
        return -1;
    // The running backend reports the database's version in its readiness.
    HealthMonitor *monitor = m_session->monitor();
    for (int id : monitor->ids()) {
        const EndpointState *e = monitor->endpoint(id);
        if (e->service != service())
            continue;
        for (const health::Check &c : e->checks) {
            if (c.name == QLatin1String("schema:version") && c.observedValue)
                return int(*c.observedValue);
        }
    }
    if (DatabaseProbe *probe = m_session->databaseProbe()) {
        if (probe->facts().reachable() && probe->facts().migrationVersion >= 0)
            return int(probe->facts().migrationVersion);
    }
    return -1;
}

void Deployer::refuse(const QString &message)
{
    qCInfo(lcDeploy, "refused: %s", qPrintable(message));
    DeployResult r;
    r.outcome = DeployResult::Outcome::Refused;
    r.message = message;
    QMetaObject::invokeMethod(
        this, [this, r] { emit finished(r); }, Qt::QueuedConnection);
}

void Deployer::deploy(const QString &tag)
{
    start(tag, {});
}

void Deployer::rollback(const QString &toTag)
{
    if (isBusy()) {
        start(toTag, {}); // refused with the reason
        return;
    }
    m_planning = true;
    m_cancelWhilePlanning = false;
    planRollback(toTag, this, [this](Expected<RollbackPlan> plan) {
        m_planning = false;
        if (m_cancelWhilePlanning) {
            m_cancelWhilePlanning = false;
            DeployResult r;
            r.outcome = DeployResult::Outcome::Cancelled;
            r.message = QStringLiteral("cancelled; nothing was changed");
            emit finished(r);
            return;
        }
        if (!plan) {
            refuse(plan.error());
            return;
        }
        rollback(*plan);
    });
}

void Deployer::rollback(const RollbackPlan &plan)
{
    start(plan.toTag, plan.toDigest, plan.schemaWarning);
}

void Deployer::planRollback(const QString &toTag, QObject *context,
                            std::function<void(Expected<RollbackPlan>)> done)
{
    QPointer<QObject> ctx(context);
    const auto answer = [this, ctx, done](Expected<RollbackPlan> plan) {
        QMetaObject::invokeMethod(
            this,
            [ctx, done, plan] {
                if (ctx)
                    done(plan);
            },
            Qt::QueuedConnection);
    };
    if (!m_session || !m_history) {
        answer(Error { QStringLiteral("no environment or history") });
        return;
    }
    const Environment &env = m_session->environment();
    const auto running = m_session->stateOf(service());
    if (!running || running->containerId.isEmpty()) {
        answer(Error {
            QStringLiteral("%1 has no container in \"%2\"; start the stack first")
                .arg(service().isEmpty() ? QStringLiteral("the backend") : service(), env.name) });
        return;
    }
    if (!toTag.isEmpty() && !isValidImageTag(toTag)) {
        answer(Error { QStringLiteral("\"%1\" is not a valid image tag").arg(toTag) });
        return;
    }
    const ServiceState current = *running;
    m_history->list(
        env.name, 500, this, [this, current, toTag, answer](Expected<QList<Deployment>> rows) {
            if (!rows) {
                answer(Error { rows.error() });
                return;
            }
            RollbackPlan plan;
            plan.service = service();
            plan.fromTag = current.tag;
            plan.fromDigest = current.digest;
            QList<Deployment> mine;
            for (const Deployment &d : *rows) {
                if (d.service == plan.service)
                    mine << d;
            }
            if (toTag.isEmpty()) {
                const auto previous = previousSuccessful(mine, { current.tag, current.digest });
                if (!previous) {
                    answer(Error {
                        QStringLiteral("no earlier successful deployment of %1 to roll back "
                                       "to; choose a tag (pilothousectl rollback --to TAG)")
                            .arg(plan.service) });
                    return;
                }
                plan.toTag = previous->tag;
                plan.toDigest = previous->digest;
            } else {
                plan.toTag = toTag;
                plan.toDigest = recordedDigest(mine, toTag); // exact, when it ran here before
            }
            plan.targetSchema = expectedSchema(mine, plan.toTag);
            plan.databaseSchema = databaseSchema();
            if (plan.targetSchema >= 0 && plan.databaseSchema > plan.targetSchema) {
                plan.schemaWarning =
                    QStringLiteral("The database is at schema version %1, newer than %2 "
                                   "expects (%3): that build may not work with it. Roll the "
                                   "migration back first, or choose a build that knows "
                                   "schema %1.")
                        .arg(plan.databaseSchema)
                        .arg(plan.toTag)
                        .arg(plan.targetSchema);
            }
            answer(plan);
        });
}

void Deployer::start(const QString &tag, const QString &knownDigest, const QString &schemaWarning)
{
    if (!m_session) {
        refuse(QStringLiteral("no environment"));
        return;
    }
    const Environment &env = m_session->environment();
    const QString svc = service();
    if (isBusy()) {
        refuse(QStringLiteral("a deployment of %1 to %2 is already running in \"%3\"; wait for "
                              "it or cancel it")
                   .arg(svc, m_run ? m_run->record.toTag : QString(), env.name));
        return;
    }
    if (env.kind != EnvironmentKind::Compose) {
        refuse(QStringLiteral("\"%1\" runs its processes natively; deployments need a compose "
                              "environment with an image (image.repository and image.service)")
                   .arg(env.name));
        return;
    }
    if (env.imageRepository.isEmpty() || svc.isEmpty()) {
        refuse(QStringLiteral("\"%1\" has no image to deploy: add image.repository and "
                              "image.service to the environment")
                   .arg(env.name));
        return;
    }
    if (!isValidImageTag(tag)) {
        refuse(QStringLiteral("\"%1\" is not a valid image tag (letters, digits, '_', '.', '-'; "
                              "at most 128)")
                   .arg(tag));
        return;
    }
    if (m_session->isBusy()) {
        refuse(QStringLiteral("a stack operation is running in \"%1\"; wait for it to finish")
                   .arg(env.name));
        return;
    }
    EngineWatcher *watcher = m_session->watcher();
    if (!watcher || !watcher->isSeeded()) {
        refuse(QStringLiteral("the engine's state of \"%1\" is not known yet%2; try again in a "
                              "moment")
                   .arg(env.name,
                        watcher && !watcher->engineError().isEmpty()
                            ? QStringLiteral(" (%1)").arg(watcher->engineError())
                            : QString()));
        return;
    }
    // A crash-looping backend can be deployed over (that is when a rollback
    // is wanted most); one without a container cannot.
    const auto current = m_session->stateOf(svc);
    if (!current || current->containerId.isEmpty()) {
        refuse(QStringLiteral("%1 has no container in \"%2\"; start the stack, then deploy")
                   .arg(svc, env.name));
        return;
    }
    if (current->tag.isEmpty() || current->imageId.isEmpty()) {
        refuse(QStringLiteral("%1 runs %2, which has no tag to come back to; deploy needs a "
                              "service started from a tagged image")
                   .arg(svc, current->image));
        return;
    }
    // One deployment per environment, across processes (the window and pilothousectl).
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    LockHolder holder;
    QString problem;
    auto lock = takeLock(dir + QStringLiteral("/deploy-%1.lock").arg(env.name), &holder, &problem);
    if (!lock && !problem.isEmpty()) {
        refuse(QStringLiteral("%1; nothing was changed").arg(problem));
        return;
    }
    if (!lock) {
        refuse(QStringLiteral("another deployment to \"%1\" is running in %2; wait for it to "
                              "finish")
                   .arg(env.name, holder.describe()));
        return;
    }
    m_lock = std::move(lock);

    m_run = std::make_unique<Run>();
    m_run->generation = ++m_generation;
    m_run->clock.start();
    m_run->schemaWarning = schemaWarning;
    m_run->previousImageId = current->imageId;
    m_run->previousContainerId = current->containerId;
    Deployment &d = m_run->record;
    d.environment = env.name;
    d.service = svc;
    d.fromTag = current->tag;
    d.fromDigest = current->digest;
    d.toTag = tag;
    d.who = DeploymentHistory::currentUser();
    d.startedAt = QDateTime::currentDateTimeUtc();
    m_session->setOperationLock(
        QStringLiteral("a deployment of %1 is running in \"%2\"; wait for it or cancel it")
            .arg(svc, env.name));

    if (!knownDigest.isEmpty()) {
        // A rollback to a digest recorded here: immutable, no registry needed.
        setStep(
            DeployStep::Preparing,
            QStringLiteral("Rolling back %1 to %2 (%3)").arg(svc, tag, shortDigest(knownDigest)));
        QMetaObject::invokeMethod(this, guarded([this, knownDigest] { resolved(knownDigest); }),
                                  Qt::QueuedConnection);
        return;
    }
    setStep(DeployStep::Preparing, QStringLiteral("Looking up %1 in the registry").arg(tag));
    withRegistry(guarded([this, tag](Expected<RegistryClient *> client) {
        if (!client) {
            conclude(DeployResult::Outcome::Refused, client.error());
            return;
        }
        (*client)->resolveDigest(
            tag, guarded([this, tag](Expected<QString> digest) {
                if (m_run->cancelRequested) {
                    conclude(DeployResult::Outcome::Cancelled,
                             QStringLiteral("cancelled; nothing was changed"));
                    return;
                }
                if (!digest) {
                    conclude(DeployResult::Outcome::Refused,
                             QStringLiteral("%1; nothing was changed").arg(digest.error()));
                    return;
                }
                resolved(*digest);
            }));
    }));
}

void Deployer::resolved(const QString &digest)
{
    Deployment &d = m_run->record;
    d.toDigest = digest;
    if (d.toTag == d.fromTag && (d.fromDigest.isEmpty() || d.fromDigest == digest)) {
        conclude(DeployResult::Outcome::Refused,
                 QStringLiteral("%1 already runs %2 (%3); nothing to do")
                     .arg(d.service, d.toTag, shortDigest(digest)));
        return;
    }
    fetchSchema(guarded([this](int schema) {
        m_run->record.fromSchema = schema;
        if (m_run->cancelRequested) {
            conclude(DeployResult::Outcome::Cancelled,
                     QStringLiteral("cancelled; nothing was changed"));
            return;
        }
        if (!m_history) {
            recorded(0);
            return;
        }
        m_run->beginPending = true;
        m_history->begin(m_run->record, this, guarded([this](Expected<qint64> id) {
                             m_run->beginPending = false;
                             if (!id) {
                                 conclude(
                                     DeployResult::Outcome::Refused,
                                     QStringLiteral("%1; nothing was changed").arg(id.error()));
                                 return;
                             }
                             recorded(*id);
                         }));
    }));
}

void Deployer::recorded(qint64 id)
{
    m_run->record.id = id;
    emit started(m_run->record);
    if (m_run->cancelRequested) {
        conclude(DeployResult::Outcome::Cancelled,
                 QStringLiteral("cancelled; nothing was changed"));
        return;
    }
    pull();
}

void Deployer::pull()
{
    const Environment &env = m_session->environment();
    const Deployment &d = m_run->record;
    const QString pinned = env.imageRepository + QLatin1Char('@') + d.toDigest;
    const QString tagged = env.imageRepository + QLatin1Char(':') + d.toTag;
    const auto inspect = [this, pinned](std::function<void(const CommandResult &)> then) {
        runCommand(docker({ QStringLiteral("image"), QStringLiteral("inspect"),
                            QStringLiteral("--format"), QStringLiteral("{{.Id}}"), pinned },
                          60000, QStringLiteral("docker image inspect")),
                   guarded(std::move(then)));
    };
    const auto tagLocally = [this, pinned, tagged] {
        if (m_run->cancelRequested) {
            conclude(DeployResult::Outcome::Cancelled,
                     QStringLiteral("cancelled; nothing was changed, %1 still runs %2")
                         .arg(m_run->record.service, m_run->record.fromTag));
            return;
        }
        // Re-pointing the running tag itself (a moving tag such as "staging")
        // changes what a restart would run: from here on, a failure reverts.
        if (m_run->record.toTag == m_run->record.fromTag)
            m_run->changed = true;
        // The compose file names the image by tag: make the tag point at
        // exactly the digest that was resolved. Short, so never cut off.
        runCommand(
            docker({ QStringLiteral("tag"), pinned, tagged }, 60000, QStringLiteral("docker tag")),
            guarded([this, tagged](const CommandResult &r) {
                if (!r.ok()) {
                    const QString why = explainDockerFailure(r, QStringLiteral("tagging ") + tagged,
                                                             m_session->environment());
                    if (m_run->changed)
                        gateFailed(why);
                    else
                        conclude(DeployResult::Outcome::Failed,
                                 why + QStringLiteral("; nothing was changed"));
                    return;
                }
                if (m_run->cancelRequested) {
                    if (m_run->changed)
                        revert(QStringLiteral("cancelled by the user"), true);
                    else
                        conclude(DeployResult::Outcome::Cancelled,
                                 QStringLiteral("cancelled; nothing was changed, %1 still runs %2")
                                     .arg(m_run->record.service, m_run->record.fromTag));
                    return;
                }
                setStep(DeployStep::Recreating,
                        QStringLiteral("Recreating %1 with %2")
                            .arg(m_run->record.service, m_run->record.toTag));
                m_run->changed = true;
                recreate(m_run->record.toTag, guarded([this](const CommandResult &up) {
                             if (m_run->cancelRequested) {
                                 revert(QStringLiteral("cancelled by the user"), true);
                                 return;
                             }
                             if (!up.ok()) {
                                 gateFailed(explainDockerFailure(
                                     up, QStringLiteral("recreating ") + m_run->record.service,
                                     m_session->environment()));
                                 return;
                             }
                             startGate(false);
                         }));
            }),
            false);
    };
    setStep(DeployStep::Pulling, QStringLiteral("Pulling %1").arg(pinned));
    // Already here (a rollback, or pulled before): no registry round trip.
    inspect([this, pinned, tagLocally, inspect](const CommandResult &present) {
        if (present.ok()) {
            m_run->targetImageId = present.output.trimmed();
            emit stepChanged(DeployStep::Pulling,
                             QStringLiteral("%1 is already on the engine").arg(pinned));
            tagLocally();
            return;
        }
        if (m_run->cancelRequested) {
            tagLocally(); // concludes as cancelled
            return;
        }
        CommandSpec spec = docker({ QStringLiteral("pull"), pinned }, kPullTimeoutMs,
                                  QStringLiteral("docker pull"));
        spec.keepOutput = true;
        runCommand(spec, guarded([this, pinned, tagLocally, inspect](const CommandResult &r) {
                       if (r.end == CommandResult::End::Cancelled || m_run->cancelRequested) {
                           tagLocally();
                           return;
                       }
                       if (!r.ok()) {
                           conclude(
                               DeployResult::Outcome::Failed,
                               QStringLiteral("%1; nothing was changed, %2 still runs %3")
                                   .arg(explainDockerFailure(r, QStringLiteral("pulling ") + pinned,
                                                             m_session->environment()),
                                        m_run->record.service, m_run->record.fromTag));
                           return;
                       }
                       inspect([this, tagLocally](const CommandResult &id) {
                           if (id.ok())
                               m_run->targetImageId = id.output.trimmed();
                           tagLocally();
                       });
                   }));
    });
}

void Deployer::recreate(const QString &tag, std::function<void(const CommandResult &)> done)
{
    withCompose([this, tag, done](const ComposeCli &cli) {
        const Environment &env = m_session->environment();
        // Only the backend service, with the tag through the compose
        // variables: the user's files stay as they are.
        QStringList args { QStringLiteral("up"), QStringLiteral("--detach"),
                           QStringLiteral("--no-deps"), QStringLiteral("--no-build") };
        // What was pinned and tagged is what runs: no pull here, whatever the
        // file's pull_policy (v1 has no such option and never pulls a
        // present image on up).
        if (cli.v2)
            args << QStringLiteral("--pull") << QStringLiteral("never");
        args << service();
        QMap<QString, QString> vars = m_session->composeVariables();
        vars.insert(env.tagVariable, tag);
        runCommand(composeCommand(env, cli, args, kCommandTimeoutMs,
                                  QStringLiteral("compose up %1").arg(service()), vars),
                   done);
    });
}

void Deployer::startGate(bool reverting)
{
    Run &run = *m_run;
    run.gating = true;
    run.changedAt = QDateTime::currentDateTimeUtc();
    run.gateClock.start();
    run.windowClock.invalidate();
    const QString tag = reverting ? run.record.fromTag : run.record.toTag;
    setStep(reverting ? DeployStep::Reverting : DeployStep::WaitingForHealth,
            QStringLiteral("Waiting for %1 on %2 to pass its health checks for %3")
                .arg(run.record.service, tag, seconds(m_windowMs)));
    m_session->monitor()->checkNow();
    if (m_session->watcher())
        m_session->watcher()->refresh();
    m_gateTimer.start();
}

Deployer::GateVerdict Deployer::judge(QString *why) const
{
    const Run &run = *m_run;
    const QString svc = run.record.service;
    const auto s = m_session->stateOf(svc);
    // The container of the image this gate waits for; the one it replaces
    // may still be listed for a moment.
    const bool wanted = s &&
        (run.reverting ? s->imageId == run.previousImageId && s->tag == run.record.fromTag &&
                 (run.failedContainerId.isEmpty() || s->containerId != run.failedContainerId)
                       : s->containerId != run.previousContainerId && s->tag == run.record.toTag);
    if (!wanted) {
        *why = QStringLiteral("%1 has no container of the new image yet").arg(svc);
        return GateVerdict::Waiting;
    }
    if (!run.reverting && !run.targetImageId.isEmpty() && !s->imageId.isEmpty() &&
        s->imageId != run.targetImageId) {
        *why = QStringLiteral("the engine started %1 with image %2, not the pinned %3 (does the "
                              "compose file pull it again, e.g. pull_policy: always?)")
                   .arg(svc, s->imageId.left(19), run.targetImageId.left(19));
        return GateVerdict::Failed;
    }
    switch (s->state) {
    case RunState::Exited:
    case RunState::Dead:
        *why = QStringLiteral("%1 exited (exit code %2)").arg(svc).arg(s->exitCode);
        return GateVerdict::Failed;
    case RunState::Restarting:
        *why = QStringLiteral("%1 is restarting (exit code %2): it keeps crashing")
                   .arg(svc)
                   .arg(s->exitCode);
        return GateVerdict::Failed;
    default:
        break;
    }
    if (s->restartCount > 0) {
        *why = QStringLiteral("%1 restarted %2 time(s) (last exit code %3)")
                   .arg(svc)
                   .arg(s->restartCount)
                   .arg(s->exitCode);
        return GateVerdict::Failed;
    }
    if (s->health == EngineHealth::Unhealthy) {
        *why = QStringLiteral("the engine's healthcheck says %1 is unhealthy%2")
                   .arg(svc, s->detail.isEmpty() ? QString() : QStringLiteral(": ") + s->detail);
        return GateVerdict::Failed;
    }
    QStringList waiting;
    if (s->state != RunState::Running)
        waiting << QStringLiteral("%1 is %2").arg(svc, toString(s->state));
    else if (s->health == EngineHealth::Starting)
        waiting << QStringLiteral("the engine's healthcheck is still starting");
    HealthMonitor *monitor = m_session->monitor();
    for (int id : monitor->ids()) {
        const EndpointState *e = monitor->endpoint(id);
        if (e->service != svc)
            continue;
        const QString url = e->endpoint.url.toString();
        if (!e->lastChecked.isValid() || e->lastChecked < run.changedAt)
            waiting << QStringLiteral("%1 not checked yet").arg(url);
        else if (e->status != EndpointStatus::Pass && e->status != EndpointStatus::Warn)
            waiting << QStringLiteral("%1: %2%3")
                           .arg(url, toString(e->status),
                                e->detail.isEmpty()
                                    ? QString()
                                    : QStringLiteral(" (") + e->detail + QLatin1Char(')'));
    }
    if (!waiting.isEmpty()) {
        *why = waiting.join(QStringLiteral("; "));
        return GateVerdict::Waiting;
    }
    return GateVerdict::Passed;
}

void Deployer::evaluateGate()
{
    if (!m_run || !m_run->gating)
        return;
    Run &run = *m_run;
    QString why;
    const GateVerdict verdict = judge(&why);
    if (verdict == GateVerdict::Failed) {
        gateFailed(why);
        return;
    }
    if (verdict == GateVerdict::Passed) {
        if (!run.windowClock.isValid()) {
            run.windowClock.start();
            emit stepChanged(m_step,
                             QStringLiteral("%1 is healthy; holding for %2")
                                 .arg(run.record.service, seconds(m_windowMs)));
        }
        if (run.windowClock.elapsed() < m_windowMs)
            return;
        run.gating = false;
        m_gateTimer.stop();
        if (run.reverting) {
            reverted(true, {});
            return;
        }
        fetchSchema(guarded([this](int schema) {
            m_run->record.toSchema = schema;
            if (m_run->cancelRequested) { // asked while the gate was closing
                revert(QStringLiteral("cancelled by the user"), true);
                return;
            }
            conclude(DeployResult::Outcome::Succeeded,
                     QStringLiteral("%1 runs %2 and passed its health checks for %3")
                         .arg(m_run->record.service, m_run->record.toTag, seconds(m_windowMs)));
        }));
        return;
    }
    if (run.windowClock.isValid()) {
        gateFailed(
            QStringLiteral("health failed during the %1 window: %2").arg(seconds(m_windowMs), why));
        return;
    }
    if (run.gateClock.elapsed() > m_timeoutMs) {
        gateFailed(QStringLiteral("not healthy within %1: %2").arg(seconds(m_timeoutMs), why));
        return;
    }
    // Answers while it starts should come every tick, not after the monitor's backoff.
    m_session->monitor()->checkNow();
}

void Deployer::gateFailed(const QString &why, bool byUser)
{
    Run &run = *m_run;
    run.gating = false;
    m_gateTimer.stop();
    if (run.reverting) {
        reverted(false, why);
        return;
    }
    run.failure = why;
    const auto s = m_session->stateOf(run.record.service);
    run.failedContainerId =
        s && s->containerId != run.previousContainerId && s->tag == run.record.toTag
        ? s->containerId
        : QString();
    if (run.failedContainerId.isEmpty()) {
        revert(why, byUser);
        return;
    }
    // Its last words, before the revert removes the container (never cut short).
    runCommand(docker({ QStringLiteral("logs"), QStringLiteral("--tail"),
                        QString::number(kLogLines), run.failedContainerId },
                      30000, QStringLiteral("docker logs")),
               guarded([this, why, byUser](const CommandResult &r) {
                   m_run->logLines =
                       lastLines(r.output + QLatin1Char('\n') + r.errorOutput, kLogLines);
                   revert(why, byUser);
               }),
               false);
}

void Deployer::revert(const QString &why, bool cancelled)
{
    Run &run = *m_run;
    run.reverting = true;
    run.failure = why;
    run.cancelled = cancelled;
    const Environment &env = m_session->environment();
    const QString previous = env.imageRepository + QLatin1Char(':') + run.record.fromTag;
    setStep(DeployStep::Reverting,
            QStringLiteral("%1; going back to %2").arg(why, run.record.fromTag));
    // The tag may have moved since; point it at exactly the image that ran.
    runCommand(docker({ QStringLiteral("tag"), run.previousImageId, previous }, 60000,
                      QStringLiteral("docker tag")),
               guarded([this, previous](const CommandResult &r) {
                   if (!r.ok()) {
                       reverted(false,
                                explainDockerFailure(r, QStringLiteral("tagging ") + previous,
                                                     m_session->environment()));
                       return;
                   }
                   recreate(m_run->record.fromTag, guarded([this](const CommandResult &up) {
                                if (!up.ok()) {
                                    reverted(false,
                                             explainDockerFailure(up,
                                                                  QStringLiteral("recreating ") +
                                                                      m_run->record.service,
                                                                  m_session->environment()));
                                    return;
                                }
                                startGate(true);
                            }));
               }),
               false);
}

void Deployer::reverted(bool ok, const QString &why)
{
    Run &run = *m_run;
    const Deployment &d = run.record;
    if (!ok) {
        conclude(DeployResult::Outcome::Failed,
                 QStringLiteral("%1; going back to %2 failed too: %3. Look at %4 (pilothousectl "
                                "status --env %5)")
                     .arg(run.failure, d.fromTag, why, d.service, d.environment));
        return;
    }
    if (run.cancelled) {
        conclude(
            DeployResult::Outcome::Cancelled,
            QStringLiteral("cancelled; %1 is back on %2 and healthy").arg(d.service, d.fromTag));
        return;
    }
    conclude(DeployResult::Outcome::Reverted,
             QStringLiteral("%1 failed its health gate: %2. Reverted: %3 is back on %4 and healthy")
                 .arg(d.toTag, run.failure, d.service, d.fromTag));
}

void Deployer::cancel()
{
    if (m_planning && !m_run) {
        m_cancelWhilePlanning = true;
        return;
    }
    if (!m_run)
        return;
    Run &run = *m_run;
    if (run.reverting) {
        emit stepChanged(m_step,
                         QStringLiteral("Finishing the revert, so %1 stays on a known tag")
                             .arg(run.record.service));
        return;
    }
    if (run.cancelRequested)
        return;
    run.cancelRequested = true;
    emit stepChanged(m_step, QStringLiteral("Cancelling"));
    if (run.gating) {
        gateFailed(QStringLiteral("cancelled by the user"), true);
        return;
    }
    if (m_command) {
        // The running step notices when its command comes back; short
        // steps (tagging, reading logs) are left to finish.
        if (m_commandCancellable)
            m_command->cancel();
        return;
    }
    // Waiting on the registry or /version: nothing has changed, so stop now
    // (their late answers are dropped). The history's answer is awaited, so
    // a row it writes is always finished.
    if (!run.changed && !run.beginPending)
        conclude(DeployResult::Outcome::Cancelled,
                 QStringLiteral("cancelled; nothing was changed"));
}

void Deployer::conclude(DeployResult::Outcome outcome, const QString &message)
{
    m_gateTimer.stop();
    std::unique_ptr<Run> run = std::move(m_run);
    DeployResult result;
    result.outcome = outcome;
    result.message = message;
    result.deployment = run->record;
    result.logLines = run->logLines;
    result.schemaWarning = run->schemaWarning;
    result.elapsedMs = run->clock.elapsed();
    result.healthWindowMs = m_windowMs;
    Deployment::Outcome recorded = Deployment::Outcome::Failed;
    switch (outcome) {
    case DeployResult::Outcome::Succeeded:
        recorded = Deployment::Outcome::Succeeded;
        break;
    case DeployResult::Outcome::Reverted:
        recorded = Deployment::Outcome::Reverted;
        break;
    case DeployResult::Outcome::Cancelled:
        recorded = Deployment::Outcome::Cancelled;
        break;
    case DeployResult::Outcome::Refused:
    case DeployResult::Outcome::Failed:
        recorded = Deployment::Outcome::Failed;
        break;
    }
    result.deployment.outcome = recorded;
    result.deployment.reason = message;
    result.deployment.logLines = run->logLines;
    result.deployment.finishedAt = QDateTime::currentDateTimeUtc();
    if (m_session) {
        // What a later stack start should keep running.
        if (outcome == DeployResult::Outcome::Succeeded)
            m_session->setPinnedTag(run->record.toTag);
        else if (run->changed && outcome != DeployResult::Outcome::Failed)
            m_session->setPinnedTag(run->record.fromTag);
        m_session->setOperationLock({});
    }
    m_lock.reset();
    m_step = DeployStep::Idle;
    qCInfo(lcDeploy, "%s: %s", qPrintable(toString(outcome)), qPrintable(message));
    if (run->record.id > 0 && m_history) {
        // finished() after the row is written: whoever reads the history next sees it.
        m_history->finish(run->record.id, recorded, message, run->logLines, run->record.toSchema,
                          this, [this, result](Outcome written) {
                              DeployResult r = result;
                              if (!written)
                                  r.message += QStringLiteral(" (%1)").arg(written.error());
                              emit finished(r);
                          });
        return;
    }
    QMetaObject::invokeMethod(
        this, [this, result] { emit finished(result); }, Qt::QueuedConnection);
}

} // namespace pilothouse
