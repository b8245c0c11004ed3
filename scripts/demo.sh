#!/usr/bin/env bash
# The built-in demo: the whole kubeferry flow on loopback, no internet needed.
#   bash scripts/demo.sh            (as root on Debian: also imports into a private containerd and runs a pod sandbox)
# A small fixture bundle (fixtures/bundles/demo-upstream.tar) served by `kubeferry serve` stands in for
# registry.k8s.io; everything else is what an operator would type.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
kf() { printf '$ kubeferry %s\n' "$*"; node "$ROOT/bin/run.js" "$@"; }

node -e 'const [a,b,c]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&(b>18||(b===18&&c>=1)))?0:1)' || {
  echo "demo: Node.js >= 20.18.1 is needed (found $(node --version 2>/dev/null || echo none))" >&2; exit 1; }

step "install (npm ci, build)"
if [[ $(id -u) == 0 && -z ${KUBEFERRY_DEMO_NO_APT:-} ]] && command -v apt-get >/dev/null; then
  # containerd + runc for the node step; quick when already installed.
  bash scripts/install-peers.sh >/dev/null || echo "demo: could not install containerd; the node step will be skipped"
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund >/dev/null
fi
npm run --silent build
# The `kubeferry` command the README's examples use: this checkout's bin/run.js on PATH (what `npm link` does,
# without touching npm's global tree). Elsewhere: `npm link` in the checkout, or `alias kubeferry="node $ROOT/bin/run.js"`.
if [[ $(id -u) == 0 && -d /usr/local/bin ]]; then
  ln -sfn "$ROOT/bin/run.js" /usr/local/bin/kubeferry
  printf 'kubeferry is on PATH: %s -> %s (%s)\n' /usr/local/bin/kubeferry "$ROOT/bin/run.js" "$(kubeferry --version)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kubeferry-demo.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${CONTAINERD_ROOT:-} ]]; then umount -R "$CONTAINERD_ROOT" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
UPSTREAM="http://127.0.0.1:$PORT"

UPSTREAM_BUNDLE=fixtures/bundles/demo-upstream.tar
if [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; then
  # Same names and platforms as the committed fixture, but this machine's pause images get a layer with the
  # static busybox (Debian busybox-static), so the node step can start a real pod sandbox. No binaries in git.
  UPSTREAM_BUNDLE="$WORK/demo-upstream.tar"
  node dist/test/serve/gen-demo-fixture.js --runnable "$UPSTREAM_BUNDLE" >/dev/null
fi
step "a stand-in for registry.k8s.io: kubeferry serve of ${UPSTREAM_BUNDLE#"$WORK"/} on $UPSTREAM"
node bin/run.js serve "$UPSTREAM_BUNDLE" --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
PIDS+=($!)
for _ in $(seq 100); do node -e "fetch('$UPSTREAM/v2/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.1; done

step "which images does a v1.31.6 cluster on containerd 1.7 pull? (offline)"
kf images --kubernetes-version v1.31.6 --runtime containerd@1.7 --wide

BUNDLE="$WORK/k8s-v1.31.6.tar"
step "build one bundle for amd64 and arm64 nodes, through the mirror, keeping canonical names"
kf create --kubernetes-version v1.31.6 --runtime containerd@1.7 \
  --platform linux/amd64 --platform linux/arm64 \
  --mirror "registry.k8s.io=$UPSTREAM" \
  --cache-dir "$WORK/cache" --no-progress -o "$BUNDLE"
ls -l "$WORK"

step "what is inside"
kf inspect "$BUNDLE"

step "verify it offline (every blob, every reference, checksums, structure)"
kf verify "$BUNDLE"

step "carry it across the gap: the file and its install script are all a node needs"
(cd "$WORK" && sha256sum -c "$(basename "$BUNDLE").sha256")

if [[ $(id -u) == 0 ]] && command -v containerd >/dev/null && command -v ctr >/dev/null; then
  step "on a node: a private containerd (own socket and root), then the bundle's install.sh (POSIX sh + ctr only)"
  CONTAINERD_ROOT="$WORK/containerd"
  mkdir -p "$CONTAINERD_ROOT"
  cat >"$CONTAINERD_ROOT/config.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT/root"
state = "$CONTAINERD_ROOT/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_ROOT/containerd.sock"
TOML
  containerd --config "$CONTAINERD_ROOT/config.toml" >"$CONTAINERD_ROOT/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do ctr --address "$CONTAINERD_ROOT/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  printf '$ sh %s --address %s\n' "${BUNDLE%.tar}.install.sh" "$CONTAINERD_ROOT/containerd.sock"
  sh "${BUNDLE%.tar}.install.sh" "$BUNDLE" --runtime containerd --address "$CONTAINERD_ROOT/containerd.sock"
  printf '\n$ ctr -n k8s.io images ls\n'
  ctr --address "$CONTAINERD_ROOT/containerd.sock" -n k8s.io images ls | cut -c1-150
  step "run it again: idempotent"
  sh "${BUNDLE%.tar}.install.sh" "$BUNDLE" --runtime containerd --address "$CONTAINERD_ROOT/containerd.sock"
  if [[ -f scripts/demo-sandbox.mjs ]]; then
    step "start a real pod sandbox (CRI RunPodSandbox) from the imported pause image, network off"
    node scripts/demo-sandbox.mjs "$BUNDLE" || echo "demo: the pod sandbox step could not run here (see above)"
  fi
else
  step "node import skipped: it needs root and containerd (apt-get install containerd); on a node run: sh ${BUNDLE##*/} → $(basename "${BUNDLE%.tar}").install.sh"
fi

step "nodes that should pull from a served bundle instead: containerd hosts.toml"
kf config --serve "127.0.0.1:$PORT" --for hosts --bundle "$BUNDLE"

step "done: the demo cleaned up after itself; \`kubeferry --help\` lists every command"
