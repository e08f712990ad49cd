# gcz — the two commands that matter on a fresh machine:
#   make demo   set up .venv and compress/decompress the example photo with the shipped weights
#   make test   set up .venv and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gcz-installed
OUT    ?= demo-out

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

clean:
	rm -rf $(OUT) .pytest_cache
