"""The result folder's one corrections writer (lgrnet.results.corrections.save_mask / set_state):
versions, the states' rules, and the folder lock seen by another process."""
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from lgrnet.io.images import read_mask
from lgrnet.results import corrections as corr


def square(shape=(12, 16), x0=2, y0=3, x1=9, y1=8):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_save_mask_versions_and_stale_writes(tmp_path):
    st = corr.save_mask(tmp_path, 4, square(), expected_version=0)
    assert (st.state, st.version) == ("edited", 1)
    assert np.array_equal(read_mask(corr.corrected_mask_path(tmp_path, 4), 127), square())
    assert corr.corrected_mask_path(tmp_path, 4) == tmp_path / "corrections" / "masks" / "000004.png"
    with pytest.raises(corr.StaleWrite) as info:  # a second editor that read version 0
        corr.save_mask(tmp_path, 4, ~square(), expected_version=0)
    assert (info.value.index, info.value.expected, info.value.stored) == (4, 0, 1)
    assert info.value.current == corr.read_status(tmp_path)["000004"]
    assert np.array_equal(read_mask(corr.corrected_mask_path(tmp_path, 4), 127), square())  # not overwritten
    assert corr.save_mask(tmp_path, 4, ~square(), expected_version=1).version == 2
    assert np.array_equal(read_mask(corr.corrected_mask_path(tmp_path, 4), 127), ~square())
    odd = square().view(np.uint8) * np.uint8(255)  # True stored as byte 255, as PIL's 1-bit images give it
    corr.save_mask(tmp_path, 4, odd.view(bool), expected_version=2)
    with Image.open(corr.corrected_mask_path(tmp_path, 4)) as im:
        assert np.array_equal(np.asarray(im), square().astype(np.uint8) * 255)


def test_set_state_rules(tmp_path):
    with pytest.raises(corr.BadCorrection, match="no corrected mask to mark as edited"):
        corr.set_state(tmp_path, 1, "edited", expected_version=0)
    with pytest.raises(corr.BadCorrection, match="state 'done'"):
        corr.set_state(tmp_path, 1, "done", expected_version=0)
    assert corr.set_state(tmp_path, 1, "checked", expected_version=0).version == 1
    corr.save_mask(tmp_path, 2, square(), expected_version=0)
    with pytest.raises(corr.BadCorrection, match="has a corrected mask, so it is 'edited'"):  # checked with a mask
        corr.set_state(tmp_path, 2, "checked", expected_version=1)
    with pytest.raises(corr.StaleWrite):
        corr.set_state(tmp_path, 2, "unchecked", expected_version=0)
    assert corr.set_state(tmp_path, 2, "unchecked", expected_version=1) is None
    assert not corr.corrected_mask_path(tmp_path, 2).exists()
    assert {k: (v.state, v.version) for k, v in corr.read_status(tmp_path).items()} == {"000001": ("checked", 1)}


def test_unreadable_status_is_never_overwritten(tmp_path):
    corr.status_path(tmp_path).parent.mkdir(parents=True)
    corr.status_path(tmp_path).write_text("{not json")
    with pytest.raises(corr.InputError, match="status.json: cannot read"):
        corr.save_mask(tmp_path, 0, square(), expected_version=0)
    assert corr.status_path(tmp_path).read_text() == "{not json"
    assert not corr.corrected_mask_path(tmp_path, 0).exists()


@pytest.mark.skipif(corr.fcntl is None, reason="no flock on this system")
def test_the_lock_holds_off_another_process(tmp_path):
    code = ("import sys, numpy as np; from lgrnet.results import corrections as c; print('ready', flush=True); "
            "c.save_mask(sys.argv[1], 0, np.ones((4, 4), bool), expected_version=0)")
    with corr.folder_lock(tmp_path):
        proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "ready\n"
        time.sleep(1.0)  # the other process reaches the lock
        assert proc.poll() is None and not corr.status_path(tmp_path).exists()  # and waits there
    assert proc.wait(timeout=60) == 0
    assert corr.read_status(tmp_path)["000000"].version == 1
