"""lgrnet.data.boxes: the box file format, its checks, box <-> mask."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lgrnet.data.boxes import BoxError, box_file_path, box_to_mask, mask_to_box, read_box_file, write_box_file
from lgrnet.errors import InputError


def test_write_read_round_trip_is_exact(tmp_path):
    boxes = np.array([[0, 0, 10, 5], [3.25, 7.1, 20.333, 0.5], [630.5, 470.0, 9.5, 10.0]], np.float32)
    path = box_file_path(tmp_path, "v1", "12")
    write_box_file(path, boxes, (480, 640))
    assert path == tmp_path / "Box" / "v1" / "12.json"
    back = read_box_file(path, (480, 640))
    assert back.dtype == np.float32 and back.shape == (3, 4)
    np.testing.assert_array_equal(back, boxes)
    data = json.loads(path.read_text())
    assert data["frame_size"] == [480, 640]
    assert data["boxes"][0] == [0, 0, 10, 5]  # integers stay integers
    assert data["boxes"][1][1] == 7.1  # the shortest decimal of the float32, not 7.099999904632568


def test_empty_list_is_an_annotated_frame_without_lesion(tmp_path):
    path = tmp_path / "b.json"
    write_box_file(path, [], (4, 6))
    assert read_box_file(path).shape == (0, 4)
    assert json.loads(path.read_text()) == {"boxes": [], "frame_size": [4, 6]}


@pytest.mark.parametrize("boxes, message", [
    ([[-1, 0, 5, 5]], "lies outside the 640x480 frame"),
    ([[630, 0, 11, 5]], "lies outside the 640x480 frame"),
    ([[0, 470, 5, 10.5]], "lies outside the 640x480 frame"),
    ([[0, 0, -5, 5]], "non-positive size"),
    ([[0, 0, 5, 0]], "non-positive size"),
    ([[0, 0, 5]], "not [x, y, w, h]"),
    ([[0, 0, "5", 5]], "not [x, y, w, h]"),
    ([[0, 0, float("nan"), 5]], "not finite"),
    ("nope", "must be a list"),
])
def test_bad_boxes_one_line_and_nothing_written(tmp_path, boxes, message):
    path = tmp_path / "Box" / "v" / "1.json"
    with pytest.raises(BoxError) as err:
        write_box_file(path, boxes, (480, 640))
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text
    assert isinstance(err.value, InputError)
    assert not path.exists()
    assert not os.listdir(path.parent) if path.parent.exists() else True


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"boxes": []}', "malformed box file"),
    ('[1, 2]', "malformed box file"),
    ('{"boxes": [], "frame_size": [0, 5]}', "frame_size must be [H, W]"),
    ('{"boxes": [], "frame_size": [4.5, 5]}', "frame_size must be [H, W]"),
    ('{"boxes": [[0, 0, 6, 1]], "frame_size": [4, 5]}', "lies outside the 5x4 frame"),
    ('{"boxes": [[1, 1, 1, -1]], "frame_size": [4, 5]}', "non-positive size"),
])
def test_read_malformed_files(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(BoxError) as err:
        read_box_file(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_read_checks_frame_size_and_missing_file(tmp_path):
    path = tmp_path / "x.json"
    write_box_file(path, [[0, 0, 2, 2]], (4, 5))
    with pytest.raises(BoxError, match=r"boxes are for a 5x4 frame, but the frame is 6x4"):
        read_box_file(path, (4, 6))
    with pytest.raises(BoxError, match="no such box file"):
        read_box_file(tmp_path / "missing.json")


def _naive_box_mask(boxes, h, w):
    mask = np.zeros((h, w), bool)
    for r in range(h):
        for c in range(w):
            for x, y, bw, bh in boxes:
                if x <= c + 0.5 < x + bw and y <= r + 0.5 < y + bh:
                    mask[r, c] = True
    return mask


def test_box_to_mask_matches_pixel_centre_rule():
    rng = np.random.default_rng(0)
    h, w = 13, 17
    for _ in range(50):
        x, y = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
        boxes = [[x, y, rng.uniform(1, w - x), rng.uniform(1, h - y)], [2, 3, 4, 5]]
        np.testing.assert_array_equal(box_to_mask(np.array(boxes), (h, w)), _naive_box_mask(boxes, h, w))
    m = box_to_mask(np.array([[2, 3, 4, 5]]), (10, 10))
    assert m.sum() == 20 and m[3:8, 2:6].all()
    thin = box_to_mask(np.array([[3.2, 1.0, 0.3, 2.0]]), (5, 6))  # narrower than a pixel
    assert thin.sum() == 2 and thin[1:3, 3].all()
    assert not box_to_mask(np.zeros((0, 4)), (3, 3)).any()


def test_mask_to_box_per_component_and_whole():
    mask = np.zeros((10, 12), bool)
    mask[1:4, 2:5] = True  # component A
    mask[4, 5] = True  # touches A diagonally: same 8-connected component
    mask[6:9, 8:11] = True  # component B
    boxes = mask_to_box(mask)
    np.testing.assert_array_equal(boxes, [[2, 1, 4, 4], [8, 6, 3, 3]])
    np.testing.assert_array_equal(mask_to_box(mask, per_component=False), [[2, 1, 9, 8]])
    assert mask_to_box(np.zeros((3, 3), bool)).shape == (0, 4)
    # The union of the component boxes has the mask's axis projections.
    filled = box_to_mask(boxes, mask.shape)
    np.testing.assert_array_equal(filled.any(0), mask.any(0))
    np.testing.assert_array_equal(filled.any(1), mask.any(1))


def test_mask_to_box_projection_property_random():
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = rng.random((20, 24)) > 0.93
        boxes = mask_to_box(mask)
        filled = box_to_mask(boxes, mask.shape)
        assert (filled | ~mask).all()  # every mask pixel is inside a box
        np.testing.assert_array_equal(filled.any(0), mask.any(0))
        np.testing.assert_array_equal(filled.any(1), mask.any(1))
