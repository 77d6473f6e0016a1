#include "deploy/rollout.h"

#include "core/session.h"
#include "drivers/command.h"
#include "drivers/docker.h"

namespace pilothouse {

namespace {
constexpr int kRolloutTimeoutMs = 300000;
} // namespace

ComposeRollout::ComposeRollout(StackSession *session, QObject *context)
    : m_session(session)
    , m_context(context)
{ }

ComposeRollout::~ComposeRollout()
{
    if (m_command)
        m_command->dismiss();
}

void ComposeRollout::cancel()
{
    m_cancelled = true;
    if (m_command)
        m_command->cancel();
}

void ComposeRollout::run(const CommandSpec &spec, std::function<void(const CommandResult &)> done)
{
    auto *cmd = new Command(spec, m_context);
    m_command = cmd;
    QObject::connect(cmd, &Command::finished, m_context, [this, cmd, done](const CommandResult &r) {
        cmd->deleteLater();
        if (m_command == cmd)
            m_command = nullptr;
        done(r);
    });
    cmd->start();
}

void ComposeRollout::up(const RolloutRequest &request, const QStringList &options,
                        const QString &what, std::function<void(Outcome)> done,
                        std::function<QString(const CommandResult &)> explain)
{
    m_cancelled = false;
    if (!m_session || !m_context) {
        done(Error { QStringLiteral("no environment") });
        return;
    }
    const Environment env = m_session->environment();
    locateCompose(
        env, m_context,
        [this, env, request, options, what, done, explain](Expected<ComposeCli> cli) {
            if (!m_session) {
                done(Error { QStringLiteral("no environment") });
                return;
            }
            if (!cli) {
                done(Error { cli.error() });
                return;
            }
            if (m_cancelled) {
                done(Error { QStringLiteral("cancelled by the user") });
                return;
            }
            // Only the image's services, with the tag through the
            // compose variables: the user's files stay as they are.
            QStringList args { QStringLiteral("up"), QStringLiteral("--detach"),
                               QStringLiteral("--no-deps"), QStringLiteral("--no-build") };
            // v1 has no such option and never pulls a present image on up.
            if (cli->v2)
                args << QStringLiteral("--pull") << QStringLiteral("never");
            args << options << request.services;
            QMap<QString, QString> vars = m_session->composeVariables();
            vars.insert(env.tagVariable, request.tag);
            run(composeCommand(env, *cli, args, kRolloutTimeoutMs,
                               QStringLiteral("compose up %1").arg(request.services.join(u' ')),
                               vars),
                [this, done, env, what, explain](const CommandResult &r) {
                    if (r.end == CommandResult::End::Cancelled || m_cancelled) {
                        done(Error { QStringLiteral("cancelled by the user") });
                        return;
                    }
                    if (!r.ok()) {
                        done(Error { explainDockerFailure(r, what, env) +
                                     (explain ? explain(r) : QString()) });
                        return;
                    }
                    done(success());
                });
        });
}

QString ComposeRecreate::caveat() const
{
    return QStringLiteral("the services are recreated: a short outage while the new containers "
                          "start");
}

void ComposeRecreate::roll(const RolloutRequest &request, std::function<void(Outcome)> done)
{
    // --force-recreate: every service of the image gets a new container,
    // also one whose image and settings compose finds unchanged (a worker
    // left on the build it was meant to run already).
    up(request, { QStringLiteral("--force-recreate") },
       QStringLiteral("recreating %1").arg(request.services.join(QStringLiteral(", "))),
       std::move(done));
}

void ComposeStartFirst::roll(const RolloutRequest &request, std::function<void(Outcome)> done)
{
    m_request = request;
    // As many new containers as there are old ones, next to them:
    // --no-recreate leaves the old ones as they are, and scaling to twice
    // the count makes the new ones from the compose file with the new tag.
    QStringList options { QStringLiteral("--no-recreate") };
    for (const QString &svc : request.services) {
        const auto old = qMax<qsizetype>(1, request.oldContainers.value(svc).size());
        options << QStringLiteral("--scale") << QStringLiteral("%1=%2").arg(svc).arg(2 * old);
    }
    up(request, options,
       QStringLiteral("starting %1 on %2 next to the running ones")
           .arg(request.services.join(QStringLiteral(", ")), request.tag),
       std::move(done), [](const CommandResult &r) {
           const QString text = r.output + r.errorOutput;
           if (!text.contains(QLatin1String("port is already allocated")) &&
               !text.contains(QLatin1String("address already in use")))
               return QString();
           return QStringLiteral(". start-first runs two containers of a service at once, so "
                                 "the service cannot publish a fixed host port: put a proxy in "
                                 "front that owns the port (as this repository's compose.yaml "
                                 "does), or set deploy.strategy to \"recreate\"");
       });
}

void ComposeStartFirst::removeContainers(const QStringList &ids, int stopSeconds,
                                         const QString &what, std::function<void(Outcome)> done)
{
    if (ids.isEmpty() || !m_session) {
        done(success());
        return;
    }
    const Environment env = m_session->environment();
    // docker stop: the container's stop signal (SIGTERM for deckhand), then
    // up to stopSeconds for what it is doing; several stop in parallel.
    run(dockerCommand(env,
                      QStringList { QStringLiteral("stop"), QStringLiteral("--time"),
                                    QString::number(stopSeconds) } +
                          ids,
                      (stopSeconds + 60) * 1000, QStringLiteral("docker stop")),
        [this, ids, what, env, done](const CommandResult &stopped) {
            const auto gone = [](const CommandResult &r) {
                return r.errorOutput.contains(QLatin1String("No such container"));
            };
            if (!stopped.ok() && !gone(stopped)) {
                done(Error { explainDockerFailure(stopped, what, env) });
                return;
            }
            run(dockerCommand(env,
                              QStringList { QStringLiteral("rm"), QStringLiteral("--force") } + ids,
                              60000, QStringLiteral("docker rm")),
                [what, env, done, gone](const CommandResult &removed) {
                    if (!removed.ok() && !gone(removed)) {
                        done(Error { explainDockerFailure(removed, what, env) });
                        return;
                    }
                    done(success());
                });
        });
}

void ComposeStartFirst::finish(std::function<void(Outcome)> done)
{
    QStringList old;
    for (const QString &svc : std::as_const(m_request.services))
        old << m_request.oldContainers.value(svc);
    removeContainers(old, kDrainSeconds, QStringLiteral("draining the old containers"),
                     std::move(done));
}

void ComposeStartFirst::abandon(std::function<void(Outcome)> done)
{
    if (!m_session) {
        done(Error { QStringLiteral("no environment") });
        return;
    }
    const Environment env = m_session->environment();
    // Every container of the services now, from the engine itself (the
    // watcher may not have seen the newest yet): the new ones are those that
    // were not there before. Label filters all have to match, so the
    // services are told apart by their label in the output.
    const QStringList args { QStringLiteral("ps"),
                             QStringLiteral("--all"),
                             QStringLiteral("--no-trunc"),
                             QStringLiteral("--filter"),
                             QStringLiteral("label=com.docker.compose.project=%1").arg(env.project),
                             QStringLiteral("--format"),
                             QStringLiteral("{{.ID}}\t{{.Label \"com.docker.compose.service\"}}") };
    run(dockerCommand(env, args, 60000, QStringLiteral("docker ps")),
        [this, env, done](const CommandResult &r) {
            if (!r.ok()) {
                done(Error {
                    explainDockerFailure(r, QStringLiteral("listing the new containers"), env) });
                return;
            }
            QStringList fresh;
            for (const QString &line : r.output.split(u'\n', Qt::SkipEmptyParts)) {
                const QStringList parts = line.trimmed().split(u'\t');
                if (parts.size() != 2 || !m_request.services.contains(parts.at(1)))
                    continue;
                if (!m_request.oldContainers.value(parts.at(1)).contains(parts.at(0)))
                    fresh << parts.at(0);
            }
            removeContainers(fresh, kAbandonSeconds, QStringLiteral("removing the new containers"),
                             done);
        });
}

std::unique_ptr<RolloutStrategy> makeRolloutStrategy(StackSession *session, QObject *context)
{
    if (session && session->environment().rollout == Environment::Rollout::StartFirst)
        return std::make_unique<ComposeStartFirst>(session, context);
    return std::make_unique<ComposeRecreate>(session, context);
}

} // namespace pilothouse
