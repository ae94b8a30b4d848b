#!/usr/bin/python3
"""PyTorch side of bench/kernels.ts: the time of single convolution kernels (3x3, stride 1, 'same' padding) at the
shapes given, forward and both gradients, on the CPU with a given number of threads.

  /usr/bin/python3 torch_kernels.py --shapes 8x28x28x32x32,8x14x14x64x64 --threads 1 --reps 5 --warmup 2

Shapes are NxHxWxCINxCOUT. The gradients are aten's own convolution_backward with one output selected, which is
what autograd calls in a training step. Prints one JSON line: {"impl", "threads", "results": [{"shape", "kernel",
"ms_median", "ms_min"}]}."""
import argparse, json, os, statistics, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # busy-waiting OpenMP threads collapse on a shared 2-core box
import torch
import torch.nn.functional as F


def timed(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ms), min(ms)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", required=True, help="comma list of NxHxWxCINxCOUT")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    results = []
    with torch.no_grad():
        for s in a.shapes.split(","):
            n, h, w, cin, cout = (int(v) for v in s.split("x"))
            x = torch.randn(n, cin, h, w)
            wt = torch.randn(cout, cin, 3, 3)
            dy = torch.randn(n, cout, h, w)

            def backward(mask):
                return torch.ops.aten.convolution_backward(dy, x, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

            kernels = {
                "conv2d": lambda: F.conv2d(x, wt, padding=1),
                "filterGrad": lambda: backward([False, True, False]),
                "inputGrad": lambda: backward([True, False, False]),
            }
            for name, fn in kernels.items():
                med, lo = timed(fn, a.reps, a.warmup)
                results.append({"shape": s, "kernel": name, "ms_median": round(med, 3), "ms_min": round(lo, 3)})
    print(json.dumps({"impl": f"pytorch {torch.__version__}", "threads": a.threads, "results": results}))


if __name__ == "__main__":
    main()
