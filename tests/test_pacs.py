"""`lgrnet predict dicomweb:URL` and `lgrnet watch` against a real Orthanc with its DICOMweb plugin
(tests/helpers/pacs_server.py): SEGs stored in the right study, referencing the right instance and frames,
holding the local result's masks; a killed and restarted watch storing each instance exactly once;
and the failures (wrong URL, refused credentials, no cines, a server that stops, a server that
does not answer, an unexpected object): one line each, exit status 2, nothing half-stored."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lgrnet import LGRNet
from lgrnet.cli import main
from tests.helpers.pacs_server import SEG_CLASS, SR_CLASS, Orthanc, make_cine, orthanc_missing, single_frame_image, stored_objects

pytest.importorskip("dicomweb_client")
pytest.importorskip("highdicom")
pytestmark = pytest.mark.skipif(orthanc_missing() is not None, reason=orthanc_missing() or "")

SIZE = "64"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server = Orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def study(orthanc, tmp_path_factory):
    """A study with a calibrated RGB cine, a MONOCHROME2 cine and a single-frame image."""
    d = tmp_path_factory.mktemp("study")
    rgb = make_cine(d / "rgb.dcm", rgb=True, mm_per_pixel=0.25, seed=1)
    grey = make_cine(d / "grey.dcm", rgb=False, seed=2, study=rgb["study"])
    single_frame_image(d / "still.dcm", rgb["study"])
    for p in ("rgb.dcm", "grey.dcm", "still.dcm"):
        orthanc.upload(d / p)
    return {"study": rgb["study"], "rgb": rgb, "grey": grey}


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch, tmp_path):
    for k in ("LGRNET_DICOMWEB_USER", "LGRNET_DICOMWEB_PASSWORD", "LGRNET_DICOMWEB_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def predict(*args):
    return main(["predict", *map(str, args), "--size", SIZE, "--no-progress"])


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("lgrnet "), lines[0]
    return lines[0]


def seg_masks(seg, n_frames: int, rows: int, cols: int) -> np.ndarray:
    """(T, H, W) bool masks of a BINARY SEG by the source frame each SEG frame references."""
    pix = seg.pixel_array.reshape(-1, rows, cols).astype(bool)
    out = np.zeros((n_frames, rows, cols), bool)
    for k, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        out[int(ref.ReferencedFrameNumber) - 1] |= pix[k]
    return out


def folder_masks(folder: Path) -> np.ndarray:
    pngs = sorted((folder / "masks").glob("*.png"))
    return np.stack([np.asarray(Image.open(p)) > 127 for p in pngs])


def test_predict_study_stores_segs_like_the_local_result(orthanc, study, weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(f"dicomweb:{orthanc.url}", "--study", study["study"], "--store", "--weights", weights, "--out", out) == 0
    printed = capsys.readouterr().out
    segs = stored_objects(orthanc.url, study["study"], SEG_CLASS)
    assert len(segs) == 2 and printed.count("stored SEG") == 2
    for cine in (study["rgb"], study["grey"]):
        folder = out / cine["sop"]
        assert json.loads((folder / "dicomweb.json").read_text())["source"]["sop"] == cine["sop"]
        seg = next(s for s in segs if s.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
                   == cine["sop"])
        assert seg.StudyInstanceUID == study["study"] and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == cine["series"]
        for item in seg.PerFrameFunctionalGroupsSequence:  # every frame references the source instance
            assert item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID == cine["sop"]
        # the same masks as the local result of the same file with the same weights
        local = tmp_path / "local"
        assert predict(cine["path"], "--weights", weights, "--out", local, "--no-overlay") == 0
        expected = folder_masks(local / cine["path"].stem)
        assert np.array_equal(folder_masks(folder), expected)
        assert np.array_equal(seg_masks(seg, 8, 64, 64), expected)
    # the calibrated cine also gets its measurement report, referencing its SEG; the other does not
    srs = stored_objects(orthanc.url, study["study"], SR_CLASS)
    assert len(srs) == 1
    rgb_seg = json.loads((out / study["rgb"]["sop"] / "dicomweb.json").read_text())["stored"]
    assert [s["file"] for s in rgb_seg] == ["segmentation.dcm", "measurements.dcm"]
    evidence = {r.ReferencedSOPInstanceUID for s in srs[0].CurrentRequestedProcedureEvidenceSequence
                for se in s.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}
    assert {rgb_seg[0]["sop_instance_uid"], study["rgb"]["sop"]} <= evidence
    assert not (out / study["grey"]["sop"] / "measurements.dcm").exists()
    meta = json.loads((out / study["grey"]["sop"] / "predictions.json").read_text())
    assert meta["calibration"] is None and "no sizes in mm" in meta["calibration_note"]

    # the same command again: nothing predicted or stored twice
    assert predict(f"dicomweb:{orthanc.url}", "--study", study["study"], "--store", "--weights", weights, "--out", out) == 0
    assert "already complete" in capsys.readouterr().out
    assert len(stored_objects(orthanc.url, study["study"], SEG_CLASS)) == 2


def test_series_option_and_stray_options(orthanc, study, weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(f"dicomweb:{orthanc.url}", "--study", study["study"], "--series", study["grey"]["series"],
                   "--weights", weights, "--out", out) == 0
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == [study["grey"]["sop"]]
    assert not (out / study["grey"]["sop"] / "dicomweb.json").exists()  # no --store: nothing stored
    capsys.readouterr()
    assert predict(study["grey"]["path"], "--study", study["study"], "--weights", weights, "--out", tmp_path / "x") == 2
    assert "--study: only for a dicomweb:URL input" in one_error_line(capsys.readouterr().err)


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize("case", ["refused", "not-dicomweb", "credentials-in-url", "no-study", "no-cines"])
def test_bad_sources_one_line(case, orthanc, study, weights, tmp_path, capsys):
    url = {"refused": f"http://127.0.0.1:{_refused_port()}/dicom-web", "not-dicomweb": f"{orthanc.root}/nothing",
           "credentials-in-url": f"http://u:secret@127.0.0.1:{orthanc.port}/dicom-web"}.get(case, orthanc.url)
    uid = {"no-study": "1.2.3.4.5.6"}.get(case, study["study"])
    if case == "no-cines":
        d = tmp_path / "still"
        d.mkdir()
        uid = make_cine(d / "c.dcm")["study"]  # a study holding only a still image
        orthanc.upload(single_frame_image(d / "still.dcm", uid))
    out = tmp_path / "out"
    assert predict(f"dicomweb:{url}", "--study", uid, "--store", "--weights", weights, "--out", out) == 2
    line = one_error_line(capsys.readouterr().err)
    expected = {"refused": "connection refused", "not-dicomweb": "HTTP 404", "credentials-in-url": "credentials do not go in the URL",
                "no-study": "no instances there", "no-cines": "no cine instances among its 1 instance(s)"}[case]
    assert expected in line and "secret" not in line
    assert not out.exists()


def test_refused_and_accepted_credentials(tmp_path, weights, monkeypatch, capsys):
    server = Orthanc(tmp_path / "auth", users={"alice": "s3cret-pw"})
    try:
        cine = make_cine(tmp_path / "c.dcm")
        server.upload(cine["path"])
        args = (f"dicomweb:{server.url}", "--study", cine["study"], "--store", "--weights", weights, "--out", tmp_path / "out")
        assert predict(*args) == 2  # no credentials
        assert "refused the credentials (HTTP 401)" in one_error_line(capsys.readouterr().err)
        monkeypatch.setenv("LGRNET_DICOMWEB_USER", "alice")
        monkeypatch.setenv("LGRNET_DICOMWEB_PASSWORD", "wrong")
        assert predict(*args) == 2
        err = capsys.readouterr().err
        assert "HTTP 401" in one_error_line(err) and "wrong" not in err
        assert not (tmp_path / "out").exists()
        monkeypatch.setenv("LGRNET_DICOMWEB_PASSWORD", "s3cret-pw")
        assert predict(*args) == 0
        assert "s3cret" not in capsys.readouterr().out
        assert len(stored_objects(server.url, cine["study"], SEG_CLASS, auth=server.auth)) == 1
        # a netrc entry works as well (no environment)
        monkeypatch.delenv("LGRNET_DICOMWEB_USER")
        monkeypatch.delenv("LGRNET_DICOMWEB_PASSWORD")
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1 login alice password s3cret-pw\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        assert predict(*args) == 0
    finally:
        server.stop()


def test_server_stopping_midway_leaves_nothing_half_stored(tmp_path, weights, monkeypatch, capsys):
    """The server stops after the first cine is segmented, before its SEG is stored: one line, exit
    2, no SEG in the PACS; the same command after a restart stores both, once each."""
    import lgrnet.runs.predict_folder as pf

    server = Orthanc(tmp_path / "orthanc")
    try:
        first = make_cine(tmp_path / "a.dcm", seed=3)
        second = make_cine(tmp_path / "b.dcm", seed=4, study=first["study"])
        server.upload(first["path"])
        server.upload(second["path"])
        real = pf.predict_to_folder

        def predict_then_stop(*a, **k):
            summary = real(*a, **k)
            server.stop()
            return summary

        monkeypatch.setattr(pf, "predict_to_folder", predict_then_stop)
        out = tmp_path / "out"
        args = (f"dicomweb:{server.url}", "--study", first["study"], "--store", "--weights", weights, "--out", out)
        assert predict(*args) == 2
        assert "connection refused" in one_error_line(capsys.readouterr().err)
        done = [p for p in out.iterdir() if not p.name.startswith(".") and (p / "predictions.json").is_file()]
        assert len(done) == 1 and not (done[0] / "dicomweb.json").exists()
        monkeypatch.setattr(pf, "predict_to_folder", real)
        server.start()
        assert stored_objects(server.url, first["study"], SEG_CLASS) == []
        assert predict(*args) == 0
        segs = stored_objects(server.url, first["study"], SEG_CLASS)
        refs = sorted(s.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID for s in segs)
        assert refs == sorted([first["sop"], second["sop"]])
    finally:
        server.stop()


def test_server_that_does_not_answer_times_out(tmp_path, weights, capsys):
    with socket.socket() as s:  # accepts connections (the kernel's backlog) and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        t = time.monotonic()
        assert predict(f"dicomweb:http://127.0.0.1:{port}/dicom-web", "--study", "1.2.3", "--pacs-timeout", "1",
                       "--weights", weights, "--out", tmp_path / "out") == 2
        assert time.monotonic() - t < 30
    assert "no answer within 1 s" in one_error_line(capsys.readouterr().err)


def test_unexpected_object_is_refused(tmp_path, orthanc, study):
    from pydicom.dataset import Dataset

    from lgrnet.errors import UserError
    from lgrnet.pacs.connection import Pacs
    from lgrnet.pacs.instances import fetch_cine, find_cines

    pacs = Pacs(f"dicomweb:{orthanc.url}")
    cine = find_cines(pacs, study["study"], study["grey"]["series"])[0]
    other = Dataset()
    other.SOPInstanceUID, other.StudyInstanceUID = "1.2.3", study["study"]
    pacs.client.retrieve_instance = lambda *a, **k: other
    with pytest.raises(UserError, match="unexpected object .* SOP Instance UID 1.2.3"):
        fetch_cine(pacs, cine, tmp_path / "x.dcm")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- watch


def watch(url, out, weights, *extra):
    return main(["watch", f"dicomweb:{url}", "--weights", str(weights), "--out", str(out), "--size", SIZE,
                 "--no-progress", "--no-overlay", *extra])


def watch_cmd(url, out, weights, *extra):
    return [sys.executable, "-m", "lgrnet", "watch", f"dicomweb:{url}", "--weights", str(weights), "--out", str(out),
            "--size", SIZE, "--no-progress", "--no-overlay", *extra]


def env():
    e = dict(os.environ, OMP_NUM_THREADS="1")
    e.pop("LGRNET_DICOMWEB_USER", None)
    e["PYTHONPATH"] = str(REPO / "src") + os.pathsep + e.get("PYTHONPATH", "")
    return e


def segs_by_source(url, study):
    out = {}
    for s in stored_objects(url, study, SEG_CLASS):
        sop = s.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
        out[sop] = out.get(sop, 0) + 1
    return out


def test_watch_killed_and_restarted_stores_each_instance_once(tmp_path, weights, capsys):
    server = Orthanc(tmp_path / "orthanc")
    try:
        cines = [make_cine(tmp_path / "c0.dcm", seed=10)]
        cines += [make_cine(tmp_path / f"c{i}.dcm", seed=10 + i, study=cines[0]["study"]) for i in (1, 2)]
        for c in cines:
            server.upload(c["path"])
        out = tmp_path / "watch"
        state = out / ".lgrnet-watch.json"
        proc = subprocess.Popen(watch_cmd(server.url, out, weights, "--all", "--interval", "0.2"), env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        stored = []
        while time.monotonic() < deadline and proc.poll() is None:  # kill it once the first is stored
            try:
                stored = [k for k, v in json.loads(state.read_text())["done"].items() if v["status"] == "stored"]
            except (OSError, ValueError, KeyError):
                pass
            if stored:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        log = proc.communicate()[0].decode()
        assert len(stored) >= 1, log
        first = out / stored[0] / "predictions.json"
        first_mtime = first.stat().st_mtime_ns

        assert watch(server.url, out, weights, "--once") == 0  # restarted (in this process: no second start-up)
        d = json.loads(state.read_text())
        assert d["pending"] == {} and sorted(d["done"]) == sorted(c["sop"] for c in cines)
        assert all(v["status"] == "stored" for v in d["done"].values())
        assert first.stat().st_mtime_ns == first_mtime  # not predicted again
        assert segs_by_source(server.url, cines[0]["study"]) == {c["sop"]: 1 for c in cines}

        # a new cine arrives: the next poll takes it (and only it); the stored SEGs are not inputs
        new = make_cine(tmp_path / "c3.dcm", seed=20, study=cines[0]["study"])
        server.upload(new["path"])
        capsys.readouterr()
        assert watch(server.url, out, weights, "--once") == 0
        assert "1 new cine(s)" in capsys.readouterr().out
        assert segs_by_source(server.url, cines[0]["study"]) == {c["sop"]: 1 for c in [*cines, new]}

        # the QIDO feed (any DICOMweb server) finds the same four by study date; a second watch folder is a
        # second consumer, so each cine now has a second SEG (its own)
        qido = tmp_path / "qido"
        assert watch(server.url, qido, weights, "--once", "--feed", "qido", "--since", "20261201") == 0
        assert sorted(json.loads((qido / ".lgrnet-watch.json").read_text())["done"]) == sorted(
            c["sop"] for c in [*cines, new])
        assert segs_by_source(server.url, cines[0]["study"]) == {c["sop"]: 2 for c in [*cines, new]}
        assert watch(server.url, qido, weights, "--once") == 0  # nothing new: nothing stored again
        assert segs_by_source(server.url, cines[0]["study"]) == {c["sop"]: 2 for c in [*cines, new]}
    finally:
        server.stop()


@pytest.mark.slow
def test_every_cine_form_through_the_pacs(orthanc, weights, tmp_path, capsys):
    """Each cine form scanners write (tests/helpers/dicom_forms.py), with and without a Frame of Reference, in one
    study: fetched, segmented and stored; each stored SEG references its instance, holds the local
    result's masks and passes dciodvfy with no error."""
    import shutil

    import pydicom
    from pydicom.uid import generate_uid

    from tests.helpers.dicom_forms import FORMS, unavailable, write_form

    study_uid = generate_uid()
    local_dir = tmp_path / "files"
    local_dir.mkdir()
    sources = {}
    for form in FORMS:
        if unavailable(form):
            continue
        for frame_of_reference in (False, True):
            path, _, _ = write_form(local_dir, form, frame_of_reference=frame_of_reference)
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID = study_uid
            ds.save_as(path)
            orthanc.upload(path)
            sources[str(ds.SOPInstanceUID)] = path
    out = tmp_path / "pacs"
    assert predict(f"dicomweb:{orthanc.url}", "--study", study_uid, "--store", "--weights", weights, "--out", out,
                   "--no-overlay") == 0
    local = tmp_path / "local"
    assert predict(*sources.values(), "--weights", weights, "--out", local, "--no-overlay") == 0
    segs = {s.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID: s
            for s in stored_objects(orthanc.url, study_uid, SEG_CLASS)}
    assert sorted(segs) == sorted(sources)
    for sop, path in sources.items():
        seg, src = segs[sop], pydicom.dcmread(path, stop_before_pixels=True)
        expected = folder_masks(local / path.stem)
        assert np.array_equal(seg_masks(seg, int(src.NumberOfFrames), int(src.Rows), int(src.Columns)), expected), path.name
        if shutil.which("dciodvfy"):
            stored = tmp_path / f"{path.stem}-seg.dcm"
            seg.save_as(stored)
            run = subprocess.run(["dciodvfy", str(stored)], capture_output=True, text=True)
            errors = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]
            assert not errors, (path.name, errors)
