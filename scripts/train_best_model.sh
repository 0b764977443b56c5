#!/usr/bin/env bash
# The small-data recipe, from scratch (no downloaded weights), within 2 hours of a 2-core CPU:
# the `tiny` preset at 192 px trained on CVC-ClinicDB-612 Train + CVC-ColonDB-300 Train (the MICCAI
# VPS training data), the best weights chosen on CVC-ClinicDB-612 Valid (per-frame Dice, scored on
# the weight EMA), exported in float16: stage 1 of the model shipped until 2026-12-07 (stage 2:
# scripts/continue_best_model.sh; the settings both share: scripts/best_recipe.sh). docs/training.md,
# "Recipe options" explains every option; scripts/ablate_recipe.py measures each one's effect. The
# export records the score threshold that flags failed Valid frames best (the review page's
# low-confidence default).
#
# usage: [THREADS=N] bash scripts/train_best_model.sh DATA_ROOT [RUN_DIR] [OUT_WEIGHTS] [KEY=VALUE ...]
#   DATA_ROOT holds CVC-ClinicDB-612/{Train,Valid} and CVC-ColonDB-300/Train (MICCAI VPS layout).
#   KEY=VALUE: further config overrides, after the recipe's (a variant: e.g. model.d_model=64).
# One thread (THREADS=1, the default) so that the run is deterministic (seed 2024); --time-limit stops
# it cleanly (validate, checkpoint) at 115 minutes should the machine be slower than planned; rerun
# with --resume to go on.
set -euo pipefail
USAGE="usage: [THREADS=N] train_best_model.sh DATA_ROOT [RUN_DIR] [OUT_WEIGHTS] [KEY=VALUE ...]"
DATA=${1:?$USAGE}
RUN=${2:-runs/best-tiny}
OUT=${3:-runs/demo_tiny.safetensors}
shift $(( $# < 3 ? $# : 3 ))
source "$(dirname "$0")/best_recipe.sh"
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
RESUME=()
[ -f "$RUN/last.pt" ] && RESUME=(--resume)
lgrnet train --preset tiny "${RESUME[@]}" "${RECIPE_DATA[@]}" \
  --out "$RUN" --progress off --no-tensorboard --time-limit 115 \
  train.seed=2024 train.image_size=192 'train.multiscale_sizes=[160,192,224]' \
  train.max_iters=6000 train.warmup_iters=300 "${RECIPE_SHARED[@]}" "$@"
# the recipe recorded in the weights names a variant's threads and overrides too
RECIPE="scripts/train_best_model.sh"
[ $# -gt 0 ] && RECIPE="$RECIPE (THREADS=${THREADS:-1}; overrides: $*)"
export_best "$RUN" "$OUT" "$RECIPE"
