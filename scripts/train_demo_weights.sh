#!/usr/bin/env bash
# Reproduce the FIRST demo model (shipped until 2026-12-02; Test Dice 0.706; the shipped one now comes
# from scripts/train_best_model.sh): the `tiny` preset trained from scratch with `lgrnet train` on the
# CVC-ClinicDB-612 training videos, best checkpoint chosen on the Valid videos (per-frame Dice), stored
# in float16 as RUN_DIR/demo_tiny.safetensors (the shipped file is left alone).
#
# usage: bash scripts/train_demo_weights.sh DATA_ROOT [RUN_DIR]
#   DATA_ROOT holds CVC-ClinicDB-612/{Train,Valid} in the MICCAI VPS layout.
# One thread, so that the run is deterministic and does not depend on the core count; about
# 6000 steps of ~0.5-1 s on a 2-core CPU.
set -euo pipefail
DATA=${1:?usage: train_demo_weights.sh DATA_ROOT [RUN_DIR]}
RUN=${2:-runs/demo-tiny}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
lgrnet train --preset tiny \
  --data "$DATA/CVC-ClinicDB-612/Train" --val "$DATA/CVC-ClinicDB-612/Valid" \
  --out "$RUN" --progress off --no-tensorboard \
  train.seed=2024 train.image_size=192 'train.multiscale_sizes=[160,192,224]' \
  train.clip_len=4 train.batch_size=2 train.reference_stride=1 train.num_workers=0 \
  train.max_iters=6000 'train.lr_milestones=[4000,5200]' \
  train.eval_every=300 train.checkpoint_every=300
python scripts/export_demo_weights.py "$RUN/best.safetensors" "$RUN/demo_tiny.safetensors"
