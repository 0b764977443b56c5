"""What compressed DICOM pixel data need and say: the package that decodes each transfer syntax
(named in the one-line error when none is installed), whether a syntax is lossy, and the colour
space a JPEG codestream declares itself (its JFIF / Adobe markers and component ids), which can
contradict the header's Photometric Interpretation.

The colour rule is libjpeg's (``jdapimin.c``, what every JPEG viewer applies) for three components:
an Adobe APP14 marker's transform flag decides (0: RGB, 1: YCbCr); else a JFIF APP0 marker means
YCbCr; else component ids 'R', 'G', 'B' mean RGB and ids 1, 2, 3 YCbCr. DICOM writers disagree with
their own headers in both directions: ``gdcmconv --jpeg --lossy`` stores YCbCr (ids 1, 2, 3, no
marker, subsampled chroma) under "RGB", and some exporters label RGB streams "YBR_FULL_422".
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional, Tuple

#: transfer syntax UID -> (name, what decodes it); JPEG baseline decodes with Pillow alone
DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": ("JPEG baseline", "Pillow or pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.51": ("JPEG extended", "Pillow or pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.57": ("JPEG lossless", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.70": ("JPEG lossless SV1", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.80": ("JPEG-LS lossless", "pylibjpeg-libjpeg or pyjpegls"),
    "1.2.840.10008.1.2.4.81": ("JPEG-LS near-lossless", "pylibjpeg-libjpeg or pyjpegls"),
    "1.2.840.10008.1.2.4.90": ("JPEG 2000 lossless", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.91": ("JPEG 2000", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.201": ("HTJ2K lossless", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.202": ("HTJ2K lossless RPCL", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.203": ("HTJ2K", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.5": ("RLE lossless", "pydicom (faster with pylibjpeg-rle)"),
}

#: transfer syntaxes whose compression is always lossy -> Lossy Image Compression Method (0028,2114)
LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1", "1.2.840.10008.1.2.4.51": "ISO_10918_1",  # JPEG baseline, extended
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.100": "ISO_13818_2", "1.2.840.10008.1.2.4.101": "ISO_13818_2",  # MPEG-2
    "1.2.840.10008.1.2.4.102": "ISO_14496_10", "1.2.840.10008.1.2.4.103": "ISO_14496_10",  # MPEG-4 AVC/H.264
    "1.2.840.10008.1.2.4.104": "ISO_14496_10", "1.2.840.10008.1.2.4.105": "ISO_14496_10",
    "1.2.840.10008.1.2.4.106": "ISO_14496_10",
    "1.2.840.10008.1.2.4.107": "ISO_23008_2", "1.2.840.10008.1.2.4.108": "ISO_23008_2",  # HEVC/H.265
}

#: JPEG transfer syntaxes whose three-component streams may be colour-transformed
JPEG_DCT_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")


def missing_decoder_message(syntax: str) -> str:
    """"transfer syntax JPEG 2000 (1.2.840...) needs pylibjpeg-openjpeg: pip install ..." for ``syntax``."""
    from pydicom.uid import UID

    name, package = DECODER_PACKAGES.get(syntax, (UID(syntax).name if syntax else "unknown", None))
    if package is None:
        return f"transfer syntax {name} ({syntax}) has no decoder that pydicom can use"
    return f'transfer syntax {name} ({syntax}) needs {package}: pip install "lgrnet[dicom]"'


class JpegColour(NamedTuple):
    """What a three-component JPEG codestream says about its colour space."""

    space: Optional[str]  # "RGB", "YBR" or None (cannot tell)
    evidence: str  # why, for messages: "no JFIF/Adobe marker, component ids 1,2,3, chroma subsampled"
    subsampled: bool  # chroma sampled more coarsely than luma (only YCbCr streams are)


def jpeg_colour(stream: bytes) -> Optional[JpegColour]:
    """The colour space the JPEG ``stream`` (its first bytes, up to the start of scan) declares, by
    libjpeg's rule (see the module docstring); None when it is not a three-component JPEG."""
    if stream[:2] != b"\xff\xd8":
        return None
    adobe: Optional[int] = None
    jfif = False
    ids: Tuple[int, ...] = ()
    factors: Tuple[int, ...] = ()
    i = 2
    while i + 4 <= len(stream):
        if stream[i] != 0xFF:
            return None
        marker = stream[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(stream[i + 2:i + 4], "big")
        body = stream[i + 4:i + 2 + length]
        if marker == 0xE0 and body[:5] == b"JFIF\0":
            jfif = True
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe = body[11]
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(body) >= 6:  # start of frame
            n = body[5]
            comps = [body[6 + 3 * k:9 + 3 * k] for k in range(n)]
            ids = tuple(c[0] for c in comps if len(c) == 3)
            factors = tuple(c[1] for c in comps if len(c) == 3)
        elif marker == 0xDA:  # start of scan: the markers that matter come before it
            break
        i += 2 + length
    if len(ids) != 3:
        return None
    subsampled = factors[0] != factors[1] or factors[0] != factors[2]
    chroma = ", chroma subsampled" if subsampled else ""
    if adobe is not None:
        return JpegColour("YBR" if adobe else "RGB", f"Adobe marker with colour transform {adobe}{chroma}", subsampled)
    if jfif:
        return JpegColour("YBR", f"JFIF marker{chroma}", subsampled)
    if ids == (ord("R"), ord("G"), ord("B")):
        return JpegColour("RGB", "component ids R,G,B", subsampled)
    if ids == (1, 2, 3):
        return JpegColour("YBR", f"no JFIF/Adobe marker, component ids 1,2,3{chroma}", subsampled)
    return JpegColour(None, f"no JFIF/Adobe marker, component ids {ids}", subsampled)


def first_fragment_head(path: "os.PathLike[str] | str", value_offset: int, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of the first frame's fragment of encapsulated pixel data whose value
    starts at byte ``value_offset`` of the file (after the Basic Offset Table item), or b""."""
    with open(path, "rb") as f:
        f.seek(value_offset)
        for _ in range(2):  # the offset table item, then the first fragment
            head = f.read(8)
            if len(head) < 8 or head[:4] != b"\xfe\xff\x00\xe0":
                return b""
            length = int.from_bytes(head[4:], "little")
            if _ == 0:
                f.seek(length, 1)
        return f.read(min(length, size))


def fragment_head_from_bytes(value: bytes, size: int = 1 << 16) -> bytes:
    """As :func:`first_fragment_head`, for an encapsulated value held in memory."""
    pos = 0
    for k in range(2):
        head = value[pos:pos + 8]
        if len(head) < 8 or head[:4] != b"\xfe\xff\x00\xe0":
            return b""
        length = int.from_bytes(head[4:], "little")
        pos += 8 + (length if k == 0 else 0)
    return value[pos:pos + min(length, size)]
