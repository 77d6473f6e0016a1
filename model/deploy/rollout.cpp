#include "deploy/rollout.h"

#include "core/session.h"
#include "drivers/command.h"
#include "drivers/docker.h"

namespace pilothouse {

namespace {
constexpr int kRecreateTimeoutMs = 300000;
}

ComposeRecreate::ComposeRecreate(StackSession *session, QObject *context)
    : m_session(session)
    , m_context(context)
{ }

ComposeRecreate::~ComposeRecreate()
{
    if (m_command)
        m_command->dismiss();
}

QString ComposeRecreate::caveat() const
{
    return QStringLiteral("the services are recreated: a short outage while the new containers "
                          "start");
}

void ComposeRecreate::roll(const RolloutRequest &request, std::function<void(Outcome)> done)
{
    m_cancelled = false;
    if (!m_session || !m_context) {
        done(Error { QStringLiteral("no environment") });
        return;
    }
    const Environment env = m_session->environment();
    locateCompose(env, m_context, [this, env, request, done](Expected<ComposeCli> cli) {
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
        // Only the image's services, with the tag through the compose
        // variables: the user's files stay as they are.
        // --force-recreate: every service of the image gets a new container,
        // also one whose image and settings compose finds unchanged (a
        // worker left on the build it was meant to run already).
        QStringList args { QStringLiteral("up"), QStringLiteral("--detach"),
                           QStringLiteral("--no-deps"), QStringLiteral("--no-build"),
                           QStringLiteral("--force-recreate") };
        // v1 has no such option and never pulls a present image on up.
        if (cli->v2)
            args << QStringLiteral("--pull") << QStringLiteral("never");
        args << request.services;
        QMap<QString, QString> vars = m_session->composeVariables();
        vars.insert(env.tagVariable, request.tag);
        const QString what =
            QStringLiteral("recreating %1").arg(request.services.join(QStringLiteral(", ")));
        auto *cmd = new Command(
            composeCommand(env, *cli, args, kRecreateTimeoutMs,
                           QStringLiteral("compose up %1").arg(request.services.join(u' ')), vars),
            m_context);
        m_command = cmd;
        QObject::connect(cmd, &Command::finished, m_context,
                         [this, cmd, done, env, what](const CommandResult &r) {
                             cmd->deleteLater();
                             if (m_command == cmd)
                                 m_command = nullptr;
                             if (r.end == CommandResult::End::Cancelled || m_cancelled) {
                                 done(Error { QStringLiteral("cancelled by the user") });
                                 return;
                             }
                             if (!r.ok()) {
                                 done(Error { explainDockerFailure(r, what, env) });
                                 return;
                             }
                             done(success());
                         });
        cmd->start();
    });
}

void ComposeRecreate::cancel()
{
    m_cancelled = true;
    if (m_command)
        m_command->cancel();
}

std::unique_ptr<RolloutStrategy> makeRolloutStrategy(StackSession *session, QObject *context)
{
    return std::make_unique<ComposeRecreate>(session, context);
}

} // namespace pilothouse
