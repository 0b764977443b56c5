"""A short fuzz run of the readers (video files, frame folders, DICOM, weights files, result folders
for the viewer): randomly corrupted bytes, truncations and garbage headers end in a result or in
one error line naming the file, never in a traceback or a hang; `lgrnet predict` on a corrupted
video exits 0 or 2 with that line. The long run is benchmarks/fuzz.py (see tests/fuzz_readers.py)."""
from __future__ import annotations

import random

import pytest

from fuzz_readers import KINDS, check_cli, make_case, make_seeds, run_fuzz, run_check


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("fuzz_seeds"))


def test_seeds_are_valid(seeds):
    """The checks accept the uncorrupted seeds (so a corrupted case that passes is the reader's doing)."""
    for kind in KINDS:
        for path in seeds[kind]:
            outcome, failure = run_check(kind, path)
            assert failure is None and outcome.startswith("ok"), (kind, path, outcome, failure)


def test_readers_survive_corrupted_inputs(seeds, tmp_path):
    report = run_fuzz(tmp_path, cases_per_kind=3, seed=13, timeout=60, seeds=seeds)
    assert report.cases == 3 * sum(bool(seeds[k]) for k in KINDS)
    assert not report.failures, "\n\n".join(report.failures)
    rejected = sum(n for kind in report.outcomes.values() for o, n in kind.items() if not o.startswith("ok"))
    assert rejected > 0  # the corruptions are not all harmless


def test_cli_on_corrupted_video(seeds, tmp_path):
    rng = random.Random(5)
    weights = str(seeds["weights"][0])
    for i in range(1):  # each case is a fresh process (torch import): benchmarks/fuzz.py runs more
        case = make_case("video", seeds["video"][i], tmp_path, i, rng)
        failure = check_cli(["predict", str(case.path), "--weights", weights, "--out", str(tmp_path / "out"),
                             "--size", "32", "--no-progress"], case.path, timeout=120)
        assert failure is None, f"{case.how}: {failure}"
