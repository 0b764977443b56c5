"""DICOM SEG output: written for grey and RGB cine loops, read back with highdicom and pydicom
(masks frame for frame, references to the source SOP Instance and frame numbers, coded segment,
algorithm), FRACTIONAL probabilities, empty frames, and `lgrnet predict` writing segmentation.dcm."""
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from lgrnet.errors import InputError

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

from test_io_dicom import write_dicom  # noqa: E402

from lgrnet.results.dicom_seg import write_dicom_seg  # noqa: E402


def write_study_dicom(path, frames, **kw):
    """A multi-frame DICOM as a scanner exports it: with patient, study and series identity."""
    from pydicom.uid import generate_uid

    write_dicom(path, frames, **kw)
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the name below must survive the copy into the SEG
    ds.PatientName, ds.PatientID = "Müller^Jürgen", "P0001"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "S1", "A1"
    ds.SeriesNumber, ds.InstanceNumber = 3, 1
    ds.save_as(path)
    return path


def ct_series(T: int, H: int, W: int, study: str):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    series, frame_of_reference = generate_uid(), generate_uid()
    out = []
    for i in range(T):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset("ct", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", study, series
        ds.FrameOfReferenceUID = frame_of_reference
        for key in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "ReferringPhysicianName"):
            setattr(ds, key, "")
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = H, W, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(i)], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness, ds.SeriesNumber, ds.InstanceNumber = [1, 1], 1, 1, i + 1
        out.append(ds)
    return out


def read_seg_masks(seg_path, src):
    """(T, H, W) uint8 per source frame, via highdicom's lookup by source frame number."""
    seg = hd.seg.segread(seg_path)
    T = int(src.NumberOfFrames)
    arr = seg.get_pixels_by_source_frame(source_sop_instance_uid=src.SOPInstanceUID,
                                         source_frame_numbers=list(range(1, T + 1)), segment_numbers=[1],
                                         assert_missing_frames_are_empty=True, rescale_fractional=False)
    return seg, arr[..., 0]


def random_masks(rng, T, H, W):
    masks = np.zeros((T, H, W), bool)
    for t in range(T):
        y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
        masks[t, y:y + rng.integers(2, 12), x:x + rng.integers(2, 15)] = True
    masks[1] = False  # an empty frame: omitted from the SEG, read back as zeros
    return masks


@pytest.mark.parametrize("rgb", [False, True], ids=["grey", "rgb"])
def test_binary_seg_round_trip(tmp_path, rgb):
    rng = np.random.default_rng(3 + rgb)
    T, H, W = 6, 27, 35  # H * W not a multiple of 8: the frames' bits run on without padding
    shape = (T, H, W, 3) if rgb else (T, H, W)
    src_path = write_study_dicom(tmp_path / "cine.dcm", rng.integers(0, 256, shape, dtype=np.uint8), frame_time=40.0)
    masks = random_masks(rng, T, H, W)
    out = write_dicom_seg(src_path, masks, tmp_path / "seg.dcm", algorithm_version="9.8.7")

    src = pydicom.dcmread(src_path)
    seg, got = read_seg_masks(out, src)
    assert np.array_equal(got.astype(bool), masks)
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG" and seg.NumberOfFrames == T - 1
    assert seg.StudyInstanceUID == src.StudyInstanceUID and seg.PatientID == "P0001"
    assert str(pydicom.dcmread(out).PatientName) == "Müller^Jürgen"
    assert seg.SeriesInstanceUID != src.SeriesInstanceUID
    # references, read with pydicom: the series/instance, and per SEG frame its source frame number
    ds = pydicom.dcmread(out)
    ref = ds.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == src.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    numbers = []
    for item in ds.PerFrameFunctionalGroupsSequence:
        s = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert s.ReferencedSOPInstanceUID == src.SOPInstanceUID and s.ReferencedSOPClassUID == src.SOPClassUID
        numbers.append(int(s.ReferencedFrameNumber))
    assert numbers == [t + 1 for t in range(T) if masks[t].any()]
    raw = ds.pixel_array.reshape(-1, H, W)  # pydicom's own unpacking of the 1-bit frames
    assert np.array_equal(raw.astype(bool), masks[[n - 1 for n in numbers]])
    segment = ds.SegmentSequence[0]
    assert segment.SegmentLabel == "lesion" and segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    algo = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("LGRNet", "9.8.7")


def test_fractional_seg_holds_the_probability(tmp_path):
    rng = np.random.default_rng(5)
    T, H, W = 4, 20, 30
    src_path = write_study_dicom(tmp_path / "cine.dcm", rng.integers(0, 256, (T, H, W), dtype=np.uint8))
    probs = rng.random((T, H, W)).astype(np.float32)
    probs[2] = 0.001  # rounds to 0 everywhere: an empty frame
    out = write_dicom_seg(src_path, probs, tmp_path / "seg.dcm", fractional=True)
    seg, got = read_seg_masks(out, pydicom.dcmread(src_path))
    assert seg.SegmentationType == "FRACTIONAL" and seg.SegmentationFractionalType == "PROBABILITY"
    assert int(seg.MaximumFractionalValue) == 255 and seg.NumberOfFrames == T - 1
    assert np.array_equal(got, np.rint(probs * 255).astype(np.uint8))


def test_no_lesion_anywhere_keeps_one_empty_frame(tmp_path):
    src_path = write_study_dicom(tmp_path / "cine.dcm", np.zeros((3, 16, 16), np.uint8))
    out = write_dicom_seg(src_path, np.zeros((3, 16, 16), bool), tmp_path / "seg.dcm")
    seg, got = read_seg_masks(out, pydicom.dcmread(src_path))
    assert seg.NumberOfFrames == 1 and not got.any() and got.shape == (3, 16, 16)


def test_source_without_study_identity_is_refused(tmp_path):
    src_path = write_dicom(tmp_path / "bare.dcm", np.zeros((2, 8, 8), np.uint8))  # no Study/Series UIDs
    with pytest.raises(InputError, match=r"bare\.dcm: cannot reference it from a DICOM SEG: it has no "
                                         r"StudyInstanceUID, SeriesInstanceUID"):
        write_dicom_seg(src_path, np.zeros((2, 8, 8), bool), tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_masks_must_match_the_frames(tmp_path):
    src_path = write_study_dicom(tmp_path / "cine.dcm", np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="got 2 masks for 3 frames"):
        write_dicom_seg(src_path, np.zeros((2, 8, 8), bool), tmp_path / "seg.dcm")
    with pytest.raises(ValueError, match="mask 0 is 9x8 but the frames are 8x8"):
        write_dicom_seg(src_path, np.zeros((3, 8, 9), bool), tmp_path / "seg.dcm")
    assert list(tmp_path.iterdir()) == [tmp_path / "cine.dcm"]  # nothing half-written


def png_stack(folder):
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.iterdir())])


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import torch

    from lgrnet import LGRNet

    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


def test_predict_writes_segmentation_dcm(tmp_path, tiny_weights):
    """`lgrnet predict` on a grey and an RGB cine: segmentation.dcm holds masks/*.png frame for frame
    and references the source instance and its frame numbers."""
    from lgrnet.cli import main

    rng = np.random.default_rng(8)
    grey = write_study_dicom(tmp_path / "grey.dcm", rng.integers(0, 256, (4, 33, 45), dtype=np.uint8))
    rgb = write_study_dicom(tmp_path / "rgb.dcm", rng.integers(0, 256, (5, 40, 50, 3), dtype=np.uint8), frame_time=100.0)
    out = tmp_path / "out"
    assert main(["predict", str(grey), str(rgb), "--weights", tiny_weights, "--out", str(out), "--size", "64",
                 "--no-progress", "--no-overlay"]) == 0
    for name, src_path in (("grey", grey), ("rgb", rgb)):
        src = pydicom.dcmread(src_path)
        seg, got = read_seg_masks(out / name / "segmentation.dcm", src)
        masks = png_stack(out / name / "masks") > 127
        assert got.shape == masks.shape and np.array_equal(got.astype(bool), masks)
        ds = pydicom.dcmread(out / name / "segmentation.dcm")
        assert ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        numbers = [int(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
                   for f in ds.PerFrameFunctionalGroupsSequence]
        expected = [t + 1 for t in range(len(masks)) if masks[t].any()] or [1]
        assert numbers == expected
        algo = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
        import lgrnet

        assert algo.AlgorithmName == "LGRNet" and algo.AlgorithmVersion == lgrnet.__version__


def test_predict_dicom_seg_options(tmp_path, tiny_weights, capsys):
    from lgrnet.cli import main

    rng = np.random.default_rng(9)
    cine = write_study_dicom(tmp_path / "cine.dcm", rng.integers(0, 256, (3, 32, 32), dtype=np.uint8))
    bare = write_dicom(tmp_path / "bare.dcm", rng.integers(0, 256, (3, 32, 32), dtype=np.uint8))
    common = ["--weights", tiny_weights, "--size", "64", "--no-progress", "--no-overlay"]

    assert main(["predict", str(cine), "--out", str(tmp_path / "a"), "--no-dicom-seg", *common]) == 0
    assert not (tmp_path / "a" / "cine" / "segmentation.dcm").exists()

    assert main(["predict", str(cine), "--out", str(tmp_path / "b"), "--dicom-seg-fractional", *common]) == 0
    seg, got = read_seg_masks(tmp_path / "b" / "cine" / "segmentation.dcm", pydicom.dcmread(cine))
    assert seg.SegmentationType == "FRACTIONAL" and np.array_equal(got, png_stack(tmp_path / "b" / "cine" / "probs"))

    capsys.readouterr()
    # default: a DICOM without study identity still gets its masks, with a one-line note
    assert main(["predict", str(bare), "--out", str(tmp_path / "c"), *common]) == 0
    err = capsys.readouterr().err
    assert (tmp_path / "c" / "bare" / "masks").is_dir() and not (tmp_path / "c" / "bare" / "segmentation.dcm").exists()
    assert "bare.dcm: cannot reference it from a DICOM SEG" in err and "no segmentation.dcm" in err
    # asked for explicitly: that input fails, with one line and no result folder
    assert main(["predict", str(bare), "--out", str(tmp_path / "d"), "--dicom-seg", *common]) == 2
    err = capsys.readouterr().err
    assert "bare.dcm: cannot reference it from a DICOM SEG" in err and "Traceback" not in err
    assert not (tmp_path / "d" / "bare").exists()


def test_source_with_a_frame_of_reference_goes_through_highdicom(tmp_path):
    """A single CT slice (it has a Frame of Reference and plane position): highdicom's own
    constructor builds the SEG, with the plane position and the source reference; dciodvfy finds
    no error in it."""
    from pydicom.uid import generate_uid

    src = ct_series(1, 24, 20, generate_uid())[0]
    src.PixelData = np.zeros((24, 20), np.uint16).tobytes()
    src.save_as(tmp_path / "ct.dcm", enforce_file_format=True)
    mask = np.zeros((1, 24, 20), bool)
    mask[0, 3:9, 4:15] = True
    out = write_dicom_seg(tmp_path / "ct.dcm", mask, tmp_path / "seg.dcm")
    seg = hd.seg.segread(out)
    assert seg.FrameOfReferenceUID == src.FrameOfReferenceUID and seg.SegmentSequence[0].SegmentLabel == "lesion"
    got = seg.get_pixels_by_source_instance(source_sop_instance_uids=[src.SOPInstanceUID], segment_numbers=[1])
    assert np.array_equal(got[0, ..., 0].astype(bool), mask[0])
    if shutil.which("dciodvfy"):
        run = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, timeout=60)
        assert not [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_predict_cine_with_frame_of_reference_but_no_plane_positions(tmp_path, tiny_weights):
    """Scanners write cines with a Frame of Reference UID and no plane positions: `lgrnet predict`
    failed on them ("Only a single frame is supported when the source image has no Frame of
    Reference UID"); the SEG now references each source frame, as for cines without one."""
    from tests.helpers.dicom_forms import cine_frames, write_cine
    from lgrnet.cli import main
    from lgrnet.results.dicom_seg import has_plane_positions

    cine = write_cine(tmp_path / "cine.dcm", cine_frames(4, 40, 48), frame_of_reference=True)
    assert not has_plane_positions(pydicom.dcmread(cine))
    out = tmp_path / "out"
    assert main(["predict", str(cine), "--weights", tiny_weights, "--out", str(out), "--size", "64", "--no-progress",
                 "--no-overlay", "--dicom-seg"]) == 0
    seg, got = read_seg_masks(out / "cine" / "segmentation.dcm", pydicom.dcmread(cine))
    assert np.array_equal(got.astype(bool), png_stack(out / "cine" / "masks") > 127)
