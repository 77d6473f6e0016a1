#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QJsonValue>

// YAML as JSON values, for reading compose and stack files (libyaml's
// parser). Scalars stay strings unless plainly a number, a boolean or null
// (YAML 1.1's core forms); anchors and aliases are resolved, and merge keys
// (`<<: *anchor`, `<<: [*a, *b]`) are applied, the mapping's own keys
// winning. Only the first document of a stream is read.
namespace pilothouse {

// The error names the line and column: "line 12, column 3: did not find
// expected key".
Expected<QJsonValue> parseYaml(const QByteArray &text);

} // namespace pilothouse
