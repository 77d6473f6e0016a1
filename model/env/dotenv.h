#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QHash>
#include <QString>
#include <QStringList>
#include <functional>

// A compose project's `.env`, made from its `.env.example` the first time the
// stack starts: compose's own place for the stack's secrets (the one file of
// secrets in plain text the panel writes). Passwords get strong random
// values, the file is private to the user (0600) and never overwritten, and
// no value is ever printed.
namespace pilothouse {

struct DotEnvCreated
{
    QString path; // empty: nothing was made (a .env was there, or no example)
    QStringList generated; // the variables that got random values
};

// The example's text with every secret replaced by a fresh random value:
// variables named *_PASSWORD, *_SECRET or *_TOKEN, and any value that starts
// with "change-me". Everything else (comments, order, defaults) stays.
// Pure, for tests: `random` gives the replacement for a variable name.
QByteArray fillSecrets(const QByteArray &example, QStringList *generated,
                       const std::function<QByteArray(const QString &)> &random);

// URL-safe random hex (the stack puts passwords into URLs), 32 bytes of
// entropy from the system's generator.
QByteArray randomSecret();

// In `folder`: when `.env` is missing and `.env.example` exists, writes
// `.env` (mode 0600, created exclusively: an existing one is never
// replaced) with fresh secrets. An error says what could not be written.
Expected<DotEnvCreated> ensureDotEnv(const QString &folder);

// A variable as the stack sees it: the environment first, then the
// project's .env (`envFile`), then the default the compose files give it
// (`${NAME:-default}`); empty when none sets it.
QString stackVariable(const QString &name, const QStringList &composeFiles, const QString &envFile);

// NAME=value lines of a .env file (comments and blank lines skipped); empty
// when it cannot be read.
QHash<QString, QString> readDotEnv(const QString &path);

// True for a variable that holds a secret: *_PASSWORD, *_SECRET, *_TOKEN.
bool isSecretVariable(const QString &name);
// The values of the secret variables a .env file sets, for redaction.
QStringList secretValues(const QString &envFile);

// The variables a compose file requires (`${NAME:?message}`) that are set
// neither in `.env` of its folder nor in the process environment.
QStringList missingRequiredVariables(const QString &composeFile, const QString &envFile);

} // namespace pilothouse
