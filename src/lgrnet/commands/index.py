"""Write (or rebuild) the index of the results in an output folder: OUT/index.csv and
OUT/index.json, one row per input of every run of `lgrnet predict` into OUT (in the order the runs
started), then one per other result folder there (input, name, status done / error / missing,
error, frames, frames with a lesion, max and mean score, seconds). `lgrnet predict` writes it at
the end of a run over several inputs; run this when a run died before, or to see how far a running
one is.

examples:
  lgrnet index results/
"""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("out", metavar="OUT", help="the output folder of `lgrnet predict` (its --out)")


def run(args) -> int:
    from ..runs.run_index import build_index, write_index
    from .arguments import check_output_folder

    check_output_folder(args.out, "the index")
    rows = build_index(args.out)
    path = write_index(args.out, rows)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", "error", "missing")}
    print(f"{path}: {len(rows)} inputs: {counts['done']} done, {counts['error']} failed, {counts['missing']} missing")
    return 0 if counts["error"] == 0 and counts["missing"] == 0 else 1
