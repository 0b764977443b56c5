"""The model's input size: the rule every size must follow, and the size used when nothing says.

Frames are resized to the input size (h, w) before the model sees them. Both sides must be positive
multiples of 32, the backbone's total stride. A model that records the size it was trained at
(:mod:`lgrnet.models.weight_metadata`) runs at that size unless the user says otherwise; weights that
record none (the authors' ``.pth`` files) run at the published evaluation's 352.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

from ..errors import UserError

DEFAULT_INPUT_SIZE = 352  # the published evaluation's; a model that records its own size runs at that
STRIDE = 32  # the backbone's total stride


def check_input_size(size: Union[int, Sequence[int]], what: str = "model input size") -> Tuple[int, int]:
    """An input size (int or (h, w)) -> (h, w); :class:`~lgrnet.errors.UserError` unless both are
    positive multiples of 32 (the backbone's stride). The one place this rule is checked."""
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2 or hw[0] <= 0 or hw[1] <= 0 or hw[0] % STRIDE or hw[1] % STRIDE:
        shown = size if isinstance(size, int) else "x".join(str(s) for s in size)
        raise UserError(f"{what} {shown}: must be a positive multiple of {STRIDE} (e.g. {DEFAULT_INPUT_SIZE})")
    return hw
