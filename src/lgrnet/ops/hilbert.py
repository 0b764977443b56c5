"""Scan orders over the T x Nq grid of frame queries.

LGRNet scans the frame queries of a clip, laid out as a grid with one row per frame and one
column per query, along a generalized Hilbert curve ("gilbert", J. Cerveny, 2018) that fills any
rectangle. The published model always starts the curve along the query axis (the width), even
when there are more frames than queries. Index of a grid cell = frame * num_queries + query.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterator, List, Tuple

import torch


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def _gilbert(x: int, y: int, ax: int, ay: int, bx: int, by: int) -> Iterator[Tuple[int, int]]:
    """Fill the rectangle spanned from (x, y) by the major axis (ax, ay) and the minor axis
    (bx, by), yielding (x, y) cells; recursive generalized Hilbert construction."""
    width = abs(ax + ay)
    height = abs(bx + by)
    dax, day = _sign(ax), _sign(ay)  # unit step along the major axis
    dbx, dby = _sign(bx), _sign(by)  # unit step along the minor axis

    if height == 1:  # a single row
        for _ in range(width):
            yield x, y
            x, y = x + dax, y + day
        return
    if width == 1:  # a single column
        for _ in range(height):
            yield x, y
            x, y = x + dbx, y + dby
        return

    ax2, ay2 = ax // 2, ay // 2
    bx2, by2 = bx // 2, by // 2
    width2 = abs(ax2 + ay2)
    height2 = abs(bx2 + by2)

    if 2 * width > 3 * height:
        # Long rectangle: split it in two halves along the major axis (prefer even halves).
        if width2 % 2 and width > 2:
            ax2, ay2 = ax2 + dax, ay2 + day
        yield from _gilbert(x, y, ax2, ay2, bx, by)
        yield from _gilbert(x + ax2, y + ay2, ax - ax2, ay - ay2, bx, by)
    else:
        # Standard case: up along the minor axis, across, and back down.
        if height2 % 2 and height > 2:
            bx2, by2 = bx2 + dbx, by2 + dby
        yield from _gilbert(x, y, bx2, by2, ax2, ay2)
        yield from _gilbert(x + bx2, y + by2, ax, ay, bx - bx2, by - by2)
        yield from _gilbert(x + (ax - dax) + (bx2 - dbx), y + (ay - day) + (by2 - dby),
                            -bx2, -by2, -(ax - ax2), -(ay - ay2))


def gilbert2d(width: int, height: int, width_major: bool = True) -> List[Tuple[int, int]]:
    """All (x, y) cells of a ``width`` x ``height`` rectangle in generalized Hilbert order.

    ``width_major=True`` always starts along the width (the published "width bigger" variant);
    ``False`` starts along the longer side (the original gilbert2d).
    """
    if width < 1 or height < 1:
        raise ValueError(f"grid must be at least 1 x 1, got {width} x {height}")
    if width_major or width >= height:
        return list(_gilbert(0, 0, width, 0, 0, height))
    return list(_gilbert(0, 0, 0, height, width, 0))


@lru_cache(maxsize=256)
def _hilbert_order_list(num_frames: int, num_queries: int) -> Tuple[int, ...]:
    return tuple(y * num_queries + x for x, y in gilbert2d(num_queries, num_frames, width_major=True))


def hilbert_order(num_frames: int, num_queries: int) -> torch.Tensor:
    """The published scan order over a ``num_frames`` x ``num_queries`` grid.

    Returns a LongTensor of length T * Nq: position i of the scan visits grid cell
    ``order[i] = frame * num_queries + query``.
    """
    return torch.tensor(_hilbert_order_list(int(num_frames), int(num_queries)), dtype=torch.long)


def zigzag_order(num_frames: int, num_queries: int) -> torch.Tensor:
    """Row-major ("zigzag" in the paper's ablation) order: frame by frame, query by query."""
    return torch.arange(int(num_frames) * int(num_queries), dtype=torch.long)


def scan_order(kind: str, num_frames: int, num_queries: int) -> torch.Tensor:
    if kind == "hilbert":
        return hilbert_order(num_frames, num_queries)
    if kind == "zigzag":
        return zigzag_order(num_frames, num_queries)
    raise ValueError(f"unknown scan order {kind!r}; use 'hilbert' or 'zigzag'")
