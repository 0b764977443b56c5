"""Convert an authors' LGRNet checkpoint (.pth) into our .safetensors format.

The authors' file is read with ``torch.load(weights_only=True)`` (no code in it runs); its keys
are mapped to ours, checked strictly (any missing or unexpected key is an error) and written with
the preset's config stored inside.

example:
  lgrnet convert sunseg_pvt.pth sunseg_pvt.safetensors --preset sunseg_pvt
"""
from __future__ import annotations

import os

from ..errors import UserError


def add_arguments(p) -> None:
    p.add_argument("input", help="authors' checkpoint (.pth): a state dict, bare or under 'model'")
    p.add_argument("output", help="where to write our checkpoint (.safetensors)")
    p.add_argument("--preset", required=True, help="the config the checkpoint was trained with "
                   "(sunseg_pvt, sunseg_res2net, cvc_pvt, fibroid_pvt)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args) -> int:
    from ..models.lgrnet import LGRNet

    if not args.output.endswith(".safetensors"):
        raise UserError(f"{args.output}: output must end with .safetensors")
    if os.path.exists(args.output) and not args.force:
        raise UserError(f"{args.output}: exists; pass --force to overwrite it")
    try:
        model = LGRNet.from_pretrained(args.input, preset=args.preset)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    model.save_pretrained(args.output, metadata={"converted_from": os.path.basename(args.input)})
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output} ({args.preset}, {n / 1e6:.2f} M parameters)")
    return 0
