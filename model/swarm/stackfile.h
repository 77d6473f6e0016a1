#pragma once

#include "core/result.h"

#include <QString>
#include <QStringList>
#include <functional>
#include <optional>

// A stack file (compose format, version 3.x) as `docker stack deploy` takes
// it: read before anything is deployed, so what the stack deployer would
// reject, or silently ignore where that matters, is said first with what to
// change, and the secrets it needs are known.
namespace pilothouse {

// The value of a variable, or nullopt-like empty optional when unset.
using VariableLookup = std::function<std::optional<QString>(const QString &name)>;

// Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default},
// ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+other}. A
// required variable that is unset adds "NAME: message" to *missing.
QString interpolate(const QString &text, const VariableLookup &lookup, QStringList *missing);

struct StackSecret
{
    QString key; // under the file's top-level `secrets:`
    QString name; // as the engine knows it (`name:`, else the key)
    bool external = false;
};

struct StackFile
{
    QString path;
    QString version;
    QStringList services;
    QList<StackSecret> secrets;
    // What `docker stack deploy` rejects, or ignores in a way that changes
    // what runs; each names the file and the key, and what to do.
    QStringList problems;
    // Required variables (${NAME:?message}) that nothing sets: "NAME: message".
    QStringList missingVariables;
    // What it ignores harmlessly (said once, deployed anyway).
    QStringList warnings;
};

// Reads, interpolates and checks one stack file. An error when it cannot be
// read or is not YAML at all; problems otherwise.
Expected<StackFile> readStackFile(const QString &path, const VariableLookup &lookup);

} // namespace pilothouse
