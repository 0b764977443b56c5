"""DICOM SEG writing speed: highdicom's constructor on a 100-slice series that has a Frame of
Reference (CT-like), against lgrnet's frame-referenced writer on a 100-frame cine of the same
size (the case highdicom 0.28 does not build), and highdicom reading the cine's SEG back.

usage: python -m benchmarks.dicom_seg_speed [--frames 100] [--height 480] [--width 640]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    args = ap.parse_args()
    import highdicom as hd
    import pydicom
    from pydicom.uid import generate_uid

    from tests.test_dicom_seg import ct_series  # the tests' DICOM writers
    from tests.test_io_dicom import write_dicom

    from lgrnet.results.dicom_seg import SEG_SERIES_NUMBER, segment_description, write_dicom_seg

    T, H, W = args.frames, args.height, args.width
    rng = np.random.default_rng(0)
    masks = rng.random((T, H, W)) > 0.7
    tmp = tempfile.mkdtemp(prefix="lgrnet-seg-")
    study = generate_uid()
    srcs = ct_series(T, H, W, study)
    t0 = time.perf_counter()
    seg = hd.seg.Segmentation(
        source_images=srcs, pixel_array=masks, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment_description("LGRNet", "bench")], series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1, manufacturer="lgrnet",
        manufacturer_model_name="LGRNet", software_versions="bench", device_serial_number="none")
    seg.save_as(os.path.join(tmp, "ct_seg.dcm"))
    t_highdicom = time.perf_counter() - t0

    cine = write_dicom(os.path.join(tmp, "cine.dcm"), rng.integers(0, 256, (T, H, W), dtype=np.uint8))
    ds = pydicom.dcmread(cine)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.save_as(cine)
    t0 = time.perf_counter()
    write_dicom_seg(cine, masks, os.path.join(tmp, "cine_seg.dcm"))
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = hd.seg.segread(os.path.join(tmp, "cine_seg.dcm")).get_pixels_by_source_frame(
        source_sop_instance_uid=ds.SOPInstanceUID, source_frame_numbers=list(range(1, T + 1)),
        assert_missing_frames_are_empty=True)
    t_read = time.perf_counter() - t0
    assert np.array_equal(back[..., 0].astype(bool), masks)
    print(f"{T} frames {H}x{W}, binary: highdicom Segmentation() + save (CT series): {t_highdicom:.2f} s; "
          f"lgrnet write_dicom_seg (cine): {t_ours:.2f} s; highdicom segread + get_pixels_by_source_frame: {t_read:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
