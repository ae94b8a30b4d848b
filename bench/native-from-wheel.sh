#!/usr/bin/env bash
# Builds the native CPU backend (@tensorflow/tfjs-node 4.22) against the libtensorflow inside a TensorFlow pip wheel,
# for machines that cannot download libtensorflow from Google's storage (what `npm install @tensorflow/tfjs-node`
# does) but have a wheel. The result is a folder to pass as DDPM_NATIVE_PATH (or --native-path to the sidecar):
#
#   bench/native-from-wheel.sh tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl /tmp/tfnative
#   DDPM_NATIVE_PATH=/tmp/tfnative npm run bench -- --backend tensorflow --compare-torch
#
# Linux x64 only. Needs npm (registry access for tfjs-node's JavaScript), g++, make, python3 and Node's headers
# (Debian: nodejs with /usr/include/node, or NODEDIR=...). libtensorflow's C API is stable across 2.x, so a newer
# library than the 2.9 that tfjs-node ships with works; bench/RESULTS.md says which one each measurement used.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 TENSORFLOW_WHEEL DEST" >&2
  exit 2
fi
wheel=$(realpath "$1")
dest=$2
nodedir=${NODEDIR:-/usr}
[[ -f $wheel ]] || { echo "no such wheel: $wheel" >&2; exit 1; }
[[ -f $nodedir/include/node/node_api.h ]] || { echo "Node headers not found under $nodedir/include/node (set NODEDIR)" >&2; exit 1; }

mkdir -p "$dest"
dest=$(realpath "$dest")
cd "$dest"
[[ -f package.json ]] || echo '{"name":"ddpm-native-backend","private":true}' > package.json
# --ignore-scripts: tfjs-node's install script is the download this replaces.
npm install --ignore-scripts --no-audit --no-fund @tensorflow/tfjs-node@4.22.0 >/dev/null
pkg=$dest/node_modules/@tensorflow/tfjs-node
rm -rf "$pkg/deps" && mkdir -p "$pkg/deps/lib" "$pkg/deps/include"

# The C API headers (tensorflow/c, and the tsl/xla headers they include) and the two shared libraries.
python3 - "$wheel" "$pkg/deps" <<'PY'
import sys, zipfile, os, shutil
wheel, deps = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith('tensorflow/include/') and not name.startswith('tensorflow/include/external/') and name.endswith(('.h', '.inc')):
            target = os.path.join(deps, 'include', name[len('tensorflow/include/'):])
        elif name in ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'):
            target = os.path.join(deps, 'lib', os.path.basename(name))
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, 'wb') as dst:
            shutil.copyfileobj(src, dst)
PY
ln -sf libtensorflow_cc.so.2 "$pkg/deps/lib/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "$pkg/deps/lib/libtensorflow_framework.so"

gyp=$(dirname "$(dirname "$(realpath "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js
if ! (cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir" -j "$(nproc)" \
  --module_name=tfjs_binding --module_path=lib/napi-v8 --napi_build_version=8 >"$dest/build.log" 2>&1); then
  tail -30 "$dest/build.log" >&2
  echo "building the binding failed (whole log: $dest/build.log)" >&2
  exit 1
fi
mkdir -p "$pkg/lib/napi-v8"
cp "$pkg/build/Release/tfjs_binding.node" "$pkg/lib/napi-v8/"
(cd "$dest" && node -e "const tf = require('@tensorflow/tfjs-node'); console.log('tfjs-node', tf.version['tfjs-node'], 'on', tf.getBackend())" 2>/dev/null)
echo "native backend ready: DDPM_NATIVE_PATH=$dest"
