"""Pull-predict-push round trip through a real Orthanc (docs/pacs.md): a 48-frame RGB ultrasound cine
uploaded to a local Orthanc with its DICOMweb plugin, then `lgrnet predict dicomweb:URL --study UID
--store` with the shipped model: the wall time of the whole command (model load included) and of
its parts (WADO-RS fetch, prediction with segmentation.dcm, STOW-RS store).

    python -m benchmarks.pacs_round_trip [--frames 48] [--height 480] [--width 640] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--weights", default="demo", help="default: the shipped model")
    args = ap.parse_args()

    import numpy as np

    import lgrnet.pacs.predict as pacs_predict
    import lgrnet.runs.predict_folder as predict_folder
    from lgrnet.cli import main as lgrnet
    from tests.helpers.pacs_server import Orthanc, make_cine

    clock = {}

    def timed(module, name):
        real = getattr(module, name)

        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                clock[name] = clock.get(name, 0.0) + time.perf_counter() - t

        setattr(module, name, wrapper)

    timed(pacs_predict, "fetch_cine")
    timed(predict_folder, "predict_to_folder")
    timed(pacs_predict, "store_result")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = Orthanc(tmp / "orthanc")
        try:
            totals = []
            for r in range(args.repeat):
                cine = make_cine(tmp / f"cine{r}.dcm", frames=args.frames, size=args.height, seed=r)
                if args.width != args.height:  # make_cine is square: rewrite as H x W
                    import pydicom

                    ds = pydicom.dcmread(cine["path"])
                    rng = np.random.default_rng(r)
                    ds.Columns = args.width
                    ds.PixelData = rng.integers(0, 255, (args.frames, args.height, args.width, 3), np.uint8).tobytes()
                    ds.save_as(cine["path"])
                server.upload(cine["path"])
                clock.clear()
                t = time.perf_counter()
                status = lgrnet(["predict", f"dicomweb:{server.url}", "--study", cine["study"], "--store", "--weights",
                                 args.weights, "--out", str(tmp / f"out{r}"), "--no-progress"])
                total = time.perf_counter() - t
                assert status == 0
                totals.append(total)
                parts = ", ".join(f"{k} {v:.2f} s" for k, v in clock.items())
                print(f"run {r}: {args.frames} frames {args.width}x{args.height} RGB: round trip {total:.2f} s ({parts})")
            print(f"median round trip {sorted(totals)[len(totals) // 2]:.2f} s over {len(totals)} runs")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
