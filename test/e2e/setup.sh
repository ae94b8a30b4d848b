#!/usr/bin/env bash
# Installs what the end-to-end tests need to run the extension inside real VS Code (code-server 4.100.3 = VS Code 1.100.3)
# and to drive its UI with headless Chromium; idempotent, and a fast no-op once everything is in place.
#
#   bash test/e2e/setup.sh            (npm run test:e2e:setup)
#
# Only needs the Debian apt mirror and registry.npmjs.org (no GitHub, no nodejs.org):
#   1. apt: chromium (UI driver), ripgrep (stands in for @vscode/ripgrep's GitHub download), libkrb5-dev (`kerberos`
#      native module), build-essential python3 pkg-config (node-gyp); only the missing ones are installed.
#   2. npm install code-server@4.100.3 into $DDPM_E2E_HOME/code-server (default <repo>/.cache/vscode-e2e, gitignored).
#      Its postinstall builds native modules; as root it needs npm_config_unsafe_perm, node-gyp needs the Node headers in
#      /usr/include/node (npm_config_nodedir=/usr), node-pty's postinstall runs npx non-interactively (npm_config_yes).
#   3. After a successful install the folder is also packed into code-server-4.100.3-node<major>.tar.gz next to it;
#      a later setup with the folder missing restores it from there in seconds (cache that file in CI).
# Environment: DDPM_E2E_HOME (install root), SKIP_APT=1 (do not touch system packages).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_HOME=${DDPM_E2E_HOME:-$REPO/.cache/vscode-e2e}
CODE_SERVER_VERSION=4.100.3
# @vscode/ripgrep version pinned in code-server 4.100.3's lib/vscode/npm-shrinkwrap.json and the ripgrep-prebuilt
# asset its postinstall downloads (VERSION in node_modules/@vscode/ripgrep/lib/postinstall.js).
RG_NPM_VERSION=1.15.11
RG_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
APT_PACKAGES=(chromium ripgrep libkrb5-dev build-essential python3 pkg-config)

DEST=$E2E_HOME/code-server
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
MARKER=$DEST/.installed-$CODE_SERVER_VERSION-node$NODE_MAJOR
TARBALL=$E2E_HOME/code-server-$CODE_SERVER_VERSION-node$NODE_MAJOR.tar.gz
CODE_SERVER=$DEST/node_modules/.bin/code-server
t0=$(date +%s)
log() { echo "[e2e setup $(( $(date +%s) - t0 ))s] $*"; }

if [ "$NODE_MAJOR" != 20 ]; then
  log "warning: code-server $CODE_SERVER_VERSION is built for Node 20; this is Node $(node --version)"
fi

# 1) system packages -------------------------------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${SKIP_APT:-0}" = 1 ]; then
    log "SKIP_APT=1 but these packages are missing: ${missing[*]}"; exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || { log "/usr/bin/chromium is missing"; exit 1; }

# 2) code-server -----------------------------------------------------------------------------------------------------
if [ -f "$MARKER" ] && [ -x "$CODE_SERVER" ]; then
  :
elif [ -f "$TARBALL" ] && rm -rf "$DEST" && mkdir -p "$E2E_HOME" && tar xzf "$TARBALL" -C "$E2E_HOME" \
     && [ -f "$MARKER" ] && [ -x "$CODE_SERVER" ]; then
  log "restored code-server $CODE_SERVER_VERSION from $TARBALL"
else
  log "installing code-server@$CODE_SERVER_VERSION into $DEST (native builds; about 2 minutes on 2 cores)"
  rm -rf "$DEST"; mkdir -p "$DEST" "$E2E_HOME/tmp" "$E2E_HOME/home"
  (
    # Keep every tool's state inside $E2E_HOME.
    export HOME=$E2E_HOME/home XDG_CONFIG_HOME=$E2E_HOME/home/.config XDG_CACHE_HOME=$E2E_HOME/home/.cache
    export TMPDIR=$E2E_HOME/tmp
    export npm_config_cache=$E2E_HOME/npm-cache
    export npm_config_unsafe_perm=true npm_config_nodedir=/usr npm_config_yes=true
    export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
    # Seed @vscode/ripgrep's download cache ($TMPDIR/vscode-ripgrep-cache-<ver>/<asset>) with Debian's rg so its
    # postinstall never calls api.github.com.
    mkdir -p "$TMPDIR/vscode-ripgrep-cache-$RG_NPM_VERSION" "$TMPDIR/rgstage"
    cp "$(command -v rg)" "$TMPDIR/rgstage/rg"
    tar czf "$TMPDIR/vscode-ripgrep-cache-$RG_NPM_VERSION/$RG_ASSET" -C "$TMPDIR/rgstage" rg
    cd "$DEST"
    echo '{"name":"ddpm-studio-e2e-code-server","private":true}' > package.json
    npm install --foreground-scripts --no-package-lock "code-server@$CODE_SERVER_VERSION" > install.log 2>&1 \
      || { tail -60 install.log; echo "npm install failed; full log: $DEST/install.log"; exit 1; }
  )
  version=$("$CODE_SERVER" --config /dev/null --version 2>/dev/null | head -1)
  case "$version" in
    "$CODE_SERVER_VERSION"*) ;;
    *) log "code-server --version printed '$version', expected $CODE_SERVER_VERSION"; exit 1 ;;
  esac
  date -u +%FT%TZ > "$MARKER"
  rm -rf "$E2E_HOME/tmp"
  log "installed code-server $version ($(du -sh "$DEST" | cut -f1)); packing $TARBALL"
  tar czf "$TARBALL.part" -C "$E2E_HOME" code-server && mv "$TARBALL.part" "$TARBALL"
fi

# 3) the repository's own devDependencies used by the harness ---------------------------------------------------------
for m in mocha playwright-core; do
  (cd "$REPO" && node -e "require.resolve('$m/package.json')" 2>/dev/null) \
    || { log "devDependency '$m' is not installed: run npm install in $REPO"; exit 1; }
done

log "ready: code-server $CODE_SERVER_VERSION in $DEST, chromium $(dpkg-query -W -f='${Version}' chromium)"
