#pragma once

#include "core/result.h"
#include "drivers/command.h"
#include "env/environment.h"

#include <QObject>
#include <functional>

// How Pilothouse calls the Docker CLI for an environment: the engine chosen by
// context or DOCKER_HOST, LANG=C for parseable output, and failures turned
// into sentences a person can act on.
namespace pilothouse {

QProcessEnvironment dockerEnvironment(const Environment &env);
// `docker [--context X] <args>` for the environment.
CommandSpec dockerCommand(const Environment &env, const QStringList &args, int timeoutMs,
                          const QString &description);

// Why a docker or compose call failed, in words a person can act on.
// Who listens on a local TCP port, read from /proc: "nginx (pid 812)", or
// "a container of the engine (docker-proxy, pid 90)"; empty when not known
// (no listener found, or another user's process that /proc hides).
QString localPortOwner(int port);

QString explainDockerFailure(const CommandResult &result, const QString &what,
                             const Environment &env);

// docker compose (v2 plugin) or docker-compose (v1), found once per process.
struct ComposeCli
{
    QString program; // docker or docker-compose
    bool v2 = false;
};

// Finds the compose CLI without blocking: `docker compose version` runs as a
// child; the answer is cached for the life of the process.
void locateCompose(const Environment &env, QObject *context,
                   std::function<void(Expected<ComposeCli>)> done);
// Forgets the cached answer (tests switch PATH between cases).
void resetComposeCache();

// `variables` go into the child's environment, where compose interpolates
// them (the deployed tag, for one); they override the inherited ones.
CommandSpec composeCommand(const Environment &env, const ComposeCli &cli, const QStringList &args,
                           int timeoutMs, const QString &description,
                           const QMap<QString, QString> &variables = {});

} // namespace pilothouse
