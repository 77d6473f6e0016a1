# Two commands do everything on a fresh Debian 12 / Ubuntu machine:
#   make run    build and start the `local` environment (deckhand on SQLite, no Docker)
#   make test   build and run every test
PRESET ?= $(if $(filter true,$(CI)),ci,dev)
BUILD_DIR := build/$(PRESET)
JOBS ?= 2
DECKHAND := $(BUILD_DIR)/services/deckhand/deckhand
CTL := $(BUILD_DIR)/cli/pilothousectl
GUI := $(BUILD_DIR)/gui/pilothouse

.PHONY: all setup build run test test-unit bench screenshots format format-check clean

all: build

setup:
	@scripts/setup.sh test

build: setup
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET) --parallel $(JOBS)

# The window on the `local` environment (deckhand on embedded SQLite, no
# Docker). Without a display, the same environment runs headless through
# pilothousectl: up, live status until Ctrl-C, then down.
run: build
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  exec $(GUI) --env local; \
	else \
	  echo "make run: no display (DISPLAY/WAYLAND_DISPLAY unset); running local headless: $(CTL) up --env local"; \
	  exec $(CTL) up --env local; \
	fi

test: build
	ctest --preset $(PRESET) --parallel 1

test-unit: build
	ctest --preset $(PRESET) -L unit

bench: build
	@scripts/setup.sh bench
	/usr/bin/python3 tests/bench/http_bench.py --deckhand $(DECKHAND)
	$(BUILD_DIR)/tests/bench/bench_monitor --deckhand $(DECKHAND)
	/usr/bin/python3 tests/bench/bench_window.py --build $(BUILD_DIR)
	/usr/bin/python3 tests/bench/bench_rollback.py --ctl $(CTL)
	/usr/bin/python3 tests/bench/bench_rollout.py --ctl $(CTL)
	/usr/bin/python3 tests/bench/bench_swarm.py --build $(BUILD_DIR)

screenshots: build
	/usr/bin/python3 tests/gui/screenshots.py --shoot $(BUILD_DIR)/tests/gui_shoot --out docs/screenshots

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

format-check: setup
	git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build
