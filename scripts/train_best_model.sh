#!/usr/bin/env bash
# The small-data recipe, from scratch (no downloaded weights), within 2 hours of a 2-core CPU:
# the `tiny` preset at 192 px trained on CVC-ClinicDB-612 Train + CVC-ColonDB-300 Train (the MICCAI
# VPS training data), the best weights chosen on CVC-ClinicDB-612 Valid (per-frame Dice, scored on
# the weight EMA), exported in float16 as the shipped demo model. docs/training.md, "Recipe options"
# explains every option; scripts/ablate_recipe.py measures each one's effect. The export records the
# score threshold that flags failed Valid frames best (the review page's low-confidence default).
#
# usage: [THREADS=N] bash scripts/train_best_model.sh DATA_ROOT [RUN_DIR] [OUT_WEIGHTS] [KEY=VALUE ...]
#   DATA_ROOT holds CVC-ClinicDB-612/{Train,Valid} and CVC-ColonDB-300/Train (MICCAI VPS layout).
#   KEY=VALUE: further config overrides, after the recipe's (a variant: e.g. model.d_model=64).
# One thread (THREADS=1, the default) so that the run is deterministic (seed 2024); --time-limit stops it cleanly (validate,
# checkpoint) at 115 minutes should the machine be slower than planned; rerun with --resume to go on.
set -euo pipefail
DATA=${1:?usage: train_best_model.sh DATA_ROOT [RUN_DIR] [OUT_WEIGHTS]}
RUN=${2:-runs/best-tiny}
OUT=${3:-src/lgrnet/assets/demo_tiny.safetensors}
shift $(( $# < 3 ? $# : 3 ))
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
RESUME=()
[ -f "$RUN/last.pt" ] && RESUME=(--resume)
lgrnet train --preset tiny "${RESUME[@]}" \
  --data "$DATA/CVC-ClinicDB-612/Train" --data "$DATA/CVC-ColonDB-300/Train" \
  --val "$DATA/CVC-ClinicDB-612/Valid" \
  --out "$RUN" --progress off --no-tensorboard --time-limit 115 \
  train.seed=2024 train.image_size=192 'train.multiscale_sizes=[160,192,224]' \
  train.clip_len=4 train.batch_size=2 train.reference_stride=1 train.num_workers=0 \
  train.max_iters=6000 train.lr_schedule=cosine train.warmup_iters=300 train.min_lr_ratio=0.01 \
  train.ema_decay=0.998 \
  train.aug_brightness=0.2 train.aug_contrast=0.2 train.aug_saturation=0.2 train.aug_hue=0.02 \
  train.aug_blur_prob=0.2 train.aug_noise_std=0.02 \
  train.aug_scale=0.15 train.aug_rotate=15 train.aug_translate=0.08 train.aug_prob=0.8 \
  train.eval_every=300 train.checkpoint_every=300 "$@"
# the low-confidence threshold the review page starts at: the one that flags failed frames best on Valid
lgrnet evaluate --weights "$RUN/best.safetensors" --data "$DATA" --split CVC-ClinicDB-612/Valid \
  --out "$RUN/valid-eval" --device cpu
# the recipe recorded in the weights names a variant's overrides too
RECIPE="scripts/train_best_model.sh"
[ $# -gt 0 ] && RECIPE="$RECIPE (THREADS=${THREADS:-1}; overrides: $*)"
python scripts/export_demo_weights.py "$RUN/best.safetensors" "$OUT" "$RECIPE" \
  --confidence "$RUN/valid-eval/confidence.json"
