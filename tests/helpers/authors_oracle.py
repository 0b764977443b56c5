"""An independent, plain transcription of the published LGRNet forward pass (eval mode), for tests.

It follows the authors' code structure on purpose -- their tensor layouts ((L, N, C) sequences,
``torch.nn.functional.multi_head_attention_forward``, ``torch.roll``, index-by-step scan loop,
per-level ``grid_sample``) and reads weights straight from a state dict in THEIR key layout --
so that it shares as little as possible with ``lgrnet.models``. Only the backbone is shared (timm,
checked bit-exact against the fixtures' recorded backbone features).

Used by tests/test_oracle.py to check the model on clip lengths and sizes the fixtures do not cover.
"""
from __future__ import annotations

import math
from typing import Dict, List

import torch
import torch.nn.functional as F

P = "fusion_encoder.transformer.encoder.layers.{}."


def sine_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """(dim, h, w), the published PositionEmbeddingSine2D (normalised, 2*pi)."""
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    not_mask = ~mask
    y = not_mask.cumsum(1, dtype=torch.float32)
    x = not_mask.cumsum(2, dtype=torch.float32)
    y = y / (y[:, -1:, :] + 1e-6) * 2 * math.pi
    x = x / (x[:, :, -1:] + 1e-6) * 2 * math.pi
    n = dim // 2
    dim_t = torch.arange(n, dtype=torch.float32)
    dim_t = 10000 ** (2 * (dim_t // 2) / n)
    px = x[:, :, :, None] / dim_t
    py = y[:, :, :, None] / dim_t
    px = torch.stack((px[:, :, :, 0::2].sin(), px[:, :, :, 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[:, :, :, 0::2].sin(), py[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).permute(0, 3, 1, 2)[0]


def sine_1d(t: int, dim: int) -> torch.Tensor:
    """(dim, t)."""
    x = torch.ones(1, t).cumsum(1)
    x = x / (x[:, -1:] + 1e-6) * 2 * math.pi
    dim_t = torch.arange(dim, dtype=torch.float32)
    dim_t = 10000 ** (2 * (dim_t // 2) / dim)
    px = x[:, :, None] / dim_t
    return torch.stack((px[:, :, 0::2].sin(), px[:, :, 1::2].cos()), dim=3).flatten(2)[0].t()


def sine_3d(t: int, h: int, w: int, dim: int) -> torch.Tensor:
    """(t, dim, h, w)."""
    n = dim // 2
    ones = torch.ones(1, t, h, w)
    z, y, x = ones.cumsum(1), ones.cumsum(2), ones.cumsum(3)
    z = z / (z[:, -1:] + 1e-6) * 2 * math.pi
    y = y / (y[:, :, -1:] + 1e-6) * 2 * math.pi
    x = x / (x[:, :, :, -1:] + 1e-6) * 2 * math.pi
    dim_t = 10000 ** (2 * (torch.arange(n, dtype=torch.float32) // 2) / n)
    dim_tz = 10000 ** (2 * (torch.arange(2 * n, dtype=torch.float32) // 2) / (2 * n))
    px, py, pz = x[..., None] / dim_t, y[..., None] / dim_t, z[..., None] / dim_tz

    def f(p):
        return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=5).flatten(4)

    return (torch.cat((f(py), f(px)), dim=4) + f(pz)).permute(0, 1, 4, 2, 3)[0]


def mha(sd, prefix, q, k, v, nheads, attn_mask=None):
    """(L, N, C) sequences through torch's own multi_head_attention_forward."""
    return F.multi_head_attention_forward(
        q, k, v, q.shape[-1], nheads, sd[prefix + "in_proj_weight"], sd[prefix + "in_proj_bias"],
        None, None, False, 0.0, sd[prefix + "out_proj.weight"], sd[prefix + "out_proj.bias"],
        training=False, attn_mask=attn_mask, need_weights=True)[0]


def layer_norm(sd, prefix, x):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + "weight"], sd[prefix + "bias"])


def linear(sd, prefix, x, bias=True):
    return F.linear(x, sd[prefix + "weight"], sd.get(prefix + "bias") if bias else None)


def cross_layer(sd, prefix, tgt, memory, pos, query_pos, mask=None, nheads=8):
    t2 = mha(sd, prefix + "multihead_attn.", tgt + query_pos, memory + pos, memory, nheads, mask)
    return layer_norm(sd, prefix + "norm.", tgt + t2)


def ffn_layer(sd, prefix, x):
    return layer_norm(sd, prefix + "norm.", x + linear(sd, prefix + "linear2.", F.relu(linear(sd, prefix + "linear1.", x))))


def natten_start(i: int, length: int, k: int, d: int) -> int:
    """Window start written as 'a k-window clamped inside the query's own phase sub-grid'."""
    phase = i % d
    sub_len = (length - phase + d - 1) // d
    start = min(max(i // d - k // 2, 0), sub_len - k)
    return phase + d * start


def neighborhood_attn(sd, prefix, xq, xk, nheads, k, d):
    """xq, xk: (N, H, W, C); published NeighborhoodAttention2D_qk without rpb."""
    N, H, W, C = xq.shape
    win = k * d
    ph, pw = max(0, win - H), max(0, win - W)
    if ph or pw:
        xq = F.pad(xq, (0, 0, 0, pw, 0, ph))
        xk = F.pad(xk, (0, 0, 0, pw, 0, ph))
    Hp, Wp = xq.shape[1:3]
    hd = C // nheads
    q = F.linear(xq, sd[prefix + "q_linear.weight"]).reshape(N, Hp, Wp, nheads, hd).permute(0, 3, 1, 2, 4) * hd ** -0.5
    kv = F.linear(xk, sd[prefix + "kv_linear.weight"]).reshape(N, Hp, Wp, 2, nheads, hd).permute(3, 0, 4, 1, 2, 5)
    key, val = kv[0], kv[1]
    rows = torch.tensor([[natten_start(i, Hp, k, d) + d * j for j in range(k)] for i in range(Hp)])
    cols = torch.tensor([[natten_start(i, Wp, k, d) + d * j for j in range(k)] for i in range(Wp)])
    kk = key[:, :, rows][:, :, :, :, cols]  # (N, h, Hp, k, Wp, k, hd)
    vv = val[:, :, rows][:, :, :, :, cols]
    logits = torch.einsum("nhxyc,nhxiyjc->nhxyij", q, kk).reshape(N, nheads, Hp, Wp, k * k).softmax(-1)
    out = torch.einsum("nhxyij,nhxiyjc->nhxyc", logits.reshape(N, nheads, Hp, Wp, k, k), vv)
    out = out.permute(0, 2, 3, 1, 4).reshape(N, Hp, Wp, C)[:, :H, :W]
    return linear(sd, prefix + "proj.", out)


def msda(sd, prefix, query, value_in, shapes, nheads=8, nlevels=3, npoints=4):
    N, Lq, C = query.shape
    value = linear(sd, prefix + "value_proj.", value_in).view(N, -1, nheads, C // nheads)
    off = linear(sd, prefix + "sampling_offsets.", query).view(N, Lq, nheads, nlevels, npoints, 2)
    aw = linear(sd, prefix + "attention_weights.", query).view(N, Lq, nheads, nlevels * npoints).softmax(-1)
    aw = aw.view(N, Lq, nheads, nlevels, npoints)
    refs = []
    for h, w in shapes:
        ry, rx = torch.meshgrid(torch.linspace(0.5, h - 0.5, h), torch.linspace(0.5, w - 0.5, w), indexing="ij")
        refs.append(torch.stack((rx.reshape(-1) / w, ry.reshape(-1) / h), -1))
    ref = torch.cat(refs)[None, :, None].expand(N, -1, nlevels, 2)
    norm = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32)
    loc = ref[:, :, None, :, None, :] + off / norm[None, None, None, :, None, :]
    values = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * loc - 1
    D = C // nheads
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        v = values[lvl].flatten(2).transpose(1, 2).reshape(N * nheads, D, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    a = aw.transpose(1, 2).reshape(N * nheads, 1, Lq, nlevels * npoints)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * a).sum(-1).view(N, nheads * D, Lq).transpose(1, 2)
    return linear(sd, prefix + "output_proj.", out)


def selective_scan_step_loop(u, delta, A, B, C, D, delta_bias):
    """mamba's selective_scan_ref: index the sequence step by step."""
    delta = F.softplus(delta + delta_bias[..., None])
    dim = A.shape[0]
    B = B.repeat_interleave(dim // B.shape[1], dim=1)
    C = C.repeat_interleave(dim // C.shape[1], dim=1)
    deltaA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    deltaB_u = torch.einsum("bdl,bdnl,bdl->bdln", delta, B, u)
    x = A.new_zeros(u.shape[0], dim, A.shape[1])
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        ys.append(torch.einsum("bdn,bdn->bd", x, C[:, :, :, i]))
    return torch.stack(ys, dim=2) + u * D[:, None]


def hiss_mixer(sd, prefix, x, order, d_state=16):
    """x: (B, T, Nq, C)."""
    Bsz, H, W, C = x.shape
    xz = F.linear(x, sd[prefix + "in_proj.weight"])
    x, z = xz.chunk(2, dim=-1)
    di = x.shape[-1]
    x = F.silu(F.conv2d(x.permute(0, 3, 1, 2), sd[prefix + "conv2d.weight"], sd[prefix + "conv2d.bias"], padding=1, groups=di))
    L = H * W
    xh = x.flatten(2).index_select(-1, order)
    xs = torch.stack([xh, torch.flip(xh, dims=[-1])], dim=1)
    xpw, dtw = sd[prefix + "x_proj_weight"], sd[prefix + "dt_projs_weight"]
    rank = dtw.shape[-1]
    x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, xpw)
    dts, Bs, Cs = torch.split(x_dbl, [rank, d_state, d_state], dim=2)
    dts = torch.einsum("bkrl,kdr->bkdl", dts, dtw)
    y = selective_scan_step_loop(xs.reshape(Bsz, -1, L), dts.reshape(Bsz, -1, L),
                                 -torch.exp(sd[prefix + "A_logs"]), Bs, Cs, sd[prefix + "Ds"],
                                 sd[prefix + "dt_projs_bias"].reshape(-1)).view(Bsz, 2, -1, L)
    out = torch.zeros_like(y[:, 0])
    idx = order[None, None].expand_as(out)
    out.scatter_add_(-1, idx, y[:, 0])
    out.scatter_add_(-1, idx, torch.flip(y[:, 1], dims=[-1]))
    y = out.view(Bsz, di, H, W).permute(0, 2, 3, 1)
    y = layer_norm(sd, prefix + "out_norm.", y) * F.silu(z)
    return F.linear(y, sd[prefix + "out_proj.weight"])


def encoder_and_decoder(sd: Dict[str, torch.Tensor], feats: Dict[str, torch.Tensor], T: int, order: torch.Tensor,
                        kernel: int = 5, dilation: int = 1, attn_mask: bool = False, nq_frame: int = 20,
                        scan_layers: int = 3, enc_layers: int = 3, dec_layers: int = 3) -> List[torch.Tensor]:
    """feats: {res2..res5: (b, C, T, h, w)} backbone features. Returns the decoder heads' mask logits,
    each (b, T, Nq, H, W)."""
    b = feats["res2"].shape[0]
    d = sd["fusion_encoder.transformer.level_embed"].shape[1]
    proj = {}
    for name in ("res3", "res4", "res5"):
        pfx = f"fusion_encoder.video_projs.multiscale_projs.{name}."
        y = F.conv3d(feats[name], sd[pfx + "weight"])
        proj[name] = F.group_norm(y, 32, sd[pfx + "norm.weight"], sd[pfx + "norm.bias"])
    srcs, poses, shapes = [], [], []
    for lvl, name in enumerate(("res5", "res4", "res3")):
        x = proj[name].permute(0, 2, 1, 3, 4).flatten(0, 1)  # bt c h w
        h, w = x.shape[-2:]
        shapes.append((h, w))
        srcs.append(x.flatten(2).transpose(1, 2))
        pe = sine_2d(h, w, d).flatten(1).t()[None].expand(x.shape[0], -1, -1)
        poses.append(pe + sd["fusion_encoder.transformer.level_embed"][lvl].view(1, 1, -1))
    src = torch.cat(srcs, 1)
    pos = torch.cat(poses, 1)
    starts = [0, shapes[0][0] * shapes[0][1], shapes[0][0] * shapes[0][1] + shapes[1][0] * shapes[1][1]]
    bt = src.shape[0]
    fq = sd["fusion_encoder.transformer.encoder.frame_query_feats.weight"].unsqueeze(1).repeat(1, bt, 1)
    fp = sd["fusion_encoder.transformer.encoder.frame_query_poses.weight"].unsqueeze(1).repeat(1, bt, 1)
    for li in range(enc_layers):
        p = P.format(li)
        # local: cyclic neighborhood propagation
        outs = []
        for (h, w), s in zip(shapes, starts):
            lv = src[:, s:s + h * w].reshape(b, T, h, w, d)
            kf = torch.roll(lv, shifts=1, dims=1)
            outs.append(neighborhood_attn(sd, p + "local_cnp.self_attn.", lv.flatten(0, 1), kf.flatten(0, 1), 8, kernel, dilation).flatten(1, 2))
        src = layer_norm(sd, p + "local_cnp.norm.", src + torch.cat(outs, 1))
        # global: collect
        mask = None
        if attn_mask:
            h, w = shapes[-1]
            feat = src[:, starts[-1]:starts[-1] + h * w].transpose(1, 2).reshape(bt, d, h, w)
            m = torch.einsum("nbc,bchw->bnhw", fq, feat)
            m = torch.cat([F.interpolate(m, size=shapes[0], mode="bilinear", align_corners=False).flatten(2),
                           F.interpolate(m, size=shapes[1], mode="bilinear", align_corners=False).flatten(2), m.flatten(2)], -1)
            mask = (m.unsqueeze(1).repeat(1, 8, 1, 1).flatten(0, 1).sigmoid() < 0.5)
            mask[torch.where(mask.sum(-1) == mask.shape[-1])] = False
        fq = cross_layer(sd, p + "frame_query_cross_multiscale.", fq, src.permute(1, 0, 2), pos.permute(1, 0, 2), fp, mask)
        # global: scan
        for si in range(scan_layers):
            sp = p + f"global_hiss.self_attn.{si}."
            t2 = (fq + fp).reshape(nq_frame, b, T, d).permute(1, 2, 0, 3)  # b t n c
            t2 = t2 + sine_1d(T, d).t()[None, :, None, :]
            t2 = hiss_mixer(sd, sp + "homo.", t2, order).permute(2, 0, 1, 3).flatten(1, 2)
            fq = layer_norm(sd, sp + "norm.", fq + t2)
        fq = ffn_layer(sd, p + "global_hiss.ffn.", fq)
        # global: distribute
        src = cross_layer(sd, p + "multiscale_cross_query.", src.permute(1, 0, 2), fq, fp, pos.permute(1, 0, 2)).permute(1, 0, 2)
        # deformable attention + ffn
        src = layer_norm(sd, p + "norm1.", src + msda(sd, p + "self_attn.", src + pos, src, shapes))
        src = layer_norm(sd, p + "norm2.", src + linear(sd, p + "linear2.", F.relu(linear(sd, p + "linear1.", src))))
    mem = {}
    for name, (h, w), s in zip(("res5", "res4", "res3"), shapes, starts):
        mem[name] = src[:, s:s + h * w].reshape(bt, h, w, d).permute(0, 3, 1, 2)
    x = feats["res2"].permute(0, 2, 1, 3, 4).flatten(0, 1)
    lat = F.group_norm(F.conv2d(x, sd["fusion_encoder.adapter_1.weight"]), 32, sd["fusion_encoder.adapter_1.norm.weight"], sd["fusion_encoder.adapter_1.norm.bias"])
    y = lat + F.interpolate(mem["res3"], size=lat.shape[-2:], mode="bilinear", align_corners=False)
    y = F.relu(F.group_norm(F.conv2d(y, sd["fusion_encoder.layer_1.weight"], padding=1), 32, sd["fusion_encoder.layer_1.norm.weight"], sd["fusion_encoder.layer_1.norm.bias"]))
    mask_feat = y.reshape(b, T, d, *y.shape[-2:]).permute(0, 2, 1, 3, 4)  # b c t h w

    # decoder
    memories, mposes, sizes = [], [], []
    for i, name in enumerate(("res5", "res4", "res3")):
        m = mem[name].reshape(b, T, d, *mem[name].shape[-2:])  # b t c h w
        sizes.append(m.shape[-2:])
        mposes.append(sine_3d(T, m.shape[-2], m.shape[-1], d)[None].expand(b, -1, -1, -1, -1).permute(1, 3, 4, 0, 2).reshape(-1, b, d))
        memories.append(m.permute(1, 3, 4, 0, 2).reshape(-1, b, d) + sd["decoder.level_embeds.weight"][i][None, None])
    qp = sd["decoder.temporal_query_poses.weight"].unsqueeze(1).repeat(1, b, 1)
    qf = sd["decoder.temporal_query_feats.weight"].unsqueeze(1).repeat(1, b, 1)

    def head(qf, size):
        x = layer_norm(sd, "decoder.temporal_query_norm.", qf).transpose(0, 1)
        for i in range(3):
            x = linear(sd, f"decoder.query_mask.layers.{i}.", x)
            if i < 2:
                x = F.relu(x)
        ml = torch.einsum("bqc,bcthw->bqthw", x, mask_feat)
        nq = ml.shape[1]
        ml = F.interpolate(ml.flatten(0, 1), scale_factor=4, mode="bilinear", align_corners=False)
        ml = ml.reshape(b, nq, T, *ml.shape[-2:]).permute(0, 2, 1, 3, 4)  # b t n h w
        am = F.interpolate(ml.detach().flatten(0, 1), size=tuple(size), mode="bilinear", align_corners=False) < 0.5
        am = am.reshape(b, T, nq, -1).permute(0, 2, 1, 3).reshape(b, nq, -1)  # b nq (t h w)
        am = am[:, None].repeat(1, 8, 1, 1).flatten(0, 1)
        return ml, am

    outs = []
    ml, am = head(qf, sizes[0])
    outs.append(ml)
    for i in range(dec_layers):
        lvl = i % 3
        am[torch.where(am.sum(-1) == am.shape[-1])] = False
        qf = cross_layer(sd, f"decoder.cross_layers.{i}.", qf, memories[lvl], mposes[lvl], qp, am)
        t2 = mha(sd, f"decoder.self_layers.{i}.self_attn.", qf + qp, qf + qp, qf, 8)
        qf = layer_norm(sd, f"decoder.self_layers.{i}.norm.", qf + t2)
        qf = ffn_layer(sd, f"decoder.ffn_layers.{i}.", qf)
        ml, am = head(qf, sizes[(i + 1) % 3])
        outs.append(ml)
    return outs
