"""Progress bars (tqdm, on stderr) driven by ``progress(done, total)`` callbacks, the form in which
:class:`~lgrnet.inference.predictor.VideoPredictor` and ``predict_to_folder`` report progress."""
from __future__ import annotations

import sys
from typing import Callable, Optional

ProgressFn = Callable[..., None]


class ProgressBar:
    """A bar created on its first update (so a disabled or unused one prints nothing).

    >>> bar = ProgressBar("exam", unit="frame")
    >>> predict_to_folder(predictor, "exam.mp4", "out/", progress=bar.callback()); bar.close()

    ``total``: the bar's length; when None, the total of the first callback is used. Several
    videos can share one bar: ``bar.callback(offset=bar.n)`` for each.
    """

    def __init__(self, desc: str, total: Optional[int] = None, unit: str = "frame", enabled: bool = True,
                 leave: bool = True) -> None:
        self.desc, self.total, self.unit, self.enabled, self.leave = desc, total, unit, enabled, leave
        self._bar = None

    @property
    def n(self) -> int:
        """Units done so far."""
        return self._bar.n if self._bar is not None else 0

    def callback(self, offset: int = 0) -> ProgressFn:
        """A ``progress(done, total=None)`` function that moves the bar to ``offset + done``."""

        def update(done: int, total: Optional[int] = None, *_, **__) -> None:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total if self.total is not None else total, desc=self.desc, unit=self.unit,
                                 disable=not self.enabled, leave=self.leave, file=sys.stderr, dynamic_ncols=True)
            self._bar.update(offset + int(done) - self._bar.n)

        return update

    def close(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
