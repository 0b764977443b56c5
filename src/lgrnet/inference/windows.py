"""Window planning: which frames each forward pass sees and which of its frames it reports.

A video of ``num_frames`` frames runs as windows of ``window`` frames, stride ``window - overlap``.
The last window is shifted back to end at the last frame, so no window is short (a video of at
most ``window`` frames is ONE window: the whole clip). In an overlap each frame is reported by ONE
window (no blending): by the earlier window up to the middle of the overlap, by the later one
from there on. Why pick rather than blend, and why the middle: see :mod:`lgrnet.inference.predictor`.

:func:`plan_windows` gives the whole plan when the number of frames is known; a stream that does
not know it in advance asks a :class:`WindowPlanner` for one window at a time, telling it the
number of frames once the stream has ended. Both are the same rule (``plan_windows`` is a loop
over ``WindowPlanner``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from ..errors import UserError


@dataclass(frozen=True)
class Window:
    """Frames ``[start, end)`` go through the model together; frames ``[emit_from, emit_to)`` of them
    are reported from this window."""

    start: int
    end: int
    emit_from: int
    emit_to: int

    def __len__(self) -> int:
        return self.end - self.start


def check_window(window: Optional[int], overlap: Optional[int]) -> None:
    """Raise :class:`~lgrnet.errors.UserError` for a window under 2 frames or an overlap that is
    negative or not less than the window."""
    if window is not None and window < 2:
        raise UserError(f"window {window}: must be at least 2 frames")
    if overlap is not None and (overlap < 0 or (window is not None and overlap >= window)):
        raise UserError(f"overlap {overlap}: must be at least 0 and less than the window ({window})")


def default_overlap(window: int, encoder_layers: int) -> int:
    """``max(2 * encoder_layers, window // 8)``, at most ``(window - 1) // 2``: every reported frame of
    a later window then has at least ``overlap // 2`` frames of context before it, which keeps the
    frames touched by a window's cyclic first-frame link (one frame per encoder layer) unreported."""
    return max(0, min(max(2 * encoder_layers, window // 8), (window - 1) // 2))


class WindowPlanner:
    """The windows of a video one at a time, for a stream that learns the number of frames only
    when it ends.

    >>> planner = WindowPlanner(window=5, overlap=2)
    >>> planner.next_end          # read frames up to this index (exclusive), then:
    5
    >>> planner.next(num_frames=None)   # None: the stream has frames at or beyond next_end
    Window(start=0, end=5, emit_from=0, emit_to=4)
    """

    def __init__(self, window: int, overlap: int):
        check_window(window, overlap)
        self.window = window
        self.overlap = overlap
        self.stride = window - overlap
        self.start = 0
        self.emit_from = 0
        self.done = False

    @property
    def next_end(self) -> int:
        """The end of the next regular window: frames before it must be read before :meth:`next`."""
        return self.start + self.window

    def next(self, num_frames: Optional[int]) -> Window:
        """The next window. ``num_frames``: the video's length once the stream has ended before
        :attr:`next_end` or exactly at it (then this window is the last one), else None."""
        if self.done:
            raise StopIteration("the last window was already planned")
        end = self.start + self.window
        if num_frames is not None and num_frames <= end:
            if num_frames < 1:
                raise ValueError("a video needs at least one frame")
            self.done = True
            return Window(max(0, num_frames - self.window), num_frames, self.emit_from, num_frames)
        emit_to = (self.start + self.stride + end) // 2  # the middle of the overlap with the next window
        win = Window(self.start, end, self.emit_from, emit_to)
        self.emit_from = emit_to
        self.start += self.stride
        return win


def plan_windows(num_frames: int, window: int, overlap: int) -> List[Window]:
    """All windows of a video of ``num_frames`` frames (see the module documentation)."""
    planner = WindowPlanner(window, overlap)
    windows = []
    while not planner.done:
        windows.append(planner.next(num_frames))
    return windows
