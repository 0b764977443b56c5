"""Window planning (lgrnet.inference.windows): explicit plans, the documented properties, and the
stream planner giving the same windows as the pure function."""
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgrnet.inference.windows import Window, WindowPlanner, check_window, default_overlap, plan_windows
from lgrnet.errors import UserError


@pytest.mark.parametrize("T,N,K,expected", [
    (3, 5, 2, [Window(0, 3, 0, 3)]),                        # shorter than a window: one whole clip
    (5, 5, 2, [Window(0, 5, 0, 5)]),                        # exactly one window
    (6, 5, 2, [Window(0, 5, 0, 4), Window(1, 6, 4, 6)]),    # last window shifted back to end at T
    (11, 5, 2, [Window(0, 5, 0, 4), Window(3, 8, 4, 7), Window(6, 11, 7, 11)]),
    (10, 5, 2, [Window(0, 5, 0, 4), Window(3, 8, 4, 7), Window(5, 10, 7, 10)]),
    (9, 4, 0, [Window(0, 4, 0, 4), Window(4, 8, 4, 8), Window(5, 9, 8, 9)]),
    (21, 8, 2, [Window(0, 8, 0, 7), Window(6, 14, 7, 13), Window(12, 20, 13, 19), Window(13, 21, 19, 21)]),
])
def test_explicit_plans(T, N, K, expected):
    assert plan_windows(T, N, K) == expected


@settings(max_examples=300, deadline=None)
@given(T=st.integers(1, 400), N=st.integers(2, 64), data=st.data())
def test_plan_properties(T, N, data):
    K = data.draw(st.integers(0, N - 1))
    wins = plan_windows(T, N, K)
    # every frame reported exactly once, in order, by a window that contains it
    reported = [i for w in wins for i in range(w.emit_from, w.emit_to)]
    assert reported == list(range(T))
    assert all(w.start <= w.emit_from <= w.emit_to <= w.end for w in wins)
    # windows are `window` long (a video shorter than that is one clip), the last one ends at T
    assert all(len(w) == min(N, T) for w in wins) and wins[-1].end == T
    # regular windows start at multiples of the stride
    assert [w.start for w in wins[:-1]] == [k * (N - K) for k in range(len(wins) - 1)]
    # the hand-over between regular windows is the middle of their overlap
    for a, b in itertools.pairwise(wins[:-1]):
        assert a.emit_to == (b.start + a.end) // 2
    # so a frame of a later window has at least overlap // 2 frames of context before it
    assert all(w.emit_from - w.start >= K // 2 for w in wins[1:])


@settings(max_examples=100, deadline=None)
@given(T=st.integers(1, 200), N=st.integers(2, 32), data=st.data())
def test_stream_planner_is_the_same_rule(T, N, data):
    """A stream learns T only when it ends: read up to next_end, then ask for the next window."""
    K = data.draw(st.integers(0, N - 1))
    planner, wins, read = WindowPlanner(N, K), [], 0
    while not planner.done:
        read = min(T, planner.next_end + 1)  # a window's frames plus one read-ahead frame
        wins.append(planner.next(T if read <= planner.next_end else None))
    assert wins == plan_windows(T, N, K)


def test_default_overlap_and_checks():
    assert default_overlap(6, 3) == 2          # capped at (window - 1) // 2
    assert default_overlap(64, 3) == 8         # window // 8
    assert default_overlap(20, 3) == 6         # 2 x encoder layers
    with pytest.raises(UserError, match="at least 2"):
        check_window(1, None)
    with pytest.raises(UserError, match="less than the window"):
        check_window(4, 4)
