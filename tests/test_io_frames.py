"""Frame-folder sources: natural order, names, and bad folders."""
import numpy as np
import pytest
from PIL import Image

from lgrnet.io.images import natural_sorted
from lgrnet.errors import InputError
from lgrnet.io import open_source
from lgrnet.io.frame_folder import FrameFolderSource
from lgrnet.io.source import DEFAULT_FPS


def write_frames(folder, frames, names=None, ext="png"):
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i}.{ext}" for i in range(len(frames))]
    for n, f in zip(names, frames):
        Image.fromarray(f).save(folder / n)
    return folder


def test_real_folder_natural_order(shared_path):
    folder = shared_path("data/CVC-ClinicDB-612/Test/Frame/16")
    src = open_source(folder)
    assert isinstance(src, FrameFolderSource) and src.kind == "frames"
    files = [p.name for p in folder.iterdir()]
    assert src.names() == natural_sorted(files)
    nums = [int(n.split(".")[0]) for n in src.names()]
    assert nums == sorted(nums)  # by number, not as strings
    assert src.num_frames == len(files) and src.frame_size == (288, 384) and src.fps == DEFAULT_FPS
    first = next(iter(src))
    assert np.array_equal(first, np.asarray(Image.open(folder / src.names()[0]).convert("RGB")))
    assert np.array_equal(src.read(3), np.asarray(Image.open(folder / src.names()[3]).convert("RGB")))


def test_grey_frames_become_rgb_and_fps_override(tmp_path):
    frames = [np.full((10, 12), i * 20, np.uint8) for i in range(3)]
    src = open_source(write_frames(tmp_path / "g", frames, names=["f2.png", "f10.png", "f1.png"]), fps=12.5)
    assert src.names() == ["f1.png", "f2.png", "f10.png"] and src.fps == 12.5
    got = list(src)
    assert got[0].shape == (10, 12, 3) and (got[0] == 40).all() and (got[2] == 20).all()


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match=r"empty: the folder has no frames"):
        open_source(tmp_path / "empty")


def test_dataset_root_hints_at_subfolders(tmp_path):
    write_frames(tmp_path / "root" / "video1", [np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(InputError, match=r"root: the folder has no frames.*sub-folders \(video1\)"):
        open_source(tmp_path / "root")


def test_varying_size(tmp_path):
    folder = write_frames(tmp_path / "v", [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)])
    with pytest.raises(InputError, match=r"v: frames have different sizes: 0\.png is 8x8, 2\.png is 10x8"):
        open_source(folder)


def test_16bit_frames(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(folder / "0.png")
    with pytest.raises(InputError, match=r"0\.png: 16-bit frames are not supported"):
        open_source(folder)


def test_rgba_frames(tmp_path):
    folder = write_frames(tmp_path / "alpha", [np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(InputError, match=r"0\.png: RGBA \(alpha channel\) frames are not supported"):
        open_source(folder)


def test_unreadable_image(tmp_path):
    folder = write_frames(tmp_path / "broken", [np.zeros((8, 8, 3), np.uint8)])
    (folder / "1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"1\.png: cannot read image"):
        open_source(folder)


def test_image_file_where_folder_expected(tmp_path):
    write_frames(tmp_path / "f", [np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(InputError, match=r"0\.png: is a single image file; pass the folder"):
        open_source(tmp_path / "f" / "0.png")
    with pytest.raises(InputError, match=r"is a file, not a folder of frames"):
        open_source(str(tmp_path / "f" / "0.png") + "/")
