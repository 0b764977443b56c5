"""What a training run reports (rank 0 only): progress bar, JSONL log, TensorBoard, text log.

``<run>/log.jsonl``: one JSON object a line: ``{"event": "train", "step", "loss", "loss_bce",
"loss_dice", "loss_class", "lr", "lr_backbone", "grad_norm", "size", "sec_per_step", "elapsed"}``
every ``log_every`` steps and ``{"event": "val", "step", "val_dice", "val_frames", "elapsed"}``
after each validation. On resume, records after the checkpoint's step are dropped first, so the
file always tells the history of the run that continues.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, Dict, Optional

log = logging.getLogger("lgrnet.train")


class RunLogger:
    def __init__(self, out_dir: str, total_steps: int, start_step: int, enabled: bool = True,
                 tensorboard: bool = True, progress: Optional[bool] = None):
        self.enabled = enabled
        self.path = os.path.join(out_dir, "log.jsonl")
        self.bar = None
        self.tb = None
        self._file = None
        if not enabled:
            return
        self._truncate_after(start_step)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(out_dir, "tensorboard"), purge_step=start_step + 1)
            except Exception as exc:  # tensorboard is an optional extra
                log.warning("TensorBoard logging off (%s); pip install 'lgrnet[train]' to enable it", exc)
        show = sys.stderr.isatty() if progress is None else progress
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                            desc="train", file=sys.stderr)

    def _truncate_after(self, step: int) -> None:
        if not os.path.exists(self.path):
            return
        from ..files import atomic_write

        with open(self.path, encoding="utf-8") as f:
            lines = f.readlines()
        kept = []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if int(rec.get("step", 0)) <= step:
                kept.append(json.dumps(rec) + "\n")
        if len(kept) != len(lines):
            def write(tmp: str) -> None:
                with open(tmp, "w", encoding="utf-8") as f:
                    f.writelines(kept)

            atomic_write(self.path, write)

    def record(self, rec: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(rec) + "\n")
        step = rec["step"]
        if self.tb is not None:
            prefix = "val" if rec.get("event") == "val" else "train"
            for k, v in rec.items():
                if k in ("event", "step") or not isinstance(v, (int, float)):
                    continue
                name = k[4:] if k.startswith("val_") else k
                self.tb.add_scalar(f"{prefix}/{name}", v, step)
        if rec.get("event") == "val":
            self.message(f"step {step}: validation Dice {rec['val_dice']:.4f} on {int(rec['val_frames'])} frames")
        elif self.bar is None:
            log.info("step %d  loss %.4f  lr %.3g  %.2f s/step", step, rec["loss"], rec["lr"], rec["sec_per_step"])

    def advance(self, step: int, loss: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
            self.bar.update(step - self.bar.n)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            log.info(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self._file is not None:
            self._file.close()
