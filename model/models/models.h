#pragma once

// Item models over the core, for views and tests, one file each. Fed by
// signals; never block, never call out.
#include "models/databasemodel.h"
#include "models/deploymentmodel.h"
#include "models/endpointmodel.h"
#include "models/environmentmodel.h"
#include "models/logmodel.h"
#include "models/servicemodel.h"
