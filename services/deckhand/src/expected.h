#pragma once

#include "core/result.h"

// deckhand speaks the same error vocabulary as the panel's core: one
// definition (model/core/result.h), named here for deckhand's code.
namespace deckhand {

using pilothouse::Done;
using pilothouse::Error;
using pilothouse::Expected;
using pilothouse::Outcome;
using pilothouse::success;

} // namespace deckhand
