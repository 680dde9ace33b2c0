# The two commands of the README's quick start: `make demo` and `make test`.
# Both install what is missing (Debian packages, as root or via sudo), then build.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
# `make test SANITIZE=1`: the whole suite under ASan and UBSan, in its own build folder.
ifeq ($(SANITIZE),1)
BUILD_DIR := build-asan
CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEDATTN_SANITIZE=ON
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
endif
FUZZ_SECONDS ?= 60

.PHONY: all setup configure build test demo bench models install clean fuzz mutants

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@bash scripts/setup.sh --test
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)

# `make bench`: medattn against a Python reference side by side (bench/bench.py), one
# `key value` line per figure; `make bench BENCH_QUICK=1` runs in a few minutes.
bench: configure
	@bash scripts/setup.sh --bench
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target medattn_bench medattn medattn_make_radiographs
	@BENCH_QUICK=$(BENCH_QUICK) /usr/bin/python3 bench/bench.py $(BUILD_DIR)

models: build
	@bash scripts/train_models.sh $(BUILD_DIR)

# Installs under PREFIX (default /usr/local): the binary, its man page, bash completion and
# the shipped models.
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# Builds every libFuzzer target with clang and runs each for FUZZ_SECONDS; non-zero on a crash.
fuzz:
	@bash scripts/setup.sh --fuzz
	@cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DMEDATTN_FUZZ=ON -DMEDATTN_BUILD_TESTS=OFF > /dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	@bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# Applies deliberate bugs one at a time in a scratch copy (build-mutants/) and runs the tests
# that should catch each; ends with "mutants: K killed, S survived". Slow; not part of `make test`.
mutants: setup
	@python3 scripts/mutants.py

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz build-mutants
