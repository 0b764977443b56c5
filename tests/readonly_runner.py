"""Run ``lgrnet`` commands in one process (``python readonly_runner.py CASES.json``) with the heavy
work replaced by a tripwire, and print one JSON line per command: its exit status and stderr.

tests/test_readonly_outputs.py runs this as a user for whom file permissions hold (root under
``setpriv`` without CAP_DAC_OVERRIDE, or a normal user), so a read-only output folder is really
read-only. The tripwires (loading a model, training, serving the page) fail the command with a
traceback if a command reaches them before checking its output.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback


def tripwire(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{what} ran before the output was checked")

    return refuse


def install_tripwires() -> None:
    from lgrnet.inference import predictor
    from lgrnet.models import lgrnet
    from lgrnet.training import trainer
    from lgrnet.viewer import server

    predictor.VideoPredictor.from_pretrained = classmethod(tripwire("loading the model"))
    lgrnet.LGRNet.from_pretrained = classmethod(tripwire("loading the model"))
    trainer.train = tripwire("training")
    server.make_server = tripwire("serving the page")


def main(path: str) -> None:
    from lgrnet.cli import main as lgrnet_main

    install_tripwires()
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    for argv in cases:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = lgrnet_main(argv)
            except SystemExit as exc:
                code = exc.code
            except BaseException:
                traceback.print_exc()
                code = "exception"
        print(json.dumps({"argv": argv, "code": code, "stderr": err.getvalue()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
