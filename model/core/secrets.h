#pragma once

#include "core/result.h"

#include <QObject>
#include <functional>

// Secrets in the system keychain (Secret Service on Linux, through
// QtKeychain), never in files. Asynchronous: the answer comes through the
// callback on the context's thread. Keys are "<environment>/<what>", under the
// service name "pilothouse". Without QtKeychain in the build every call
// answers with an error that says so.
namespace pilothouse {

bool keychainAvailable(); // built with QtKeychain
QString keychainService();

void readSecret(const QString &key, QObject *context, std::function<void(Expected<QString>)> done);
void writeSecret(const QString &key, const QString &value, QObject *context,
                 std::function<void(Outcome)> done);
void deleteSecret(const QString &key, QObject *context, std::function<void(Outcome)> done);

} // namespace pilothouse
