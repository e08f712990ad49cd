#!/usr/bin/env bash
# One GPU burst of the shipped architecture's GPU recipe (docs/training.md, "Training on GPU bursts").
#
#   bash tools/gpu_burst.sh [C] [MINUTES] [DISC]        # defaults: 4 8 projected
#
# On a lent GPU machine (through the device tool, with .gpu-kit carried: `gcz gpu-kit`), it installs
# the kit's wheels, continues the kit's resume point (or warm-starts from INIT, by default the shipped
# default model for C, e.g. gcz-c4-v2), trains
# for MINUTES and, when $OUT is set, leaves there at most 8 files: the compact checkpoint
# (compact.json, skeleton.pt, part-*.pt; 49 MiB for C=4 with the moving average) and burst.tar (log.csv, summary.json,
# nvidia-smi.txt; with BENCH=1 also train_speed.json/.md of `gcz train-bench --device cuda`).
# Elsewhere (`make train-gpu`) it is the same recipe with the installed packages.
#
# Environment: GCZ (default "python3 -m gcodec.cli"), GPU_DATA (default .gpu-kit/photos if present,
# else data/gpu-pool), KIT (default .gpu-kit), FM (feature-matching weight; default 10, 1.5 with the
# projected D), INIT (the model a new run starts from; default: weights/manifest.json's default for C),
# BENCH=1 to time the GPU setups after training, EMA (decay of the moving average of E/G's weights that
# gcz publish ships; default 0.999, 0 for none), UPSAMPLE (G's upsampling: resize, the default, fits resize
# layers to a transposed INIT before the first step; transposed for the paper's), GRID (weight of the grid
# penalty; default 1).
set -euo pipefail
C=${1:-4}
MINUTES=${2:-8}
DISC=${3:-projected}
KIT=${KIT:-.gpu-kit}
if [ -d "$KIT" ]; then KIT=$(cd "$KIT" && pwd); fi
GCZ=${GCZ:-python3 -m gcodec.cli}
RUN=runs/gpu-c$C
INIT=${INIT:-$(python3 -c "import json; print(json.load(open('weights/manifest.json'))['defaults']['$C'])")}
if [ -d "$KIT/wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gcz-site "$KIT"/wheels/*.whl
  export PYTHONPATH=/tmp/gcz-site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -f "$KIT/lite0-features.pt" ]; then export GCZ_PERCEPTUAL_WEIGHTS=$KIT/lite0-features.pt; fi
if [ -z "${GPU_DATA:-}" ]; then
  if [ -d "$KIT/photos" ]; then GPU_DATA=$KIT/photos; else GPU_DATA=data/gpu-pool; fi
fi
export PYTHONUNBUFFERED=1
# feature matching on the projected D's heads is larger in scale: 1.5 there gives it λ = 10's share (docs/training.md)
if [ "$DISC" = projected ]; then FM=${FM:-1.5}; else FM=${FM:-10}; fi
EMA=${EMA:-0.999}
UPSAMPLE=${UPSAMPLE:-resize}
GRID=${GRID:-1}
mkdir -p "$RUN"
if [ -d "$KIT/resume" ] && [ ! -e "$RUN/compact" ] && [ ! -e "$RUN/checkpoint.pt" ]; then
  cp -r "$KIT/resume" "$RUN/compact"   # a run carried from an earlier burst
fi
# --init-from only applies to a new run: an existing checkpoint or compact folder is resumed
$GCZ train --out-dir "$RUN" --arch cpu --channels "$C" --dataset folder --data-root "$GPU_DATA" --disc "$DISC" --lambda-fm "$FM" \
  --crop 256 --batch-size 32 --device cuda --bf16 --lr 2e-4 --lambda-perceptual 0.1 --fixed-norm-after -1 --ema "$EMA" \
  --upsample "$UPSAMPLE" --lambda-grid "$GRID" \
  --init-from "$INIT" --iterations 1000000 --checkpoint-minutes 2 --max-minutes "$MINUTES"
if [ -n "${OUT:-}" ]; then
  extra=()
  if [ "${BENCH:-0}" = 1 ]; then
    $GCZ train-bench --device cuda --steps 10 --out "$RUN" && extra=(train_speed.json train_speed.md)
  fi
  (nvidia-smi || true) > "$RUN/nvidia-smi.txt" 2>&1
  cp "$RUN"/compact/* "$OUT"/
  tar -C "$RUN" -cf "$OUT/burst.tar" log.csv summary.json nvidia-smi.txt "${extra[@]}"
  ls -la "$OUT"
fi
