"""DICOM cine loops in the forms scanners write (ultrasound and endoscopy), for the reader and SEG tests.

Each form is made the way the tools that write it do: uncompressed RGB and MONOCHROME2; JPEG
baseline YBR_FULL_422 from dcmtk's ``dcmcjpeg`` (when installed) and from JPEG fragments Pillow
encodes; JPEG baseline whose header says RGB while the data are YCbCr (what ``gdcmconv --jpeg
--lossy`` writes: no JFIF or Adobe marker, component ids 1, 2, 3, subsampled chroma); JPEG
lossless (``dcmcjpeg``), RLE lossless, JPEG-LS lossless and JPEG 2000 lossless (pydicom's
encoders), each with or without a Frame of Reference. :func:`write_form` returns the path and
whether the form is lossy (the reader's frames then only approximate the originals).
"""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np


def cine_frames(T: int = 4, H: int = 48, W: int = 64, grey: bool = False) -> np.ndarray:
    """(T, H, W, 3) or (T, H, W) uint8: smooth colour ramps that survive lossy coding, one per frame."""
    yy, xx = np.mgrid[0:H, 0:W]
    frames = np.stack([np.stack([np.full_like(xx, 190 - 9 * i), (yy * 3 + 5 * i) % 256, (xx * 2 + 40) % 256], -1)
                       for i in range(T)]).astype(np.uint8)
    if grey:
        return frames.mean(-1).astype(np.uint8)
    return frames


def write_cine(path, frames: np.ndarray, *, sop_class: str = "1.2.840.10008.5.1.4.1.1.3.1", frame_of_reference: bool = False,
               frame_time: float = 40.0) -> Path:
    """An uncompressed multi-frame DICOM as a scanner exports it: patient, study, series identity and
    cine timing; ``frame_of_reference``: with a Frame of Reference UID (no plane positions, as
    ultrasound scanners write cines)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    frames = np.asarray(frames)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US" if sop_class.endswith(".3.1") else ("ES" if ".77." in sop_class else "OT")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Cine", "P0001", "", ""
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "S1", "A1"
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber, ds.InstanceNumber = 3, 1
    if frame_of_reference:
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = generate_uid(), ""
    ds.NumberOfFrames = frames.shape[0]
    ds.FrameTime = frame_time
    ds.FrameIncrementPointer = 0x00181063  # FrameTime
    ds.Rows, ds.Columns = frames.shape[1:3]
    rgb = frames.ndim == 4
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = frames.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return Path(path)


def _jpeg_fragments(path: Path, frames: np.ndarray, photometric: str, strip_markers: bool = False) -> None:
    """Replace the pixel data by JPEG baseline frames Pillow encodes (JFIF, YCbCr 4:2:0 for colour).
    ``strip_markers``: drop the JFIF APP0 segment (as gdcm writes its JPEG streams)."""
    import pydicom
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    ds = pydicom.dcmread(path)
    jpegs = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=95)
        data = buf.getvalue()
        if strip_markers:
            assert data[2:4] == b"\xff\xe0"  # SOI, then APP0 (JFIF)
            data = data[:2] + data[4 + int.from_bytes(data[4:6], "big"):]
        jpegs.append(data)
    ds.PixelData = encapsulate(jpegs)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = photometric
    if not strip_markers:  # gdcm leaves these out
        ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    ds.save_as(path)


def _pydicom_encode(path: Path, syntax: str, **kw) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    ds.compress(syntax, **kw)
    ds.save_as(path)


def _jpegls(path: Path) -> None:
    """JPEG-LS lossless with pydicom's encoder (pyjpegls), else dcmtk's dcmcjpls."""
    if not _needs_module("jpeg_ls")():
        _pydicom_encode(path, "1.2.840.10008.1.2.4.80")
    else:
        _dcmtk("dcmcjpls", "+el")(path)


def _dcmtk(tool: str, *args: str) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        out = path.with_suffix(".tmp")
        subprocess.run([tool, *args, str(path), str(out)], check=True, capture_output=True)
        out.replace(path)
    return run


def _needs(tool: str) -> Callable[[], str]:
    return lambda: "" if shutil.which(tool) else f"{tool} (dcmtk) is not installed"


def _needs_module(name: str) -> Callable[[], str]:
    def check() -> str:
        import importlib.util

        return "" if importlib.util.find_spec(name) else f"{name} is not installed"
    return check


#: name -> (grey?, lossy?, encode(path, frames) after the uncompressed file is written, why unavailable -> "")
FORMS: Dict[str, Tuple[bool, bool, Callable, Callable[[], str]]] = {
    "rgb": (False, False, lambda p, f: None, lambda: ""),
    "mono2": (True, False, lambda p, f: None, lambda: ""),
    "jpeg-ybr422-dcmtk": (False, True, lambda p, f: _dcmtk("dcmcjpeg", "+eb")(p), _needs("dcmcjpeg")),
    "jpeg-ybr422-pillow": (False, True, lambda p, f: _jpeg_fragments(p, f, "YBR_FULL_422"), lambda: ""),
    "jpeg-mono2-pillow": (True, True, lambda p, f: _jpeg_fragments(p, f, "MONOCHROME2"), lambda: ""),
    "jpeg-rgb-labelled-ycbcr-gdcm": (False, True, lambda p, f: _jpeg_fragments(p, f, "RGB", strip_markers=True),
                                     lambda: ""),
    "jpeg-lossless-dcmtk": (False, False, lambda p, f: _dcmtk("dcmcjpeg", "+e1")(p), _needs("dcmcjpeg")),
    "rle-rgb": (False, False, lambda p, f: _pydicom_encode(p, "1.2.840.10008.1.2.5", encoding_plugin="pydicom"),
                lambda: ""),
    "rle-mono2": (True, False, lambda p, f: _pydicom_encode(p, "1.2.840.10008.1.2.5", encoding_plugin="pydicom"),
                  lambda: ""),
    "jpegls-lossless": (False, False, lambda p, f: _jpegls(p),
                        lambda: "" if not _needs_module("jpeg_ls")() or shutil.which("dcmcjpls")
                        else "neither pyjpegls nor dcmcjpls (dcmtk) is installed"),
    "j2k-lossless": (False, False, lambda p, f: _pydicom_encode(p, "1.2.840.10008.1.2.4.90"),
                     _needs_module("openjpeg")),
}


def write_form(folder, form: str, frame_of_reference: bool = False, T: int = 4, H: int = 48, W: int = 64,
               sop_class: str = "1.2.840.10008.5.1.4.1.1.3.1") -> Tuple[Path, np.ndarray, bool]:
    """Write cine ``form`` (a key of :data:`FORMS`) to ``folder``; returns (path, the frames as written
    before encoding (T, H, W[, 3]), lossy?)."""
    grey, lossy, encode, _ = FORMS[form]
    frames = cine_frames(T, H, W, grey=grey)
    path = write_cine(Path(folder) / f"{form}{'-for' if frame_of_reference else ''}.dcm", frames,
                      frame_of_reference=frame_of_reference, sop_class=sop_class)
    encode(path, frames)
    return path, frames, lossy


def unavailable(form: str) -> str:
    """Why ``form`` cannot be made here ("" when it can)."""
    return FORMS[form][3]()
