"""Every cine form scanners write (tests/helpers/dicom_forms.py) reads, with and without a Frame of Reference,
and gets a DICOM SEG (binary and fractional) that David Clunie's validator ``dciodvfy`` accepts with
no error, referencing the source instance and frames; JPEG colour spaces that contradict the header
are decoded as the codestream says, with one warning line; an undecodable form names its transfer
syntax and the package that decodes it (issue 32, issue 29 item 5)."""
import io
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.helpers.dicom_forms import FORMS, unavailable, write_form
from lgrnet.errors import InputError, InputWarning
from lgrnet.io import open_source
from lgrnet.io.dicom_codecs import jpeg_colour

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian package dicom3tools) is not installed; "
                                                              ".ci/run installs it")
#: mean absolute difference allowed between a lossy form's decoded frames and the frames encoded
LOSSY_TOLERANCE = 3.0


def _form(tmp_path, form, frame_of_reference):
    why = unavailable(form)
    if why:
        pytest.skip(why)
    return write_form(tmp_path, form, frame_of_reference=frame_of_reference)


def _rgb(frames):
    return frames if frames.ndim == 4 else np.repeat(frames[..., None], 3, -1)


@pytest.mark.parametrize("frame_of_reference", [False, True], ids=["no-FoR", "FoR"])
@pytest.mark.parametrize("form", list(FORMS))
def test_cine_form_reads(tmp_path, form, frame_of_reference):
    path, frames, lossy = _form(tmp_path, form, frame_of_reference)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = open_source(path)
        got = np.stack(list(src))
    assert src.kind == "dicom" and src.num_frames == len(frames) and src.fps == pytest.approx(25.0)
    assert got.shape == _rgb(frames).shape and got.dtype == np.uint8
    err = np.abs(got.astype(int) - _rgb(frames).astype(int)).mean()
    if lossy:
        assert err < LOSSY_TOLERANCE, err  # the gdcm form decoded as RGB differs by ~67
    else:
        assert err == 0
    assert np.array_equal(src.read(len(frames) - 1), got[-1])
    colour = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    if form == "jpeg-rgb-labelled-ycbcr-gdcm":
        assert colour == [f"{path}: the DICOM header says RGB but its JPEG data are YCbCr (no JFIF/Adobe marker, "
                          f"component ids 1,2,3, chroma subsampled); decoded as YBR_FULL_422"]
    else:
        assert colour == []


def _dciodvfy_errors(path):
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@needs_dciodvfy
@pytest.mark.parametrize("frame_of_reference", [False, True], ids=["no-FoR", "FoR"])
@pytest.mark.parametrize("form", list(FORMS))
def test_cine_form_seg_passes_dciodvfy(tmp_path, form, frame_of_reference):
    """Binary and fractional SEGs of each form: no dciodvfy error (today every SEG lacked Patient
    Orientation, and a cine with a Frame of Reference but no plane positions got none at all),
    masks and source frame references read back with highdicom, lossy compression carried over."""
    from lgrnet.results.dicom_seg import write_dicom_seg

    path, frames, lossy = _form(tmp_path, form, frame_of_reference)
    T, H, W = frames.shape[:3]
    rng = np.random.default_rng(len(form))
    probs = np.zeros((T, H, W), np.float32)
    for t in range(T):
        if t != 1:  # frame 2 empty: left out of the SEG
            y, x = rng.integers(0, H - 12), rng.integers(0, W - 20)
            probs[t, y:y + 10, x:x + 18] = rng.uniform(0.3, 1.0)
    src = pydicom.dcmread(path)
    for fractional in (False, True):
        masks = probs if fractional else probs > 0.5
        out = write_dicom_seg(path, masks, tmp_path / f"seg{int(fractional)}.dcm", fractional=fractional)
        assert _dciodvfy_errors(out) == []
        seg = hd.seg.segread(out)
        got = seg.get_pixels_by_source_frame(source_sop_instance_uid=src.SOPInstanceUID,
                                             source_frame_numbers=list(range(1, T + 1)), segment_numbers=[1],
                                             assert_missing_frames_are_empty=True, rescale_fractional=False)[..., 0]
        want = np.rint(probs * 255).astype(np.uint8) if fractional else masks
        assert np.array_equal(got if fractional else got.astype(bool), want)
        ds = pydicom.dcmread(out)
        numbers = [int(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
                   for f in ds.PerFrameFunctionalGroupsSequence]
        assert numbers == [t + 1 for t in range(T) if want[t].any()]
        assert ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert ds.LossyImageCompression == ("01" if lossy else "00")
        if lossy:
            assert ds.LossyImageCompressionMethod == "ISO_10918_1"


@needs_dciodvfy
@pytest.mark.parametrize("sop_class", ["1.2.840.10008.5.1.4.1.1.77.1.1.1", "1.2.840.10008.5.1.4.1.1.7.4"],
                         ids=["video-endoscopic", "multiframe-true-colour-sc"])
def test_endoscopy_and_secondary_capture_cines(tmp_path, sop_class):
    """Endoscopy exports (Video Endoscopic, Multi-frame True Color Secondary Capture) read and get a
    valid SEG like ultrasound cines."""
    from tests.helpers.dicom_forms import cine_frames, write_cine
    from lgrnet.results.dicom_seg import write_dicom_seg

    frames = cine_frames(3, 40, 56)
    path = write_cine(tmp_path / "endo.dcm", frames, sop_class=sop_class)
    assert np.array_equal(np.stack(list(open_source(path))), frames)
    masks = np.zeros((3, 40, 56), bool)
    masks[:, 5:20, 10:30] = True
    assert _dciodvfy_errors(write_dicom_seg(path, masks, tmp_path / "seg.dcm")) == []


def _markers_of(encode):
    buf = io.BytesIO()
    encode(buf)
    return jpeg_colour(buf.getvalue())


def test_jpeg_colour_follows_libjpeg_rules():
    rgb = Image.fromarray(np.full((16, 16, 3), (200, 70, 30), np.uint8))
    jfif = _markers_of(lambda b: rgb.save(b, format="JPEG"))
    assert (jfif.space, jfif.subsampled) == ("YBR", True) and "JFIF" in jfif.evidence
    adobe_rgb = _markers_of(lambda b: rgb.save(b, format="JPEG", keep_rgb=True))  # Pillow: no colour transform
    assert adobe_rgb.space == "RGB" and "Adobe" in adobe_rgb.evidence
    grey = _markers_of(lambda b: rgb.convert("L").save(b, format="JPEG"))
    assert grey is None  # one component: nothing to decide
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", subsampling=0)
    data = buf.getvalue()
    stripped = data[:2] + data[4 + int.from_bytes(data[4:6], "big"):]  # no JFIF: ids 1, 2, 3 say YCbCr
    got = jpeg_colour(stripped)
    assert (got.space, got.subsampled) == ("YBR", False) and got.evidence == "no JFIF/Adobe marker, component ids 1,2,3"
    assert jpeg_colour(b"not a jpeg") is None


@pytest.mark.skipif(shutil.which("dcmcjpeg") is None, reason="dcmcjpeg (dcmtk) is not installed")
def test_rgb_jpeg_labelled_ybr_is_decoded_as_rgb(tmp_path):
    """The opposite mismatch: an untransformed RGB stream (dcmcjpeg +cr: Adobe marker, ids R,G,B)
    whose header says YBR_FULL_422 decodes as RGB, with one warning line."""
    from tests.helpers.dicom_forms import cine_frames, write_cine

    frames = cine_frames(2)
    path = write_cine(tmp_path / "c.dcm", frames)
    subprocess.run(["dcmcjpeg", "+eb", "+cr", str(path), str(tmp_path / "rgb.dcm")], check=True, capture_output=True)
    ds = pydicom.dcmread(tmp_path / "rgb.dcm")
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.save_as(tmp_path / "rgb.dcm")
    with pytest.warns(InputWarning, match=r"header says YBR_FULL_422 but its JPEG data are RGB \(Adobe marker with "
                                          r"colour transform 0\); decoded as RGB"):
        src = open_source(tmp_path / "rgb.dcm")
    assert np.abs(np.stack(list(src)).astype(int) - frames).mean() < LOSSY_TOLERANCE


def test_undecodable_form_names_the_syntax_and_package(tmp_path, monkeypatch):
    """JPEG 2000 without its decoder installed (pylibjpeg-openjpeg and Pillow made unavailable to
    pydicom): one line naming the transfer syntax and the package."""
    from pydicom.pixels import get_decoder

    path, _, _ = _form(tmp_path, "j2k-lossless", False)
    decoder = get_decoder("1.2.840.10008.1.2.4.90")
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-openjpeg>=2.0")})
    with pytest.raises(InputError) as info:
        open_source(path)
    assert str(info.value) == (f'{path}: cannot decode DICOM frame 0: transfer syntax JPEG 2000 lossless '
                               f'(1.2.840.10008.1.2.4.90) needs pylibjpeg-openjpeg: pip install "lgrnet[dicom]"')
