#!/usr/bin/python3
"""PyTorch reference for the DDPM U-Net (the architecture of the paper's CIFAR-10 model, configurable),
to compare training-step and sampling-step speed side by side with the project's own engine.

Needs PyTorch: on Debian `apt-get install -y python3-torch` (1.13, CPU; it is for /usr/bin/python3). Example:
  /usr/bin/python3 torch_reference.py --ch 128 --ch-mult 1,2,2,2 --blocks 2 --attn 16 --size 32 --channels 3 \
      --batch 8 --mode train --steps 5 --threads 2
prints one JSON line: parameter count and the median milliseconds per step (after warm-up).
--preset cifar10 is the paper's model (35,746,307 parameters)."""
import argparse, json, math, os, resource, statistics, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # busy-waiting OpenMP threads collapse on a shared 2-core box
import torch
import torch.nn as nn
import torch.nn.functional as F


def swish(x):
    return x * torch.sigmoid(x)


GROUPS = 32


def norm(c):
    return nn.GroupNorm(min(GROUPS, c), c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tch, dropout):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(tch, cout)
        self.norm2, self.drop, self.conv2 = norm(cout), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight); nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(swish(self.norm1(x)))
        h = h + self.temb_proj(swish(temb))[:, :, None, None]
        h = self.conv2(self.drop(swish(self.norm2(h))))
        return (self.skip(x) if self.skip is not None else x) + h


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v, self.proj = (nn.Conv2d(c, c, 1) for _ in range(4))
        nn.init.zeros_(self.proj.weight); nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hh * ww)
        k = self.k(h).reshape(b, c, hh * ww)
        v = self.v(h).reshape(b, c, hh * ww)
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * c ** -0.5, dim=-1)  # [b, hw, hw]
        h = torch.bmm(v, w.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + self.proj(h)


class UNet(nn.Module):
    def __init__(self, ch, ch_mult, blocks, attn, size, channels, dropout):
        super().__init__()
        self.ch, tch = ch, 4 * ch
        self.temb = nn.Sequential(nn.Linear(ch, tch), nn.SiLU(), nn.Linear(tch, tch))
        self.conv_in = nn.Conv2d(channels, ch, 3, padding=1)
        self.down, skips, cur, res = nn.ModuleList(), [ch], ch, size
        for i, m in enumerate(ch_mult):
            for _ in range(blocks):
                self.down.append(nn.ModuleList([ResBlock(cur, ch * m, tch, dropout)] + ([Attn(ch * m)] if res in attn else [])))
                cur = ch * m; skips.append(cur)
            if i != len(ch_mult) - 1:
                self.down.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1)); skips.append(cur); res //= 2
        self.mid = nn.ModuleList([ResBlock(cur, cur, tch, dropout), Attn(cur), ResBlock(cur, cur, tch, dropout)])
        self.up = nn.ModuleList()
        for i in reversed(range(len(ch_mult))):
            for _ in range(blocks + 1):
                self.up.append(nn.ModuleList([ResBlock(cur + skips.pop(), ch * ch_mult[i], tch, dropout)] + ([Attn(ch * ch_mult[i])] if res in attn else [])))
                cur = ch * ch_mult[i]
            if i != 0:
                self.up.append(nn.Conv2d(cur, cur, 3, padding=1)); res *= 2
        self.norm_out, self.conv_out = norm(cur), nn.Conv2d(cur, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight); nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t):
        half = self.ch // 2
        f = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -(math.log(10000) / (half - 1)))
        e = t.float()[:, None] * f[None]
        temb = self.temb(torch.cat([torch.sin(e), torch.cos(e)], 1))
        hs = [self.conv_in(x)]
        for m in self.down:
            if isinstance(m, nn.Conv2d):
                hs.append(m(hs[-1]))
            else:
                h = m[0](hs[-1], temb)
                hs.append(m[1](h) if len(m) > 1 else h)
        h = self.mid[2](self.mid[1](self.mid[0](hs[-1], temb)), temb)
        for m in self.up:
            if isinstance(m, nn.Conv2d):
                h = m(F.interpolate(h, scale_factor=2, mode="nearest"))
            else:
                h = m[0](torch.cat([h, hs.pop()], 1), temb)
                h = m[1](h) if len(m) > 1 else h
        return self.conv_out(swish(self.norm_out(h)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", choices=["cifar10"], default=None)
    p.add_argument("--ch", type=int, default=32)
    p.add_argument("--ch-mult", default="1,2,2")
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--attn", default="16", help="comma list of resolutions with attention ('' for none)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--groups", type=int, default=32, help="GroupNorm groups (min(groups, C) per layer)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mode", choices=["train", "forward"], default="train")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--ema-decay", type=float, default=0.9999,
                   help="training: keep an exponential moving average of the weights, updated every step, as the "
                        "paper's recipe and our engine do (0: none)")
    a = p.parse_args()
    if a.preset == "cifar10":
        a.ch, a.ch_mult, a.blocks, a.attn, a.size, a.channels, a.dropout = 128, "1,2,2,2", 2, "16", 32, 3, 0.1
    global GROUPS
    GROUPS = a.groups
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    attn = [int(s) for s in a.attn.split(",") if s]
    dev = torch.device(a.device)
    if a.device == "cuda":
        # Same arithmetic as ours (float32), not TF32 matrix units.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    net = UNet(a.ch, [int(s) for s in a.ch_mult.split(",")], a.blocks, attn, a.size, a.channels, a.dropout).to(dev)
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    live = [q for q in net.parameters()]
    ema = [q.detach().clone() for q in live] if a.mode == "train" and a.ema_decay > 0 else None
    x0 = torch.rand(a.batch, a.channels, a.size, a.size, device=dev) * 2 - 1
    times = []
    for i in range(a.warmup + a.steps):
        t = torch.randint(0, 1000, (a.batch,), device=dev)
        if a.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        if a.mode == "train":
            net.train()
            eps = torch.randn_like(x0)
            loss = F.mse_loss(net(x0 + eps, t), eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    # ema ← decay·ema + (1 − decay)·θ, fused over all tensors.
                    torch._foreach_mul_(ema, a.ema_decay)
                    torch._foreach_add_(ema, live, alpha=1 - a.ema_decay)
        else:
            net.eval()
            with torch.no_grad():
                net(x0, t)
        if a.device == "cuda":
            # Kernels run asynchronously: a step is finished when the device is idle again.
            torch.cuda.synchronize()
        if i >= a.warmup:
            times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"impl": "pytorch " + torch.__version__, "mode": a.mode, "batch": a.batch, "params": params,
                      "config": {"ch": a.ch, "ch_mult": a.ch_mult, "blocks": a.blocks, "attn": attn, "size": a.size,
                                 "channels": a.channels, "dropout": a.dropout}, "threads": a.threads,
                      "ema_decay": a.ema_decay if ema is not None else None,
                      "ms_median": round(statistics.median(times), 2), "ms_min": round(min(times), 2),
                      "ms_max": round(max(times), 2), "steps": a.steps, "device": a.device,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "peak_device_mb": round(torch.cuda.max_memory_allocated() / 2**20) if a.device == "cuda" else None,
                      "peak_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20) if a.device == "cuda" else None}))


if __name__ == "__main__":
    main()
