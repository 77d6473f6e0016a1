#include "drivers/composedriver.h"

#include "deploy/localbuild.h"
#include "env/dotenv.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

namespace pilothouse {

QString toString(StackOperation op)
{
    switch (op) {
    case StackOperation::Up:
        return QStringLiteral("up");
    case StackOperation::Down:
        return QStringLiteral("down");
    case StackOperation::Restart:
        return QStringLiteral("restart");
    case StackOperation::StopService:
        return QStringLiteral("stop");
    case StackOperation::StartService:
        return QStringLiteral("start");
    case StackOperation::Pull:
        return QStringLiteral("pull");
    case StackOperation::Build:
        return QStringLiteral("build");
    case StackOperation::Scale:
        return QStringLiteral("scale");
    case StackOperation::Node:
        return QStringLiteral("node update");
    }
    return {};
}

ComposeDriver::ComposeDriver(Environment env, QObject *parent)
    : StackDriver(parent)
    , m_env(std::move(env))
{
    qRegisterMetaType<pilothouse::OperationResult>();
}

ComposeDriver::~ComposeDriver() = default;

void ComposeDriver::up()
{
    run(StackOperation::Up, {}, { QStringLiteral("up"), QStringLiteral("--detach") });
}

void ComposeDriver::down()
{
    run(StackOperation::Down, {}, { QStringLiteral("down") });
}

void ComposeDriver::restart(const QString &service)
{
    QStringList args { QStringLiteral("restart") };
    if (!service.isEmpty())
        args << service;
    run(StackOperation::Restart, service, args);
}

void ComposeDriver::stopService(const QString &service)
{
    run(StackOperation::StopService, service, { QStringLiteral("stop"), service });
}

void ComposeDriver::startService(const QString &service)
{
    run(StackOperation::StartService, service, { QStringLiteral("start"), service });
}

void ComposeDriver::pull()
{
    run(StackOperation::Pull, {}, { QStringLiteral("pull") });
}

void ComposeDriver::build()
{
    run(StackOperation::Build, {}, {});
}

void ComposeDriver::cancel()
{
    if (!m_busy)
        return;
    m_cancelled = true;
    if (m_command)
        m_command->cancel();
    if (m_build)
        m_build->cancel();
}

namespace {

// What a compose call's output must not show: the .env's secrets and the
// secret variables the panel passes.
QStringList secretsOf(const Environment &env, const QMap<QString, QString> &variables)
{
    const QString envFile = env.envFile.isEmpty()
        ? QDir(env.stackDirectory()).filePath(QStringLiteral(".env"))
        : env.envFile;
    QStringList secrets = secretValues(envFile);
    for (auto it = variables.cbegin(); it != variables.cend(); ++it) {
        if (isSecretVariable(it.key()))
            secrets << it.value();
    }
    return secrets;
}

} // namespace

QString prepareComposeEnv(const Environment &env, const QMap<QString, QString> &variables,
                          bool mayCreate, QString *created)
{
    if (env.composeFiles.isEmpty())
        return {};
    const QString folder = env.stackDirectory();
    const QString envFile =
        env.envFile.isEmpty() ? QDir(folder).filePath(QStringLiteral(".env")) : env.envFile;
    const auto missingNow = [&env, &envFile, &variables] {
        QStringList missing;
        for (const QString &file : env.composeFiles) {
            for (const QString &name : missingRequiredVariables(file, envFile)) {
                if (!missing.contains(name) && !variables.contains(name))
                    missing << name;
            }
        }
        return missing;
    };
    QStringList missing = missingNow();
    // A start from a fresh checkout: compose's .env made from the project's
    // example, when something the compose file requires is set nowhere.
    if (!missing.isEmpty() && mayCreate && env.envFile.isEmpty()) {
        const Expected<DotEnvCreated> made = ensureDotEnv(folder);
        if (!made)
            return made.error();
        if (!made->path.isEmpty()) {
            if (created)
                *created = QStringLiteral("Created %1 from .env.example with new random %2 "
                                          "(private to you, never committed)")
                               .arg(made->path, made->generated.join(QStringLiteral(", ")));
            missing = missingNow();
        }
    }
    // Say which variable is missing, and where to set it, before compose
    // fails with its own interpolation message.
    if (missing.isEmpty())
        return {};
    const bool hasExample = QFile::exists(QDir(folder).filePath(QStringLiteral(".env.example")));
    QString hint;
    if (hasExample && !QFile::exists(envFile))
        hint = QStringLiteral("; Start makes %1 from .env.example by itself").arg(envFile);
    else if (hasExample)
        hint = QStringLiteral(" (.env.example lists every variable)");
    return QStringLiteral("Set %1 in %2 (or in the environment), then try again%3. %4 requires %5.")
        .arg(missing.join(QStringLiteral(", ")), envFile, hint,
             QFileInfo(env.composeFiles.first()).fileName(),
             missing.size() == 1 ? QStringLiteral("it") : QStringLiteral("them"));
}

QString ComposeDriver::prepareEnvFile(StackOperation op)
{
    QString created;
    const QString why = prepareComposeEnv(
        m_env, m_variables, op == StackOperation::Up || op == StackOperation::Build, &created);
    if (!created.isEmpty())
        emit progress(created);
    return why;
}

void ComposeDriver::run(StackOperation op, const QString &service, const QStringList &args)
{
    const QString what =
        QStringLiteral("compose %1%2")
            .arg(toString(op), service.isEmpty() ? QString() : QLatin1Char(' ') + service);
    if (m_busy) {
        refuseLater(op, service,
                    QStringLiteral("%1: another operation is still running in \"%2\"; wait for it "
                                   "or cancel it")
                        .arg(what, m_env.name));
        return;
    }
    if (!service.isEmpty() && !isValidServiceName(service)) {
        refuseLater(op, service, QStringLiteral("\"%1\" is not a valid service name").arg(service));
        return;
    }
    m_busy = true;
    m_cancelled = false;
    emit operationStarted(op, service);
    emit progress(QStringLiteral("Looking for Docker Compose"));
    locateCompose(m_env, this, [this, op, service, args, what](Expected<ComposeCli> cli) {
        const auto finish = [this](OperationResult r) {
            m_busy = false;
            emit operationFinished(r);
        };
        if (m_cancelled) {
            finish({ op, service, OperationResult::Outcome::Cancelled,
                     what + QStringLiteral(" was cancelled") });
            return;
        }
        if (!cli) {
            finish({ op, service, OperationResult::Outcome::Failed, cli.error() });
            return;
        }
        if (const QString why = prepareEnvFile(op); !why.isEmpty()) {
            finish({ op, service, OperationResult::Outcome::Failed, why });
            return;
        }
        const auto launch = [this, op, service, args, what, finish, cli = *cli] {
            CommandSpec spec = composeCommand(m_env, cli, args, m_timeoutMs, what, m_variables);
            emit progress(QStringLiteral("Running %1").arg(spec.display()));
            auto *cmd = new Command(spec, this);
            m_command = cmd;
            connect(cmd, &Command::outputLine, this, [this](const QString &line, bool) {
                if (!line.trimmed().isEmpty()) {
                    emit outputLine({}, line);
                    emit progress(line.trimmed());
                }
            });
            connect(cmd, &Command::finished, this,
                    [this, cmd, op, service, what, finish](const CommandResult &r) {
                        cmd->deleteLater();
                        m_command = nullptr;
                        if (r.end == CommandResult::End::Cancelled || m_cancelled) {
                            finish({ op, service, OperationResult::Outcome::Cancelled,
                                     what + QStringLiteral(" was cancelled") });
                        } else if (r.ok()) {
                            finish({ op, service, OperationResult::Outcome::Succeeded, {} });
                        } else {
                            finish(
                                { op, service, OperationResult::Outcome::Failed,
                                  explainDockerFailure(r, what, m_env),
                                  commandDetails(cmd->spec(), r, secretsOf(m_env, m_variables)) });
                        }
                    });
            cmd->start();
        };
        const auto compose = [this, op, service, what, finish, launch, cli = *cli] {
            if (op != StackOperation::Up || m_paused.isEmpty()) {
                launch();
                return;
            }
            // Paused containers first (`compose up` leaves them paused):
            // resumed, then up as usual.
            const QStringList paused = std::exchange(m_paused, {});
            emit progress(QStringLiteral("Resuming %1").arg(paused.join(QStringLiteral(", "))));
            auto *resume = new Command(
                composeCommand(m_env, cli, QStringList { QStringLiteral("unpause") } + paused,
                               m_timeoutMs, QStringLiteral("compose unpause"), m_variables),
                this);
            m_command = resume;
            connect(resume, &Command::finished, this,
                    [this, resume, op, service, what, finish, launch](const CommandResult &r) {
                        resume->deleteLater();
                        m_command = nullptr;
                        if (m_cancelled || r.end == CommandResult::End::Cancelled) {
                            finish({ op, service, OperationResult::Outcome::Cancelled,
                                     what + QStringLiteral(" was cancelled") });
                            return;
                        }
                        if (!r.ok()) {
                            finish({ op, service, OperationResult::Outcome::Failed,
                                     explainDockerFailure(
                                         r, QStringLiteral("resuming the paused services"), m_env),
                                     commandDetails(resume->spec(), r,
                                                    secretsOf(m_env, m_variables)) });
                            return;
                        }
                        launch();
                    });
            resume->start();
        };
        // Tags from the engine: a build is made (or found) for the checkout
        // before a start that has no tag to keep, so what starts is a rollback point.
        const bool buildFirst = op == StackOperation::Up && m_env.tagsFromEngine() &&
            !m_env.imageRepository.isEmpty() && !m_variables.contains(m_env.tagVariable);
        if (op != StackOperation::Build && !buildFirst) {
            compose();
            return;
        }
        auto *build = new LocalBuild(m_env, m_variables, this);
        m_build = build;
        connect(build, &LocalBuild::progress, this, &ComposeDriver::progress);
        build->start(
            buildFirst,
            [this, build, op, service, what, finish, compose](const Build &made,
                                                              const LocalBuild::Failure &failure) {
                build->deleteLater();
                m_build = nullptr;
                if (failure.cancelled || m_cancelled) {
                    finish({ op, service, OperationResult::Outcome::Cancelled,
                             what + QStringLiteral(" was cancelled") });
                    return;
                }
                if (!failure.message.isEmpty()) {
                    if (op == StackOperation::Up && failure.notACheckout) {
                        // Not a clone: compose starts (or builds) its own tag.
                        emit progress(failure.message);
                        compose();
                        return;
                    }
                    finish({ op, service, OperationResult::Outcome::Failed, failure.message });
                    return;
                }
                emit built(made, op == StackOperation::Up);
                if (op == StackOperation::Build) {
                    finish({ op, service, OperationResult::Outcome::Succeeded,
                             QStringLiteral("Built %1:%2 (image %3)")
                                 .arg(made.repository, made.tag, made.imageId.mid(7, 12)) });
                    return;
                }
                m_variables.insert(m_env.repositoryVariable, m_env.imageRepository);
                m_variables.insert(m_env.tagVariable, made.tag);
                compose();
            });
    });
}

} // namespace pilothouse
