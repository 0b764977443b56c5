"""Convert an authors' LGRNet checkpoint (.pth) into our .safetensors format.

The authors' file is read with ``torch.load(weights_only=True)`` (no code in it runs; their
trainer's ``ckpt.pth.tar`` also holds optimizer and RNG state, which is read as data and ignored);
the weights (under 'model', or a bare state dict) are mapped to our key layout and checked
strictly: every key of the preset's model present, no key left over (the loss buffers
``decoder.loss_module.*`` are dropped), every shape equal. The output holds the weights and the
preset's config. The SHA-256 of the input and of the output are printed for the record
(docs/model.md lists the authors' released files).

example:
  lgrnet convert ckpt.pth.tar lgrnet_sunseg_pvt.safetensors --preset sunseg_pvt
"""
from __future__ import annotations

import os

from ..errors import UserError
from ..files import sha256_file
from .arguments import check_output_file


def add_arguments(p) -> None:
    p.add_argument("input", help="authors' checkpoint (.pth): a state dict, bare or under 'model'")
    p.add_argument("output", help="where to write our checkpoint (.safetensors)")
    p.add_argument("--preset", required=True, help="the config the checkpoint was trained with "
                   "(sunseg_pvt, sunseg_res2net, cvc_pvt, fibroid_pvt)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args) -> int:
    from ..models.lgrnet import LGRNet

    check_output_file(args.output, ".safetensors", args.force)
    try:
        model = LGRNet.from_pretrained(args.input, preset=args.preset)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    digest = sha256_file(args.input)
    model.save_pretrained(args.output, metadata={"converted_from": os.path.basename(args.input),
                                                 "converted_from_sha256": digest})
    n = sum(p.numel() for p in model.parameters())
    keys = len(model.state_dict())
    print(f"{args.input}: sha256 {digest}")
    print(f"checked: {keys} keys of the {args.preset} model present with their shapes, none left over")
    print(f"wrote {args.output} ({args.preset}, {n / 1e6:.2f} M parameters): sha256 {sha256_file(args.output)}")
    return 0
