"""A short fuzz run of the readers (video files, frame folders, DICOM, weights files, result folders
for the viewer): randomly corrupted bytes, truncations and garbage headers end in a result or in
one error line naming the file, never in a traceback or a hang; `lgrnet predict` on a corrupted
video exits 0 or 2 with that line. The long run is benchmarks/fuzz.py (see tests/helpers/fuzz_readers.py)."""
from __future__ import annotations

import random

import pytest

from tests.helpers.fuzz_readers import KINDS, check_cli, make_case, make_seeds, run_fuzz, run_check


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


# ---- regressions: cases the long run (benchmarks/fuzz.py) found, as fixed inputs -----------------

def test_video_with_invalid_utf8_metadata(seeds, tmp_path):
    """PyAV raised UnicodeDecodeError opening a video whose metadata tags are not UTF-8."""
    from lgrnet.errors import InputError
    from lgrnet.io import open_source

    for seed in seeds["video"][:3]:
        data = seed.read_bytes()
        assert b"Lavf" in data  # FFmpeg's encoder tag
        bad = tmp_path / f"bad_{seed.name}"
        bad.write_bytes(data.replace(b"Lavf", b"\xff\xfe\xfd\xfc"))
        with pytest.raises(InputError, match=rf"^{bad}: cannot open as a video \(its header is corrupt"):
            open_source(bad)


def test_dicom_with_corrupt_header_elements(tmp_path):
    """pydicom raised ValueError (a UID that is no transfer syntax) and NotImplementedError (an
    unknown value representation) from attribute access after the file was opened."""
    pytest.importorskip("pydicom")
    import numpy as np

    from lgrnet.errors import InputError
    from lgrnet.io import open_source
    from test_io_dicom import write_dicom

    data = write_dicom(tmp_path / "x.dcm", np.zeros((2, 8, 8), np.uint8)).read_bytes()
    bad_uid = tmp_path / "uid.dcm"
    bad_uid.write_bytes(data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.9\x00"))
    with pytest.raises(InputError, match=r"uid\.dcm: the DICOM header is corrupt \(UID is not a transfer syntax"):
        open_source(bad_uid)
    # (0028,0010) Rows, explicit VR "US": give it a VR that does not exist
    tag = b"\x28\x00\x10\x00US"
    assert data.count(tag) == 1
    bad_vr = tmp_path / "vr.dcm"
    bad_vr.write_bytes(data.replace(tag, b"\x28\x00\x10\x00\x55\x14"))
    with pytest.raises(InputError, match=r"vr\.dcm: "):
        open_source(bad_vr)
