"""A long fuzz run of the readers (video files, frame folders, DICOM, weights, result folders for the
viewer): seeds corrupted at random, each case checked in a worker process under a time limit (see
``tests/helpers/fuzz_readers.py``; ``tests/test_fuzz.py`` is the short CI part). Also runs ``lgrnet predict`` on a few corrupted
videos, each in a fresh process.

Prints the number of cases, the outcomes per kind and every failure; exit status 1 if any failed.

usage: python -m benchmarks.fuzz [--minutes 10] [--seed 0] [--timeout 60] [--cli 6] [--cli-timeout 300]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from tests.helpers.fuzz_readers import KINDS, check_cli, make_case, make_seeds, run_fuzz  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="stop starting new cases after this long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take before it counts as a hang")
    ap.add_argument("--cli", type=int, default=6, help="command-line cases (each a fresh `lgrnet` process)")
    ap.add_argument("--cli-timeout", type=float, default=300.0,
                    help="seconds a command-line case may take (a fresh process imports torch and loads the model: "
                         "20-30 s on a busy 2-core machine)")
    ap.add_argument("--json", metavar="OUT", help="write the report as JSON")
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="lgrnet-fuzz-") as tmp:
        work = Path(tmp)
        seeds = make_seeds(work / "seeds")
        rng = random.Random(args.seed + 1)
        cli_failures = []
        weights = str(seeds["weights"][0])
        for i in range(args.cli):
            case = make_case("video", rng.choice(seeds["video"]), work, 100000 + i, rng)
            failure = check_cli(["predict", str(case.path), "--weights", weights, "--out", str(work / "out"),
                                 "--size", "32", "--no-progress", "--overwrite"], case.path, args.cli_timeout)
            if failure:
                cli_failures.append(f"[cli] {case.how}: {failure}")
        deadline = t0 + args.minutes * 60
        report = run_fuzz(work, cases_per_kind=10**9, seed=args.seed, timeout=args.timeout, seeds=seeds,
                          deadline=deadline)
    failures = cli_failures + report.failures
    out = {"cases": report.cases, "cli_cases": args.cli, "seconds": round(time.time() - t0, 1),
           "slowest_case_s": round(report.slowest, 2), "outcomes": report.outcomes, "failures": failures,
           "kinds": list(KINDS), "seed": args.seed}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
