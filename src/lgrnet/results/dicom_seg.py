"""DICOM Segmentation objects (SEG) for DICOM inputs: one segment "lesion", frame by frame.

A SEG written here belongs to the source's patient and study (a new series), holds one segment
("lesion": SNOMED CT category 49755003 *Morphologically abnormal structure*, type 52988006
*Lesion*, algorithm type AUTOMATIC, identified by algorithm name and version), and references
the source's SOP Instance and, for each of its frames, the source frame it was computed on
(Derivation Image Sequence > Source Image Sequence > Referenced Frame Number).

- BINARY (default): 1 bit per pixel, the masks of ``masks/*.png``.
- FRACTIONAL (``fractional=True``): SegmentationFractionalType PROBABILITY, 8 bits, value
  ``round(255 * p)`` with MaximumFractionalValue 255 (the same numbers as ``probs/*.png``).

Empty frames are omitted, as the standard allows for SEG (a reader fills them with zeros); a video
with no lesion anywhere keeps one empty frame, since a SEG must have at least one.

Which library builds it: highdicom's :class:`highdicom.seg.Segmentation` supports single-frame
sources and multi-frame sources that have a Frame of Reference (CT/MR volumes, slides), but not
the cine loops this package reads (US Multi-frame, Video Endoscopic and similar IODs carry no
Frame of Reference: "Only a single frame is supported when the source image has no Frame of
Reference UID", highdicom issue #284). Those are the usual inputs, so for them the dataset is
assembled here with pydicom, using highdicom's segment description, algorithm identification and
codes, and following the layout highdicom writes for a single frame without a Frame of Reference,
with one extra dimension (the source frame's Temporal Position Index). Sources that have a Frame
of Reference go through highdicom's constructor unchanged. The result reads back with
``highdicom.seg.segread`` (tests/test_dicom_seg.py checks masks and references that way).
"""
from __future__ import annotations

import datetime
import os
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np

from ..errors import InputError
from ..files import atomic_write
from ..io.dicom_codecs import LOSSY_SYNTAXES

PathLike = Union[str, os.PathLike]

SEGMENT_LABEL = "lesion"
SEG_SERIES_NUMBER = 900  # a high number keeps the SEG series after the source series in a viewer
# Patient and study attributes copied from the source (Type 2 ones are written empty when absent).
_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                  "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.CodeValue, ds.CodingSchemeDesignator, ds.CodeMeaning = value, scheme, meaning
    return ds


def segment_description(algorithm_name: str, algorithm_version: str):
    """highdicom's description of segment 1, "lesion" (SNOMED CT coded), made by ``algorithm_name``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm_name, version=algorithm_version, family=codes.cid7162.ArtificialIntelligence))


def read_source_header(path: PathLike):
    """The source's header (no pixel data), checked for what a SEG must reference."""
    import pydicom

    try:
        src = pydicom.dcmread(os.fspath(path), stop_before_pixels=True)
    except Exception as exc:
        raise InputError(f"{path}: cannot read the DICOM header ({exc})") from None
    missing = [k for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")
               if not src.get(k)]
    if missing:
        raise InputError(f"{path}: cannot reference it from a DICOM SEG: it has no {', '.join(missing)}")
    return src


def write_dicom_seg(source: PathLike, masks: Iterable[np.ndarray], out: PathLike, *, fractional: bool = False,
                    algorithm_name: str = "LGRNet", algorithm_version: Optional[str] = None,
                    series_description: str = "LGRNet lesion segmentation") -> str:
    """Write a DICOM SEG for the DICOM file ``source`` to ``out`` (atomically); returns its path.

    masks: one (H, W) array per source frame, in order, H x W the source's Rows x Columns: bool
        masks (BINARY), or with ``fractional=True`` uint8 values 0..255 (255 = probability 1) or
        floats in [0, 1] (FRACTIONAL, PROBABILITY; floats become ``round(255 * p)``).
    The number of arrays must equal the source's NumberOfFrames (1 when it has none).
    """
    from ..version import __version__

    src = read_source_header(source)
    rows, cols = int(src.Rows), int(src.Columns)
    n_src = int(src.get("NumberOfFrames", 1) or 1)
    kept: List[Tuple[int, np.ndarray]] = []  # (source frame number, 1-based; frame), empty frames left out
    count = 0
    for i, m in enumerate(masks):
        m = np.asarray(m)
        if m.shape != (rows, cols):
            raise ValueError(f"{source}: mask {i} is {m.shape[1]}x{m.shape[0]} but the frames are {cols}x{rows}")
        m = _fraction_to_uint8(m) if fractional else m.astype(bool)
        count += 1
        if m.any():
            kept.append((i + 1, m))
    if count != n_src:
        raise ValueError(f"{source}: got {count} masks for {n_src} frames")
    if not kept:
        kept = [(1, np.zeros((rows, cols), np.uint8 if fractional else bool))]
    version = algorithm_version or __version__
    if has_plane_positions(src):
        seg = _highdicom_seg(source, kept, n_src, fractional, version, algorithm_name, series_description)
    else:
        seg = _frame_referenced_seg(src, kept, fractional, version, algorithm_name, series_description)
    return atomic_write(out, lambda tmp: seg.save_as(tmp, enforce_file_format=True))


def has_plane_positions(src) -> bool:
    """Whether the source places its frames in a patient (or slide) coordinate system: a Frame of
    Reference and, for each frame, a plane position (Image Position (Patient) of a single-frame
    image, or Plane Position Sequence in the shared or per-frame functional groups of an enhanced
    multi-frame image). Cine loops often carry a Frame of Reference UID without any plane position;
    they are segmented frame by frame, like cines without one."""
    if "FrameOfReferenceUID" not in src:
        return False
    frames = int(src.get("NumberOfFrames", 1) or 1)
    if "ImagePositionPatient" in src and frames == 1:
        return True
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = src.get(group) or []
        if items and all(("PlanePositionSequence" in item or "PlanePositionSlideSequence" in item) for item in items):
            return True
    return False


def lossy_compression(src) -> Optional[Tuple[Optional[str], Optional[str]]]:
    """(ratio, method) when the source's pixels went through lossy compression, else None: its own
    Lossy Image Compression "01", or a transfer syntax that is always lossy (gdcm and others write
    JPEG baseline without saying so). A SEG must carry this over (PS3.3 C.7.6.1.1.5)."""
    syntax = str(getattr(getattr(src, "file_meta", None), "TransferSyntaxUID", "") or "")
    if str(src.get("LossyImageCompression", "")).strip() != "01" and syntax not in LOSSY_SYNTAXES:
        return None
    ratio = src.get("LossyImageCompressionRatio")
    method = src.get("LossyImageCompressionMethod") or LOSSY_SYNTAXES.get(syntax)
    return (ratio, method)


def _fraction_to_uint8(m: np.ndarray) -> np.ndarray:
    if m.dtype == np.uint8:
        return m
    if m.dtype == bool:
        return m.astype(np.uint8) * 255
    return np.rint(np.clip(m.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def _highdicom_seg(source: PathLike, kept, n_src: int, fractional: bool, version: str, name: str, description: str):
    """Sources with a Frame of Reference: highdicom's own constructor (plane positions from the source)."""
    import highdicom as hd
    import pydicom

    src = pydicom.dcmread(os.fspath(source))
    arr = np.zeros((n_src, int(src.Rows), int(src.Columns)), np.uint8 if fractional else bool)
    for number, m in kept:
        arr[number - 1] = m
    if fractional:
        arr = arr.astype(np.float32) / 255.0
    try:
        return hd.seg.Segmentation(
            source_images=[src], pixel_array=arr,
            segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[segment_description(name, version)], series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1, manufacturer="lgrnet",
            manufacturer_model_name=name, software_versions=version, device_serial_number="none",
            series_description=description, max_fractional_value=255)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{source}: cannot build a DICOM SEG for it ({exc})") from None


def _frame_referenced_seg(src, kept, fractional: bool, version: str, name: str, description: str):
    """Multi-frame sources without a Frame of Reference (cine loops): each SEG frame references its
    source frame by number; dimensions: Referenced Segment Number, Temporal Position Index."""
    import highdicom as hd
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import pack_bits
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, SegmentationStorage

    now = datetime.datetime.now()
    uid = hd.UID()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SegmentationStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = SegmentationStorage, uid
    if "SpecificCharacterSet" in src:  # the copied names keep their encoding
        ds.SpecificCharacterSet = src.SpecificCharacterSet
    for key in _PATIENT_STUDY:  # patient and study: the source's
        if key in src:
            setattr(ds, key, src[key].value)
        elif key in _TYPE2:
            setattr(ds, key, "")
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = hd.UID()
    ds.SeriesNumber = SEG_SERIES_NUMBER
    ds.SeriesDescription = description
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.Manufacturer, ds.ManufacturerModelName = "lgrnet", name
    ds.SoftwareVersions, ds.DeviceSerialNumber = version, "none"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    # General Image: Patient Orientation is Type 2C, required where frames have no plane orientation
    ds.PatientOrientation = src.get("PatientOrientation", "") or ""
    ds.ContentLabel = "LESION"
    ds.ContentDescription = description[:64]
    ds.ContentCreatorName = ""

    ref_instance = Dataset()
    ref_instance.ReferencedSOPClassUID, ref_instance.ReferencedSOPInstanceUID = src.SOPClassUID, src.SOPInstanceUID
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = src.SeriesInstanceUID
    ref_series.ReferencedInstanceSequence = Sequence([ref_instance])
    ds.ReferencedSeriesSequence = Sequence([ref_series])
    whole = Dataset()
    whole.ReferencedSOPClassUID, whole.ReferencedSOPInstanceUID = src.SOPClassUID, src.SOPInstanceUID
    ds.SourceImageSequence = Sequence([whole])

    # Segmentation Image module
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = int(src.Rows), int(src.Columns)
    bits = 8 if fractional else 1
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    lossy = lossy_compression(src)
    ds.LossyImageCompression = "01" if lossy else "00"
    if lossy:
        ratio, method = lossy
        if ratio:
            ds.LossyImageCompressionRatio = ratio
        if method:
            ds.LossyImageCompressionMethod = method
    ds.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        ds.SegmentationFractionalType = "PROBABILITY"
        ds.MaximumFractionalValue = 255
    ds.SegmentsOverlap = "NO"
    ds.SegmentSequence = Sequence([segment_description(name, version)])
    ds.PresentationLUTShape = "IDENTITY"

    # Multi-frame Dimension module: segment, then the source frame's temporal position
    org = hd.UID()
    ds.DimensionOrganizationSequence = Sequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = org
    seg_dim, time_dim = Dataset(), Dataset()
    seg_dim.DimensionOrganizationUID = time_dim.DimensionOrganizationUID = org
    seg_dim.DimensionIndexPointer, seg_dim.FunctionalGroupPointer = 0x0062000B, 0x0062000A
    seg_dim.DimensionDescriptionLabel = "Referenced Segment Number"
    time_dim.DimensionIndexPointer, time_dim.FunctionalGroupPointer = 0x00209128, 0x00209111
    time_dim.DimensionDescriptionLabel = "Temporal Position Index"
    ds.DimensionIndexSequence = Sequence([seg_dim, time_dim])

    shared = Dataset()
    seg_id = Dataset()
    seg_id.ReferencedSegmentNumber = 1
    shared.SegmentIdentificationSequence = Sequence([seg_id])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for number, _ in kept:
        item = Dataset()
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = src.SOPClassUID, src.SOPInstanceUID
        ref.ReferencedFrameNumber = number
        ref.SpatialLocationsPreserved = "YES"
        ref.PurposeOfReferenceCodeSequence = Sequence([_code("121322", "DCM", "Source image for image processing operation")])
        derivation = Dataset()
        derivation.SourceImageSequence = Sequence([ref])
        derivation.DerivationCodeSequence = Sequence([_code("113076", "DCM", "Segmentation")])
        item.DerivationImageSequence = Sequence([derivation])
        content = Dataset()
        content.DimensionIndexValues = [1, number]
        content.TemporalPositionIndex = number
        item.FrameContentSequence = Sequence([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = len(kept)
    frames = np.stack([m for _, m in kept])
    # BINARY: the frames' bits follow each other without padding (PS3.5 8.1.1), little-endian bit order
    if fractional:
        data = frames.tobytes()
        ds.PixelData = data + b"\0" * (len(data) % 2)  # even length
    else:
        ds.PixelData = pack_bits(frames.astype(np.uint8).ravel(), pad=True)
    ds["PixelData"].VR = "OB"

    contributing = Dataset()  # as highdicom records itself on what it helped write
    contributing.Manufacturer, contributing.ManufacturerModelName = "Highdicom open-source contributors", "highdicom"
    contributing.SoftwareVersions = hd.__version__
    contributing.ContributionDescription = "Software library used to create the segment description"
    contributing.PurposeOfReferenceCodeSequence = Sequence([_code("109102", "DCM", "Processing Equipment")])
    ds.ContributingEquipmentSequence = Sequence([contributing])
    return ds


SEG_FILE_NAME = "segmentation.dcm"


def why_no_dicom_seg(source: PathLike) -> Optional[str]:
    """None when a SEG can be written for ``source``, else the reason (one line, names the file)."""
    try:
        import highdicom  # noqa: F401
    except ImportError:
        return f'{source}: writing a DICOM SEG needs highdicom: pip install "lgrnet[dicom]"'
    try:
        read_source_header(source)
    except InputError as exc:
        return str(exc)
    return None


def write_dicom_seg_for_results(source: PathLike, folder: PathLike, fractional: bool = False,
                                algorithm_version: Optional[str] = None) -> str:
    """``folder/segmentation.dcm`` from a result folder's ``masks/*.png`` (or, fractional,
    ``probs/*.png``: the same round(255 p) values), read one PNG at a time; returns its path."""
    from pathlib import Path

    from PIL import Image

    sub = Path(folder) / ("probs" if fractional else "masks")
    pngs = sorted(p for p in sub.iterdir() if p.suffix == ".png")

    def frames():
        for p in pngs:
            with Image.open(p) as im:
                a = np.asarray(im)
            yield a if fractional else a > 127

    return write_dicom_seg(source, frames(), Path(folder) / SEG_FILE_NAME, fractional=fractional,
                           algorithm_version=algorithm_version)
