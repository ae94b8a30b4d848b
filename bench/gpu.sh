#!/usr/bin/env bash
# The GPU measurements recorded in bench/RESULTS.md, as one script: the machine's GPU, golden vectors on WebGPU, then
# the cifar10 preset's training step at batch 128 and its sampling steps on WebGPU, each followed by the same model in
# PyTorch on CUDA (float32, TF32 off), then the mnist preset the same way, then the conv kernels' GFLOP/s on WebGPU.
#
#   npm run build && bench/gpu.sh [OUTDIR]
#
# Runs from the bundles in dist/ (dist/bench.js, dist/bench-worker.js, dist/check-golden.js, dist/bench-kernels.js), so a machine needs only
# node, Dawn's package (node_modules/webgpu) and a GPU driver. Environment: NODE (default node), PYTHON (the Python
# with PyTorch; default python3), GOLDEN (default ../shared/golden/steps_small.json), TIMEOUT_S per measurement
# (default 200), BATCH (default 128). Each part runs even if an earlier one failed; logs and JSON go to OUTDIR.
set -u
cd "$(dirname "$0")/.."
out=${1:-bench-gpu}
mkdir -p "$out"
NODE=${NODE:-node}
PYTHON=${PYTHON:-python3}
GOLDEN=${GOLDEN:-../shared/golden/steps_small.json}
TIMEOUT_S=${TIMEOUT_S:-200}
BATCH=${BATCH:-128}

part() { echo; echo "=== $* ($(date -u +%T))"; }

part machine
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  "$NODE" --version; "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  grep -m1 'model name' /proc/cpuinfo; nproc; } | tee "$out/machine.txt"

if [ -f "$GOLDEN" ]; then
  part golden vectors on webgpu
  timeout "$TIMEOUT_S" "$NODE" dist/check-golden.js "$GOLDEN" --backend webgpu 2>&1 | tee "$out/golden-webgpu.txt" | tail -25
fi

bench() { # name, then options for dist/bench.js
  local name=$1; shift
  part "$name"
  "$NODE" dist/bench.js --backend webgpu --compare-torch --torch-device cuda --python "$PYTHON" --timeout "$TIMEOUT_S" \
    --json "$@" >"$out/$name.json" 2>"$out/$name.log"
  tail -n 12 "$out/$name.log"
}

bench cifar10-train --preset cifar10 --batch "$BATCH" --mode train --steps 5 --warmup 2
bench cifar10-sample --preset cifar10 --batch "$BATCH" --mode sample --steps 5 --warmup 2
bench mnist --preset mnist --batch "$BATCH" --steps 5 --warmup 2

# The 3×3 conv and its two gradients on their own (GFLOP/s per kernel), to see which one a training step waits on.
part conv kernels on webgpu
timeout "$TIMEOUT_S" "$NODE" dist/bench-kernels.js --backend webgpu --preset mnist,cifar10 --batch "$BATCH" --json \
  >"$out/kernels-webgpu.json" 2>"$out/kernels-webgpu.log"
tail -n 5 "$out/kernels-webgpu.log"

part summary
"$NODE" -e '
const fs = require("fs");
const dir = process.argv[1];
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort()) {
  let doc; try { doc = JSON.parse(fs.readFileSync(dir + "/" + f, "utf8")); } catch { console.log(f, "no JSON"); continue; }
  if (doc.benchmark?.includes("conv kernels")) {
    for (const r of doc.results ?? []) console.log(`${doc.backend} kernel ${r.kernel} ${r.shape}: ${r.ms} ms, ${r.gflopPerSec} GFLOP/s`);
    continue;
  }
  for (const r of doc.results ?? []) {
    const ours = r.train ? r.train.msMedian : r.sample?.forward.msMedian;
    const extra = r.sample ? ` ddim ${r.sample.ddimStep.msMedian} ms, ddpm ${r.sample.ddpmStep.msMedian} ms, ${r.sample.ddim50ImagesPerSec} img/s (DDIM-50)` : r.train ? ` ${r.train.imagesPerSec} img/s` : "";
    const mb = r.memory ? Math.round(r.memory.tfPeakBytes / 2 ** 20) : "-";
    console.log(`${r.backend} ${r.device ?? ""} ${r.preset} b${r.batch} ${r.mode}: ${r.error ? "ERROR " + r.error : ours + " ms" + extra}, tensors ${mb} MB; torch ${r.torch?.error ? "ERROR" : (r.torch?.msMedian ?? "-") + " ms, " + (r.torch?.peakDeviceMB ?? "-") + " MB"}; ratio ${r.ratioOursToTorch ?? "-"}, mem ${r.memoryRatioOursToTorch ?? "-"}`);
  }
}' "$out"
