"""A real Orthanc with its DICOMweb plugin for the PACS tests (tests/test_pacs*.py), and small cines.

:class:`Orthanc` starts ``/usr/sbin/Orthanc`` on a free loopback port with its storage in a temporary
folder (config as in docs/pacs.md), optionally with HTTP authentication; :func:`make_cine` writes a
small US Multi-frame DICOM (RGB or MONOCHROME2, optionally calibrated).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def orthanc_missing() -> Optional[str]:
    missing = [p for p in (ORTHANC, PLUGIN) if not os.path.exists(p)]
    return f"needs {' and '.join(missing)} (apt-get install orthanc orthanc-dicomweb)" if missing else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """``Orthanc(folder, users={"u": "p"})``: running until :meth:`stop`; ``url`` is the DICOMweb root."""

    def __init__(self, folder: Path, users: Optional[Dict[str, str]] = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/dicom-web"
        config = {"Name": "lgrnet-test", "HttpPort": self.port, "DicomServerEnabled": False, "DicomPort": 0,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": bool(users), "RegisteredUsers": users or {},
                  "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
                  "Plugins": [PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        self.auth = next(iter(users.items())) if users else None
        self.folder = folder
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps(config))
        self.start()

    def start(self) -> None:
        """Start (or, after :meth:`stop`, start again: same port, same storage); wait until it answers."""
        import requests

        folder = self.folder
        self.log = open(folder / "orthanc.log", "ab")
        self.proc = subprocess.Popen([ORTHANC, str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.root + "/system", auth=self.auth, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def get(self, path: str):
        import requests

        r = requests.get(self.root + path, auth=self.auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def upload(self, path: Path) -> dict:
        import requests

        r = requests.post(self.root + "/instances", data=Path(path).read_bytes(), auth=self.auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def make_cine(path: Path, frames: int = 8, size: int = 64, rgb: bool = True, seed: int = 0, study: str = None,
              mm_per_pixel: Optional[float] = None, pixel_spacing: Optional[float] = None) -> dict:
    """A US Multi-frame DICOM at ``path`` (bright disc moving on noise); returns its UIDs.
    ``mm_per_pixel``: a Sequence of Ultrasound Regions in cm; ``pixel_spacing``: PixelSpacing in mm."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    arr = rng.integers(0, 60, (frames, size, size), dtype=np.uint8)
    for t in range(frames):
        arr[t][(yy - size / 2) ** 2 + (xx - size / 3 - t) ** 2 < (size / 6) ** 2] = 220
    if rgb:
        arr = np.stack([arr, arr // 2 + 20, arr], -1)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study or generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.StudyDate, ds.StudyTime = "Test^Cine", "LGR001", "20261207", "080000"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.StudyID, ds.AccessionNumber = "US", 1, 1, "1", ""
    ds.ReferringPhysicianName, ds.PatientBirthDate, ds.PatientSex = "", "", ""
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, size, size
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.FrameTime = 40.0
    if mm_per_pixel is not None:
        region = Dataset()
        region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = size - 1, size - 1
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
        region.PhysicalDeltaX = region.PhysicalDeltaY = mm_per_pixel / 10.0
        ds.SequenceOfUltrasoundRegions = Sequence([region])
    if pixel_spacing is not None:
        ds.PixelSpacing = [pixel_spacing, pixel_spacing]
    ds.PixelData = arr.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID, "path": path}


SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"


def stored_objects(url: str, study: str, sop_class: str, auth=None) -> list:
    """The instances of ``sop_class`` in ``study`` (fetched with WADO-RS, as pydicom datasets)."""
    import requests
    from dicomweb_client import DICOMwebClient

    session = requests.Session()
    session.auth = auth
    client = DICOMwebClient(url, session=session)
    found = client.search_for_instances(study_instance_uid=study, fields=["00080016"])
    out = []
    for item in found:
        if item["00080016"]["Value"][0] == sop_class:
            out.append(client.retrieve_instance(study, item["0020000E"]["Value"][0], item["00080018"]["Value"][0]))
    return out


def single_frame_image(path: Path, study: str) -> Path:
    """A single-frame US image (not a cine) in ``study``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = UltrasoundImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.PatientID = study, generate_uid(), "US", "LGR001"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(256)
    ds.save_as(str(path), enforce_file_format=True)
    return path
