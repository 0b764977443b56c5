"""A DICOM measurement report (Comprehensive 3D SR, TID 1500 *Imaging Measurement Report*, built by
highdicom) of the lesion sizes of a calibrated source, referencing the DICOM SEG they were measured on.

One measurement group (TID 1410 *Planar ROI Measurements*) per SEG frame with a lesion: its ROI is
that SEG frame (segment 1, "lesion"), which names its source frame; it holds the lesion's Area
(SCT 42798000, mm2), Long axis (SCT 103339001, mm) and Short axis (SCT 103340004, mm), the numbers
of predictions.json (:mod:`lgrnet.results.sizes`), measured by the algorithm that made the SEG.
The report goes into the source's study as a new series and lists the source and the SEG as its
evidence. A source without a calibration gets no report (its sizes would be guesses).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from ..files import atomic_write

PathLike = Union[str, os.PathLike]
SR_FILE_NAME = "measurements.dcm"
SR_SERIES_NUMBER = 901  # after the SEG's series (900)


def seg_source_frames(seg) -> Dict[int, int]:
    """{SEG frame number: source frame number} from the SEG's per-frame derivation references."""
    out: Dict[int, int] = {}
    for k, item in enumerate(seg.get("PerFrameFunctionalGroupsSequence", []), start=1):
        for derivation in item.get("DerivationImageSequence", []):
            for ref in derivation.get("SourceImageSequence", []):
                if "ReferencedFrameNumber" in ref:
                    out[k] = int(ref.ReferencedFrameNumber)
    return out


def build_measurement_report(source, seg, sizes: Dict[int, "object"], algorithm_name: str = "LGRNet",
                             algorithm_version: Optional[str] = None):
    """The SR dataset. source: the source's header (pydicom); seg: the SEG dataset;
    sizes: {source frame number (1-based): :class:`~lgrnet.results.sizes.LesionSize`}."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from ..version import __version__

    version = algorithm_version or __version__
    algorithm = hd.sr.AlgorithmIdentification(name=algorithm_name, version=version)
    groups: List = []
    for seg_frame, src_frame in sorted(seg_source_frames(seg).items()):
        size = sizes.get(src_frame)
        if size is None:  # an empty SEG frame (a video without any lesion keeps one)
            continue
        referenced = hd.sr.ReferencedSegmentationFrame(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, frame_number=seg_frame,
            segment_number=1, source_image=hd.sr.SourceImageForSegmentation(
                source.SOPClassUID, source.SOPInstanceUID, referenced_frame_numbers=[src_frame]))
        measurements = [
            hd.sr.Measurement(name=codes.SCT.Area, value=round(size.area_mm2, 4), unit=codes.UCUM.SquareMillimeter,
                              algorithm_id=algorithm),
            hd.sr.Measurement(name=codes.SCT.LongAxis, value=round(size.long_axis_mm, 4), unit=codes.UCUM.Millimeter,
                              algorithm_id=algorithm),
            hd.sr.Measurement(name=codes.SCT.ShortAxis, value=round(size.short_axis_mm, 4), unit=codes.UCUM.Millimeter,
                              algorithm_id=algorithm)]
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"lesion, frame {src_frame}"),
            referenced_segment=referenced, finding_type=codes.SCT.Lesion, algorithm_id=algorithm,
            measurements=measurements))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=algorithm_name, manufacturer_name="lgrnet", model_name=version))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure, imaging_measurements=groups or None)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source, seg], content=report, series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="lgrnet", is_complete=True,
        series_description="LGRNet lesion measurements")
    _frame_or_segment(sr)
    return sr


def _frame_or_segment(ds) -> None:
    """A SEG frame names its segment: the Image SOP Instance Reference macro allows Referenced Frame
    Number or Referenced Segment Number, not both (PS3.3 10.3; dciodvfy reports both as an error), and
    highdicom's ReferencedSegmentationFrame writes both. Keep the frame."""
    for item in ds.get("ContentSequence", []):
        for ref in item.get("ReferencedSOPSequence", []):
            if "ReferencedFrameNumber" in ref and "ReferencedSegmentNumber" in ref:
                del ref.ReferencedSegmentNumber
        _frame_or_segment(item)


def write_measurement_report_for_results(source: PathLike, folder: PathLike) -> Optional[str]:
    """``folder/measurements.dcm`` for a result folder with ``segmentation.dcm`` and ``masks/*.png``
    (frames by index) of a calibrated DICOM ``source``; returns its path, or None when the source
    carries no calibration (nothing is written)."""
    import pydicom
    from PIL import Image

    from ..io.calibration import file_calibration
    from .dicom_seg import SEG_FILE_NAME
    from .sizes import measure_mask

    calibration, _ = file_calibration(source)
    if calibration is None:
        return None
    folder = Path(folder)
    seg = pydicom.dcmread(folder / SEG_FILE_NAME)
    src = pydicom.dcmread(os.fspath(source), stop_before_pixels=True)
    pngs = sorted(p for p in (folder / "masks").iterdir() if p.suffix == ".png")
    sizes = {}
    for src_frame in set(seg_source_frames(seg).values()):
        with Image.open(pngs[src_frame - 1]) as im:
            mask = np.asarray(im) > 127
        size = measure_mask(mask, calibration.mm_x, calibration.mm_y)
        if size is not None:
            sizes[src_frame] = size
    sr = build_measurement_report(src, seg, sizes, algorithm_version=str(seg.get("SoftwareVersions") or "") or None)
    return atomic_write(folder / SR_FILE_NAME, lambda tmp: sr.save_as(tmp, enforce_file_format=True))
