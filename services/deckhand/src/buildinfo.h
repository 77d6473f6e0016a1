#pragma once

// Build identity, generated at build time (cmake/buildinfo.cmake) into one
// translation unit, so a new commit recompiles that file alone.
namespace deckhand::build {
extern const char kVersion[];
extern const char kGitSha[];
extern const char kBuildTime[];
extern const char kImageTag[];
} // namespace deckhand::build
