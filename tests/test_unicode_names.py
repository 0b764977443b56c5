"""Non-ASCII names survive (issue 29 item 9): frame folders "検査 1", "試験 1" and "vidéo 1" (the last
written in NFD, as macOS stores names) segmented by `lgrnet predict` with the shipped model give result
folders of those names (NFC), dataset videos of those names (`lgrnet dataset from-results`), and the
review page's downloads are named after them (RFC 6266 ``filename*``, read back with the standard
library's MIME parser); names that still collide (differing only in characters no file name may hold)
are one clear line naming both folders."""
from __future__ import annotations

import csv
import unicodedata
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.annotations.layout import check_video_name
from lgrnet.cli import main
from lgrnet.results import corrections as corr
from lgrnet.results.folder import safe_filename
from lgrnet.viewer import ViewerApp, find_results
from tests.helpers.viewer_results import Server

NFC = ["検査 1", "試験 1", "vidéo 1"]
ON_DISK = ["検査 1", "試験 1", unicodedata.normalize("NFD", "vidéo 1")]


def frame_folder(path: Path, seed: int, n: int = 3) -> Path:
    """``n`` small frames: a bright disc on a reddish background (something like a polyp)."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:72, :96]
    for i in range(n):
        img = np.zeros((72, 96, 3), np.uint8) + np.array([150, 60, 50], np.uint8)
        img[(yy - 36) ** 2 + (xx - 40 - 3 * i) ** 2 < 15 ** 2] = (230, 170, 150)
        img = np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(path / f"{i}.png")
    return path


@pytest.fixture(scope="module")
def predicted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("names")
    inputs = [frame_folder(root / "in" / name, seed) for seed, name in enumerate(ON_DISK)]
    rc = main(["predict", *map(str, inputs), "--weights", "demo", "--out", str(root / "out"),
               "--no-progress", "--no-overlay", "--device", "cpu"])
    assert rc == 0
    for name in NFC:  # reviewed: every frame checked (what `dataset from-results` takes)
        for i in range(3):
            corr.set_state(root / "out" / name, i, "checked", expected_version=0)
    return root / "out"


def test_predict_keeps_the_names_in_nfc(predicted):
    names = sorted(p.name for p in predicted.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert names == sorted(NFC)  # "vidéo 1" given in NFD: one NFC folder, not a look-alike
    with open(predicted / "index.csv", encoding="utf-8", newline="") as f:
        assert sorted(r["name"] for r in csv.DictReader(f)) == sorted(NFC)


def test_dataset_from_results_keeps_the_names(predicted, tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(["dataset", "from-results", *(str(predicted / n) for n in NFC), "--out", str(out), "--only", "all"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert sorted(p.name for p in (out / "Frame").iterdir()) == sorted(NFC)
    assert sorted(p.name for p in (out / "GT").iterdir()) == sorted(NFC)
    for n in NFC:
        assert sorted(p.name for p in (out / "Frame" / n).iterdir()) == ["0.png", "1.png", "2.png"]


def download_name(header: str) -> str:
    """The file name a browser saves an attachment as (RFC 6266: ``filename*`` before ``filename``),
    with the header parsed by the standard library's MIME parser (RFC 2231 parameters)."""
    msg = Message()
    msg["Content-Disposition"] = header
    assert msg.get_content_disposition() == "attachment"
    params = msg.get_params(header="content-disposition")
    star = [v for k, v in params if k == "filename" and isinstance(v, tuple)]
    return collapse_rfc2231_value(star[0]) if star else msg.get_filename()


def test_review_page_downloads_are_named_after_the_result(predicted):
    s = Server(ViewerApp(find_results(predicted)))
    try:
        by_name = {r["name"]: i for i, r in enumerate(s.get_json("/api/info")["results"])}
        assert sorted(by_name) == sorted(NFC)
        for name in NFC:
            rid = s.get_json("/api/info")["results"][by_name[name]]["id"]
            for route, suffix in (("masks.zip", "_masks.zip"), ("predictions.csv", "_predictions.csv")):
                status, headers, _ = s.get(f"/api/results/{rid}/{route}")
                assert status == 200
                header = headers["Content-Disposition"]
                header.encode("ascii")  # an HTTP header is ASCII
                assert download_name(header) == name + suffix, header  # not "vid_o_1_masks.zip" or "1_masks.zip"
    finally:
        s.close()


def results_that_collide(root: Path) -> list:
    """Copies of one result under names that differ only in characters no file name may hold."""
    import shutil

    src = find_results(root)[0].root
    out = []
    for name in ("a:b", "a?b"):
        dst = root.parent / "collide" / name
        shutil.copytree(src, dst)
        out.append(dst)
    return out


def test_names_that_still_collide_are_one_line(predicted, tmp_path, capsys):
    a, b = results_that_collide(predicted)
    rc = main(["dataset", "from-results", str(a), str(b), "--out", str(tmp_path / "ds"), "--only", "all"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "'a_b'" in err and str(a) in err and str(b) in err, err
    assert not (tmp_path / "ds" / "Frame").exists()


@pytest.mark.parametrize("name, safe", [
    ("検査 1", "検査 1"),
    ("試験 1", "試験 1"),
    (unicodedata.normalize("NFD", "vidéo 1"), "vidéo 1"),
    ("Ärzte_Überweisung-2.mp4", "Ärzte_Überweisung-2.mp4"),
    ("case 01 (left)", "case 01 (left)"),
    ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j"),
    ("tab\there\x00\x7f", "tab_here_"),
    ("exe\u202egnp.mp4", "exe_gnp.mp4"),  # a right-to-left override would show "exe4pm.png"
    ("bad\udcffbyte", "bad_byte"),  # an undecodable byte of a name (surrogateescape)
    ("..hidden. ", "hidden"),
    ("...", "result"),
])
def test_safe_filename_keeps_letters_of_every_script(name, safe):
    assert safe_filename(name) == safe
    assert unicodedata.is_normalized("NFC", safe_filename(name))


def test_video_names_of_every_script():
    assert check_video_name("検査 1") == "検査 1"
    assert check_video_name(unicodedata.normalize("NFD", "vidéo 1")) == "vidéo 1"
    for bad in ("a:b", ".hidden", "x ", "", "a/b"):
        with pytest.raises(Exception, match="not a usable video name"):
            check_video_name(bad)


def test_content_disposition_ascii_names_unchanged():
    from lgrnet.viewer.routing import content_disposition

    assert content_disposition("case01_masks.zip") == 'attachment; filename="case01_masks.zip"'
    for name in ("検査 1_masks.zip", 'x; filename="y.zip"', "100% ü,a b.csv"):
        header = content_disposition(name)
        assert header.isascii() and download_name(header) == name, header
    assert content_disposition("検査 1_masks.zip").startswith('attachment; filename="__ 1_masks.zip"; filename*=')
