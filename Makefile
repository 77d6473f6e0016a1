# Two commands do everything on a fresh Debian 12 / Ubuntu machine:
#   make run    build and start (until the panel lands: deckhand, embedded SQLite)
#   make test   build and run every test
PRESET ?= $(if $(filter true,$(CI)),ci,dev)
BUILD_DIR := build/$(PRESET)
JOBS ?= 2
DECKHAND := $(BUILD_DIR)/services/deckhand/deckhand

.PHONY: all setup build run test test-unit bench format format-check clean

all: build

setup:
	@scripts/setup.sh test

build: setup
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET) --parallel $(JOBS)

run: build
	@echo "Starting deckhand (embedded SQLite, no Redis). Ctrl-C stops it."
	LOG_FORMAT=$${LOG_FORMAT:-console} $(DECKHAND) serve

test: build
	ctest --preset $(PRESET) --parallel 1

test-unit: build
	ctest --preset $(PRESET) -L unit

bench: build
	@scripts/setup.sh bench
	/usr/bin/python3 tests/bench/http_bench.py --deckhand $(DECKHAND)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

format-check: setup
	git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build
