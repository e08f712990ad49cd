# gcz — the two commands that matter on a fresh machine:
#   make demo   set up .venv and compress/decompress the example photo with the shipped weights
#   make test   set up .venv and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gcz-installed
OUT    ?= demo-out

PEER_PKGS := libheif-examples libavif-bin libjxl-tools webp libopenjp2-tools

.PHONY: setup demo test data train-c4 peers bench eval clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel of torch 2.13.0 (any other torch pulls gigabytes of CUDA)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[train,eval,test]"
	touch $(STAMP)

demo: setup
	mkdir -p $(OUT)
	$(BIN)/gcz models
	for c in 2 4 8; do \
	  $(BIN)/gcz compress examples/mountain.jpg --channels $$c -o $(OUT)/mountain-c$$c.gcz --force --json && \
	  $(BIN)/gcz decompress $(OUT)/mountain-c$$c.gcz -o $(OUT)/mountain-c$$c.png --force || exit 1; \
	done
	$(BIN)/gcz info $(OUT)/mountain-c4.gcz
	@echo "reconstructions in $(OUT)/"

test: setup
	$(BIN)/python -m pytest -q tests

# training photos from Debian packages (about 640 MB of downloads, 180 photos)
data: setup
	$(BIN)/gcz data fetch --root data/pool

train-c4: data
	$(BIN)/gcz train --out-dir runs/c4 --channels 4 --data-root data/pool --max-minutes 60

# peer codecs for `make eval` / `make bench` (Debian/Ubuntu, needs root)
peers:
	apt-get install -y $(PEER_PKGS)

# benchmarks, not tests: bench/results.json + bench/results.md (BENCH_ARGS=--quick skips 4096x4096)
bench: setup
	$(BIN)/gcz bench --out bench $(BENCH_ARGS)

# rate-quality comparison on the held-out photos; rerunning resumes
EVAL_OUT ?= eval-out
eval: setup data peers
	$(BIN)/gcz eval data/pool --split val --max-side 768 --channels 2,4,8 \
	  --codecs heic,avif,jxl,webp,jp2,jpeg --match same,double --out $(EVAL_OUT) $(EVAL_ARGS)
	@echo "open $(EVAL_OUT)/index.html; README section in $(EVAL_OUT)/README_section.md"

clean:
	rm -rf $(OUT) .pytest_cache
