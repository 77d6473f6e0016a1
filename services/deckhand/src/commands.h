#pragma once

#include "config.h"

#include <QStringList>

namespace deckhand {

int runServe(const Config &config);
int runWorker(const Config &config);
int runMigrate(const Config &config);
// Exit 0 when the local API answers (readiness, or liveness with --live), or
// when the worker's heartbeat is fresh (--worker). For Docker's exec-form HEALTHCHECK.
int runHealthcheck(const Config &config, const QStringList &arguments);

} // namespace deckhand
