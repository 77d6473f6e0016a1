#include "swarm/swarmdriver.h"

#include "drivers/docker.h"
#include "env/dotenv.h"
#include "swarm/stackfile.h"
#include "swarm/swarmwatcher.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>

namespace pilothouse {

namespace {
const QString kStackLabel = QStringLiteral("com.docker.stack.namespace");
const QString kStoppedLabel = QStringLiteral("pilothouse.stopped-replicas");
constexpr int kCallTimeoutMs = 60000;
constexpr int kMaxReplicas = 100;

QString envFileOf(const Environment &env)
{
    return env.envFile.isEmpty() ? QDir(env.stackDirectory()).filePath(QStringLiteral(".env"))
                                 : env.envFile;
}

QProcessEnvironment withVariables(QProcessEnvironment base, const QMap<QString, QString> &vars)
{
    for (auto it = vars.cbegin(); it != vars.cend(); ++it)
        base.insert(it.key(), it.value());
    return base;
}

} // namespace

SwarmDriver::SwarmDriver(Environment env, QObject *parent)
    : StackDriver(parent)
    , m_env(std::move(env))
{
    qRegisterMetaType<pilothouse::OperationResult>();
}

SwarmDriver::~SwarmDriver()
{
    if (m_command)
        m_command->dismiss();
}

QMap<QString, QString> SwarmDriver::stackVariables(const Environment &env,
                                                   const QMap<QString, QString> &variables)
{
    QMap<QString, QString> vars;
    const QHash<QString, QString> dotenv = readDotEnv(envFileOf(env));
    for (auto it = dotenv.cbegin(); it != dotenv.cend(); ++it)
        vars.insert(it.key(), it.value());
    // The process environment wins over .env, as with compose.
    const QProcessEnvironment process = QProcessEnvironment::systemEnvironment();
    for (const QString &key : process.keys())
        vars.insert(key, process.value(key));
    for (auto it = variables.cbegin(); it != variables.cend(); ++it)
        vars.insert(it.key(), it.value());
    vars.insert(QStringLiteral("STACK_NAME"), env.stackName());
    return vars;
}

QString SwarmDriver::fullName(const QString &service) const
{
    return m_env.stackName() + QLatin1Char('_') + service;
}

bool SwarmDriver::begin(StackOperation op, const QString &service)
{
    const QString what = QStringLiteral("%1%2").arg(
        toString(op), service.isEmpty() ? QString() : QLatin1Char(' ') + service);
    if (m_busy) {
        refuseLater(op, service,
                    QStringLiteral("%1: another operation is still running in \"%2\"; wait for it "
                                   "or cancel it")
                        .arg(what, m_env.name));
        return false;
    }
    if (!service.isEmpty() && !isValidServiceName(service)) {
        refuseLater(op, service, QStringLiteral("\"%1\" is not a valid service name").arg(service));
        return false;
    }
    m_busy = true;
    m_cancelled = false;
    m_op = op;
    m_service = service;
    emit operationStarted(op, service);
    return true;
}

void SwarmDriver::finish(const OperationResult &result)
{
    m_busy = false;
    m_command = nullptr;
    emit operationFinished(result);
}

void SwarmDriver::fail(const QString &message, const QString &details)
{
    finish({ m_op, m_service,
             m_cancelled ? OperationResult::Outcome::Cancelled : OperationResult::Outcome::Failed,
             m_cancelled ? QStringLiteral("%1 was cancelled").arg(toString(m_op)) : message,
             details });
}

void SwarmDriver::cancel()
{
    if (!m_busy)
        return;
    m_cancelled = true;
    if (m_command)
        m_command->cancel();
}

void SwarmDriver::call(const QStringList &args, const QString &what, Step done,
                       const QByteArray &input, bool secretInput)
{
    CommandSpec spec = dockerCommand(m_env, args, kCallTimeoutMs, what);
    spec.environment = withVariables(spec.environment, stackVariables(m_env, m_variables));
    if (!input.isNull())
        spec.inputData = input;
    if (!secretInput)
        emit progress(QStringLiteral("Running %1").arg(spec.display()));
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    connect(cmd, &Command::outputLine, this, [this](const QString &line, bool) {
        if (!line.trimmed().isEmpty())
            emit progress(line.trimmed());
    });
    connect(cmd, &Command::finished, this, [this, cmd, done](const CommandResult &r) {
        cmd->deleteLater();
        if (m_command == cmd)
            m_command = nullptr;
        if (m_cancelled || r.end == CommandResult::End::Cancelled) {
            m_cancelled = true;
            fail({});
            return;
        }
        m_lastDetails =
            r.ok() ? QString() : commandDetails(cmd->spec(), r, secretValues(envFileOf(m_env)));
        done(r);
    });
    cmd->start();
}

void SwarmDriver::up()
{
    if (!begin(StackOperation::Up, {}))
        return;
    // A fresh checkout: the stack's .env made from its example first, for
    // the values its secrets are made from.
    if (m_env.envFile.isEmpty() && !QFile::exists(envFileOf(m_env))) {
        const Expected<DotEnvCreated> made = ensureDotEnv(m_env.stackDirectory());
        if (!made) {
            QMetaObject::invokeMethod(
                this, [this, why = made.error()] { fail(why); }, Qt::QueuedConnection);
            return;
        }
        if (!made->path.isEmpty())
            emit progress(QStringLiteral("Created %1 from .env.example with new random %2 "
                                         "(private to you, never committed)")
                              .arg(made->path, made->generated.join(QStringLiteral(", "))));
    }
    const QMap<QString, QString> vars = stackVariables(m_env, m_variables);
    const VariableLookup lookup = [&vars](const QString &name) -> std::optional<QString> {
        const auto it = vars.constFind(name);
        return it == vars.cend() ? std::nullopt : std::optional<QString>(*it);
    };
    QStringList problems;
    QList<StackSecret> secrets;
    for (const QString &path : std::as_const(m_env.composeFiles)) {
        const auto file = readStackFile(path, lookup);
        if (!file) {
            problems << file.error();
            continue;
        }
        problems << file->problems;
        for (const QString &m : file->missingVariables)
            problems << QStringLiteral("%1: set %2 in %3 (or in the environment)")
                            .arg(QFileInfo(path).fileName(), m, envFileOf(m_env));
        for (const QString &w : file->warnings)
            emit progress(w);
        for (const StackSecret &s : file->secrets) {
            if (s.external)
                secrets << s;
        }
    }
    if (!problems.isEmpty()) {
        const QString message =
            QStringLiteral("Nothing was deployed: the stack files need changes first.\n- %1")
                .arg(problems.join(QStringLiteral("\n- ")));
        QMetaObject::invokeMethod(
            this, [this, message] { fail(message); }, Qt::QueuedConnection);
        return;
    }
    emit progress(QStringLiteral("Asking %1 whether it manages a swarm").arg(m_env.name));
    call({ QStringLiteral("info"), QStringLiteral("--format"),
           QStringLiteral("{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") },
         QStringLiteral("docker info"), [this, secrets, vars, lookup](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker info"), m_env));
                 return;
             }
             const QStringList parts = r.output.trimmed().split(QLatin1Char(' '));
             if (const QString why =
                     swarmProblem(parts.value(0), parts.value(1) == QLatin1String("true"));
                 !why.isEmpty()) {
                 fail(QStringLiteral("Nothing was deployed. ") + why);
                 return;
             }
             call({ QStringLiteral("secret"), QStringLiteral("ls"), QStringLiteral("--format"),
                    QStringLiteral("{{.Name}}") },
                  QStringLiteral("docker secret ls"),
                  [this, secrets, vars](const CommandResult &ls) {
                      if (!ls.ok()) {
                          fail(explainDockerFailure(ls, QStringLiteral("docker secret ls"), m_env));
                          return;
                      }
                      const QStringList existing =
                          ls.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
                      const VariableLookup lookupVars =
                          [&vars](const QString &name) -> std::optional<QString> {
                          const auto it = vars.constFind(name);
                          return it == vars.cend() || it->isEmpty() ? std::nullopt
                                                                    : std::optional<QString>(*it);
                      };
                      QStringList missing;
                      QList<std::pair<QString, QByteArray>> toMake;
                      for (const StackSecret &s : secrets) {
                          if (existing.contains(s.name) ||
                              std::any_of(toMake.cbegin(), toMake.cend(),
                                          [&s](const auto &m) { return m.first == s.name; }))
                              continue;
                          const auto tmpl =
                              std::find_if(m_env.swarmSecrets.cbegin(), m_env.swarmSecrets.cend(),
                                           [&s](const auto &p) { return p.first == s.key; });
                          if (tmpl == m_env.swarmSecrets.cend()) {
                              missing << QStringLiteral(
                                             "the secret %1 is not on the engine: create it "
                                             "with `docker secret create %1 -` (the value on "
                                             "its input), or give swarm.secrets.%2 a template "
                                             "of the stack's variables in the environment")
                                             .arg(s.name, s.key);
                              continue;
                          }
                          QStringList unset;
                          static const QRegularExpression ref(
                              QStringLiteral("\\$\\{?([A-Za-z_][A-Za-z0-9_]*)"));
                          auto refs = ref.globalMatch(tmpl->second);
                          while (refs.hasNext()) {
                              const QString name = refs.next().captured(1);
                              if (!lookupVars(name) && !unset.contains(name))
                                  unset << name;
                          }
                          if (!unset.isEmpty()) {
                              missing << QStringLiteral("the secret %1 is made from %2, which "
                                                        "is set neither in %3 nor in the "
                                                        "environment: set it there")
                                             .arg(s.name, unset.join(QStringLiteral(", ")),
                                                  envFileOf(m_env));
                              continue;
                          }
                          toMake << std::pair {
                              s.name, interpolate(tmpl->second, lookupVars, nullptr).toUtf8()
                          };
                      }
                      if (!missing.isEmpty()) {
                          fail(QStringLiteral("Nothing was deployed: %1.")
                                   .arg(missing.join(QStringLiteral("; "))));
                          return;
                      }
                      createSecrets(toMake, {}, [this](const QStringList &made) {
                          m_madeSecrets = made;
                          deploy();
                      });
                  });
         });
}

void SwarmDriver::createSecrets(QList<std::pair<QString, QByteArray>> missing, QStringList made,
                                std::function<void(QStringList)> then)
{
    if (missing.isEmpty()) {
        then(made);
        return;
    }
    const auto [name, value] = missing.takeFirst();
    emit progress(QStringLiteral("Creating the secret %1 from the stack's variables").arg(name));
    call(
        { QStringLiteral("secret"), QStringLiteral("create"), QStringLiteral("--label"),
          QStringLiteral("%1=%2").arg(kStackLabel, m_env.stackName()), QStringLiteral("--label"),
          QStringLiteral("pilothouse.environment=%1").arg(m_env.name), name, QStringLiteral("-") },
        QStringLiteral("docker secret create"),
        [this, name = name, missing, made, then](const CommandResult &r) mutable {
            if (!r.ok()) {
                removeSecrets(made);
                fail(QStringLiteral("Nothing was deployed: creating the secret %1 failed: %2")
                         .arg(name,
                              explainDockerFailure(r, QStringLiteral("docker secret create"),
                                                   m_env)));
                return;
            }
            made << name;
            createSecrets(missing, made, then);
        },
        value, true);
}

void SwarmDriver::removeSecrets(const QStringList &names)
{
    if (names.isEmpty())
        return;
    // Best effort, after a failed deploy: not this operation's command.
    auto *cmd = new Command(
        dockerCommand(m_env, QStringList { QStringLiteral("secret"), QStringLiteral("rm") } + names,
                      kCallTimeoutMs, QStringLiteral("docker secret rm")),
        this);
    connect(cmd, &Command::finished, cmd, &QObject::deleteLater);
    cmd->start();
}

void SwarmDriver::deploy()
{
    QStringList args { QStringLiteral("stack"), QStringLiteral("deploy") };
    for (const QString &f : std::as_const(m_env.composeFiles))
        args << QStringLiteral("--compose-file") << f;
    // Images the engine has (local builds) are not looked up in a registry.
    if (m_env.tagsFromEngine())
        args << QStringLiteral("--resolve-image") << QStringLiteral("never");
    args << QStringLiteral("--prune") << m_env.stackName();
    // Whether the stack runs already: a first deploy that fails part way is
    // removed again, so nothing is left half-deployed.
    call(
        { QStringLiteral("service"), QStringLiteral("ls"), QStringLiteral("--quiet"),
          QStringLiteral("--filter"),
          QStringLiteral("label=%1=%2").arg(kStackLabel, m_env.stackName()) },
        QStringLiteral("docker service ls"), [this, args](const CommandResult &ls) {
            if (!ls.ok()) {
                removeSecrets(std::exchange(m_madeSecrets, {}));
                fail(explainDockerFailure(ls, QStringLiteral("docker service ls"), m_env));
                return;
            }
            const bool first = ls.output.trimmed().isEmpty();
            emit progress(QStringLiteral("Deploying the stack %1").arg(m_env.stackName()));
            call(
                args, QStringLiteral("docker stack deploy"), [this, first](const CommandResult &r) {
                    const QStringList made = std::exchange(m_madeSecrets, {});
                    if (r.ok()) {
                        finish({ StackOperation::Up,
                                 {},
                                 OperationResult::Outcome::Succeeded,
                                 QStringLiteral("Deployed the stack %1; the swarm starts its tasks "
                                                "now")
                                     .arg(m_env.stackName()) });
                        return;
                    }
                    const QString why =
                        explainDockerFailure(r, QStringLiteral("docker stack deploy"), m_env);
                    const QString details = m_lastDetails;
                    if (!first) {
                        removeSecrets(made);
                        fail(QStringLiteral("The stack %1 was not updated as a whole: %2 (the "
                                            "services it did update run their new spec; `docker "
                                            "service rollback` takes one back)")
                                 .arg(m_env.stackName(), why),
                             details);
                        return;
                    }
                    // What this first deploy created goes again (the secrets it
                    // made with it: they carry the stack's label).
                    call({ QStringLiteral("stack"), QStringLiteral("rm"), m_env.stackName() },
                         QStringLiteral("docker stack rm"),
                         [this, why, details](const CommandResult &) {
                             waitForNetworks(0, [this, why, details] {
                                 fail(QStringLiteral("Nothing was deployed: %1").arg(why), details);
                             });
                         });
                });
        });
}

void SwarmDriver::waitForNetworks(int attempt, std::function<void()> then)
{
    // `docker stack rm` returns before the swarm has removed the stack's
    // networks; a deploy in between fails with "network ... not found".
    call({ QStringLiteral("network"), QStringLiteral("ls"), QStringLiteral("--quiet"),
           QStringLiteral("--filter"),
           QStringLiteral("label=%1=%2").arg(kStackLabel, m_env.stackName()) },
         QStringLiteral("docker network ls"), [this, attempt, then](const CommandResult &r) {
             if (!r.ok() || r.output.trimmed().isEmpty() || attempt >= 120) {
                 then();
                 return;
             }
             QTimer::singleShot(500, this, [this, attempt, then] {
                 if (m_cancelled)
                     fail({});
                 else
                     waitForNetworks(attempt + 1, then);
             });
         });
}

void SwarmDriver::down()
{
    if (!begin(StackOperation::Down, {}))
        return;
    call({ QStringLiteral("stack"), QStringLiteral("rm"), m_env.stackName() },
         QStringLiteral("docker stack rm"), [this](const CommandResult &r) {
             if (!r.ok() && !r.errorOutput.contains(QLatin1String("Nothing found in stack"))) {
                 fail(explainDockerFailure(r, QStringLiteral("docker stack rm"), m_env));
                 return;
             }
             waitForNetworks(0, [this] {
                 if (!std::exchange(m_removeVolumes, false)) {
                     finish({ StackOperation::Down,
                              {},
                              OperationResult::Outcome::Succeeded,
                              QStringLiteral("Removed the stack %1 (services, networks, secrets, "
                                             "configs); its volumes are kept")
                                  .arg(m_env.stackName()) });
                     return;
                 }
                 removeVolumes(0);
             });
         });
}

void SwarmDriver::removeVolumes(int attempt)
{
    // Volumes are per node and in use until the stack's containers are gone.
    call({ QStringLiteral("volume"), QStringLiteral("ls"), QStringLiteral("--quiet"),
           QStringLiteral("--filter"),
           QStringLiteral("label=%1=%2").arg(kStackLabel, m_env.stackName()) },
         QStringLiteral("docker volume ls"), [this, attempt](const CommandResult &r) {
             const QStringList volumes = r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
             if (volumes.isEmpty()) {
                 finish({ StackOperation::Down,
                          {},
                          OperationResult::Outcome::Succeeded,
                          QStringLiteral("Removed the stack %1 and its volumes")
                              .arg(m_env.stackName()) });
                 return;
             }
             call(QStringList { QStringLiteral("volume"), QStringLiteral("rm") } + volumes,
                  QStringLiteral("docker volume rm"), [this, attempt](const CommandResult &rm) {
                      if (rm.ok()) {
                          removeVolumes(attempt);
                          return;
                      }
                      if (attempt >= 60) {
                          fail(QStringLiteral("Removed the stack %1, but not its volumes: %2")
                                   .arg(m_env.stackName(),
                                        explainDockerFailure(rm, QStringLiteral("docker volume rm"),
                                                             m_env)));
                          return;
                      }
                      // Still in use by containers that are stopping.
                      QTimer::singleShot(1000, this, [this, attempt] {
                          if (m_cancelled)
                              fail({});
                          else
                              removeVolumes(attempt + 1);
                      });
                  });
         });
}

void SwarmDriver::updateService(StackOperation op, const QString &service,
                                const QStringList &updateArgs, const QString &doneMessage)
{
    call(QStringList { QStringLiteral("service"), QStringLiteral("update"),
                       QStringLiteral("--detach") } +
             updateArgs + QStringList { fullName(service) },
         QStringLiteral("docker service update"),
         [this, op, service, doneMessage](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker service update"), m_env));
                 return;
             }
             finish({ op, service, OperationResult::Outcome::Succeeded, doneMessage });
         });
}

void SwarmDriver::restart(const QString &service)
{
    if (!begin(StackOperation::Restart, service))
        return;
    if (!service.isEmpty()) {
        updateService(StackOperation::Restart, service, { QStringLiteral("--force") },
                      QStringLiteral("%1's tasks are being replaced").arg(service));
        return;
    }
    // Every service of the stack, one forced update after the other.
    call({ QStringLiteral("service"), QStringLiteral("ls"), QStringLiteral("--format"),
           QStringLiteral("{{.Name}}"), QStringLiteral("--filter"),
           QStringLiteral("label=%1=%2").arg(kStackLabel, m_env.stackName()) },
         QStringLiteral("docker service ls"), [this](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker service ls"), m_env));
                 return;
             }
             auto names = std::make_shared<QStringList>(
                 r.output.split(QLatin1Char('\n'), Qt::SkipEmptyParts));
             if (names->isEmpty()) {
                 fail(QStringLiteral("The stack %1 runs no services: Start deploys it")
                          .arg(m_env.stackName()));
                 return;
             }
             auto next = std::make_shared<std::function<void()>>();
             *next = [this, names, next] {
                 if (names->isEmpty()) {
                     finish({ StackOperation::Restart,
                              {},
                              OperationResult::Outcome::Succeeded,
                              QStringLiteral("Every service's tasks are being replaced") });
                     *next = nullptr; // the cycle ends here
                     return;
                 }
                 const QString name = names->takeFirst();
                 call({ QStringLiteral("service"), QStringLiteral("update"),
                        QStringLiteral("--detach"), QStringLiteral("--force"), name },
                      QStringLiteral("docker service update"),
                      [this, next](const CommandResult &u) {
                          if (!u.ok()) {
                              fail(explainDockerFailure(u, QStringLiteral("docker service update"),
                                                        m_env));
                              *next = nullptr;
                              return;
                          }
                          (*next)();
                      });
             };
             (*next)();
         });
}

void SwarmDriver::stopService(const QString &service)
{
    if (!begin(StackOperation::StopService, service))
        return;
    call({ QStringLiteral("service"), QStringLiteral("inspect"), QStringLiteral("--format"),
           QStringLiteral("{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}"
                          "global{{end}}"),
           fullName(service) },
         QStringLiteral("docker service inspect"), [this, service](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker service inspect"), m_env));
                 return;
             }
             const QString replicas = r.output.trimmed();
             if (replicas == QLatin1String("global")) {
                 fail(QStringLiteral("%1 is a global service (one task per node): drain the "
                                     "nodes, or remove the stack")
                          .arg(service));
                 return;
             }
             if (replicas == QLatin1String("0")) {
                 finish({ StackOperation::StopService, service, OperationResult::Outcome::Succeeded,
                          QStringLiteral("%1 was already stopped (0 replicas)").arg(service) });
                 return;
             }
             updateService(StackOperation::StopService, service,
                           { QStringLiteral("--replicas"), QStringLiteral("0"),
                             QStringLiteral("--label-add"),
                             QStringLiteral("%1=%2").arg(kStoppedLabel, replicas) },
                           QStringLiteral("%1 scaled to 0 (Start service brings back its %2)")
                               .arg(service, replicas));
         });
}

void SwarmDriver::startService(const QString &service)
{
    if (!begin(StackOperation::StartService, service))
        return;
    call({ QStringLiteral("service"), QStringLiteral("inspect"), QStringLiteral("--format"),
           QStringLiteral("{{index .Spec.Labels \"%1\"}} {{if .Spec.Mode.Replicated}}"
                          "{{.Spec.Mode.Replicated.Replicas}}{{end}}")
               .arg(kStoppedLabel),
           fullName(service) },
         QStringLiteral("docker service inspect"), [this, service](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker service inspect"), m_env));
                 return;
             }
             const QStringList parts = r.output.trimmed().split(QLatin1Char(' '));
             const int stopped = parts.value(0).toInt();
             const int now = parts.value(1).toInt();
             if (now > 0 && stopped == 0) {
                 finish({ StackOperation::StartService, service,
                          OperationResult::Outcome::Succeeded,
                          QStringLiteral("%1 already runs %2 replicas").arg(service).arg(now) });
                 return;
             }
             const int replicas = stopped > 0 ? stopped : 1;
             QStringList args { QStringLiteral("--replicas"), QString::number(replicas) };
             if (stopped > 0)
                 args << QStringLiteral("--label-rm") << kStoppedLabel;
             updateService(StackOperation::StartService, service, args,
                           QStringLiteral("%1 back to %2 replicas").arg(service).arg(replicas));
         });
}

void SwarmDriver::scale(const QString &service, int replicas)
{
    if (replicas < 0 || replicas > kMaxReplicas) {
        refuseLater(StackOperation::Scale, service,
                    QStringLiteral("%1 replicas: give a number from 0 to %2")
                        .arg(replicas)
                        .arg(kMaxReplicas));
        return;
    }
    if (!begin(StackOperation::Scale, service))
        return;
    if (service.isEmpty()) {
        QMetaObject::invokeMethod(
            this, [this] { fail(QStringLiteral("name the service to scale")); },
            Qt::QueuedConnection);
        return;
    }
    call({ QStringLiteral("service"), QStringLiteral("scale"), QStringLiteral("--detach"),
           QStringLiteral("%1=%2").arg(fullName(service)).arg(replicas) },
         QStringLiteral("docker service scale"), [this, service, replicas](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker service scale"), m_env));
                 return;
             }
             finish({ StackOperation::Scale, service, OperationResult::Outcome::Succeeded,
                      QStringLiteral("%1 scaled to %2").arg(service).arg(replicas) });
         });
}

void SwarmDriver::setNodeAvailability(const QString &node, const QString &availability)
{
    static const QRegularExpression nodeName(QStringLiteral("^[A-Za-z0-9][A-Za-z0-9_.-]*$"));
    if (!nodeName.match(node).hasMatch()) {
        refuseLater(StackOperation::Node, node,
                    QStringLiteral("\"%1\" is not a node name or ID (`pilothousectl nodes` "
                                   "lists them)")
                        .arg(node));
        return;
    }
    if (availability != QLatin1String("active") && availability != QLatin1String("pause") &&
        availability != QLatin1String("drain")) {
        refuseLater(StackOperation::Node, node,
                    QStringLiteral("\"%1\": a node is active, pause or drain").arg(availability));
        return;
    }
    if (m_busy) {
        refuseLater(StackOperation::Node, node,
                    QStringLiteral("another operation is still running in \"%1\"; wait for it "
                                   "or cancel it")
                        .arg(m_env.name));
        return;
    }
    m_busy = true;
    m_cancelled = false;
    m_op = StackOperation::Node;
    m_service = node;
    emit operationStarted(StackOperation::Node, node);
    call({ QStringLiteral("node"), QStringLiteral("update"), QStringLiteral("--availability"),
           availability, node },
         QStringLiteral("docker node update"), [this, node, availability](const CommandResult &r) {
             if (!r.ok()) {
                 fail(explainDockerFailure(r, QStringLiteral("docker node update"), m_env));
                 return;
             }
             finish({ StackOperation::Node, node, OperationResult::Outcome::Succeeded,
                      availability == QLatin1String("drain")
                          ? QStringLiteral("%1 drained: the swarm moves its tasks to other "
                                           "nodes")
                                .arg(node)
                          : QStringLiteral("%1 is %2").arg(node, availability) });
         });
}

void SwarmDriver::pull()
{
    refuseLater(StackOperation::Pull, {},
                QStringLiteral("A swarm pulls images on each node when it deploys: Start (docker "
                               "stack deploy) takes the images the stack files name"));
}

} // namespace pilothouse
