"""DICOM multi-frame sources (grey, RGB, MONOCHROME1, RLE-compressed), bad DICOM files, and
`lgrnet predict` on a DICOM cine loop."""
import json

import numpy as np
import pytest
from PIL import Image

from lgrnet.errors import InputError
from lgrnet.io import open_source
from lgrnet.io.dicom import DicomSource

pydicom = pytest.importorskip("pydicom")


def write_dicom(path, frames, photometric=None, frame_time=None, cine_rate=None, bits=8, rle=False):
    """frames: (T, H, W) or (T, H, W, 3) uint8 (uint16 with bits=16) -> a multi-frame DICOM file."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, UltrasoundMultiFrameImageStorage, generate_uid

    frames = np.asarray(frames)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1:3]
    rgb = frames.ndim == 4
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if rgb else "MONOCHROME2")
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frame_time is not None:
        ds.FrameTime = frame_time
    if cine_rate is not None:
        ds.CineRate = cine_rate
    ds.PixelData = frames.tobytes()
    if rle:
        ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_grey_multiframe(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 20, 30), dtype=np.uint8)
    src = open_source(write_dicom(tmp_path / "grey.dcm", frames, frame_time=40.0))
    assert isinstance(src, DicomSource) and src.kind == "dicom"
    assert src.num_frames == 5 and src.frame_size == (20, 30) and src.fps == pytest.approx(25.0)
    got = list(src)
    assert len(got) == 5 and got[0].shape == (20, 30, 3)
    for g, f in zip(got, frames):
        assert np.array_equal(g, np.repeat(f[:, :, None], 3, 2))
    assert np.array_equal(src.read(3), got[3]) and src.names() == ["0", "1", "2", "3", "4"]


def test_rgb_rle_compressed_without_extension(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (4, 16, 24, 3), dtype=np.uint8)
    path = write_dicom(tmp_path / "IM0001", frames, cine_rate=30, rle=True)  # no suffix: found by its DICM preamble
    src = open_source(path)
    assert src.kind == "dicom" and src.fps == 30.0 and "1.2.840.10008.1.2.5" in src.transfer_syntax
    assert np.array_equal(np.stack(list(src)), frames)


def test_monochrome1_is_inverted(tmp_path):
    frames = np.array([[[0, 100], [200, 255]]], np.uint8)
    src = open_source(write_dicom(tmp_path / "m1.dcm", frames, photometric="MONOCHROME1"))
    assert np.array_equal(src.read(0)[..., 0], 255 - frames[0]) and src.fps == 25.0


def test_16bit_dicom_rejected(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", np.zeros((2, 8, 8), np.uint16), bits=16)
    with pytest.raises(InputError, match=r"ct\.dcm: 16-bit DICOM pixel data is not supported"):
        open_source(path)


def test_dicom_without_frames_or_pixels(tmp_path):
    path = write_dicom(tmp_path / "zero.dcm", np.zeros((1, 8, 8), np.uint8))
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 0
    ds.save_as(path)
    with pytest.raises(InputError, match=r"zero\.dcm: the DICOM file has no frames"):
        open_source(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(InputError, match=r"zero\.dcm: DICOM file has no pixel data"):
        open_source(path)


def test_not_dicom(tmp_path):
    p = tmp_path / "fake.dcm"
    p.write_bytes(b"hello" * 100)
    with pytest.raises(InputError, match=r"fake\.dcm: not a DICOM file"):
        open_source(p)


def test_predict_cli_on_dicom(tmp_path):
    """`lgrnet predict` on an RGB and a grey DICOM loop: one mask and map per frame at the original
    size, JSON/CSV rows for every frame, an overlay with the same frame count and the DICOM's rate."""
    import av
    import torch

    from lgrnet import LGRNet
    from lgrnet.cli import main

    torch.manual_seed(0)
    weights = LGRNet.from_preset("tiny").save_pretrained(str(tmp_path / "tiny.safetensors"))
    rng = np.random.default_rng(2)
    rgb = write_dicom(tmp_path / "rgb.dcm", rng.integers(0, 256, (5, 40, 50, 3), dtype=np.uint8), frame_time=100.0)
    grey = write_dicom(tmp_path / "grey.dcm", rng.integers(0, 256, (4, 33, 45), dtype=np.uint8))
    out = tmp_path / "out"
    rc = main(["predict", str(rgb), str(grey), "--weights", weights, "--out", str(out), "--size", "64", "--no-progress"])
    assert rc == 0
    for name, T, (H, W), fps in (("rgb", 5, (40, 50), 10.0), ("grey", 4, (33, 45), 25.0)):
        res = out / name
        masks = sorted((res / "masks").iterdir())
        probs = sorted((res / "probs").iterdir())
        assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(T)] == [p.name for p in probs]
        assert Image.open(masks[0]).size == (W, H) and Image.open(probs[-1]).size == (W, H)
        info = json.loads((res / "predictions.json").read_text())
        assert info["kind"] == "dicom" and info["num_frames"] == T and info["fps"] == fps
        assert [f["index"] for f in info["frames"]] == list(range(T))
        assert len((res / "predictions.csv").read_text().strip().splitlines()) == T + 1
        with av.open(str(res / "overlay.mp4")) as c:
            n = sum(1 for _ in c.decode(video=0))
            assert float(c.streams.video[0].average_rate) == pytest.approx(fps)
        assert n == T


def test_jpeg_baseline_ultrasound_encoding(tmp_path):
    """The usual ultrasound cine encoding: JPEG baseline frames, YBR_FULL_422, decoded to RGB."""
    import io

    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    yy, xx = np.mgrid[0:32, 0:48]
    frames = np.stack([np.stack([(xx * 5 + 20 * i) % 256, yy * 7, np.full_like(xx, 60 * i)], -1) for i in range(3)]).astype(np.uint8)
    path = write_dicom(tmp_path / "us.dcm", frames, frame_time=50.0)
    ds = pydicom.dcmread(path)
    jpegs = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=95)
        jpegs.append(buf.getvalue())
    ds.PixelData = encapsulate(jpegs)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.LossyImageCompression = "01"
    ds.save_as(path)
    src = open_source(path)
    assert src.num_frames == 3 and src.fps == pytest.approx(20.0) and src.transfer_syntax == JPEGBaseline8Bit
    got = np.stack(list(src))
    assert got.shape == frames.shape
    assert np.abs(got.astype(int) - frames.astype(int)).mean() < 3  # lossy, but RGB (not YBR) and in order
    assert np.array_equal(src.read(2), got[2])
