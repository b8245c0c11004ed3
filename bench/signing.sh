#!/usr/bin/env bash
# Signed bundles (issue 19): what signing adds to create (target < 50 ms), and install.sh --key against install.sh
# without it on the same bundle (target <= 1.05x): --verify-only (structure, the whole-file hash, and with --key the
# signature checks: the hardest ratio, no import to hide in) and a full import into a fresh containerd namespace each
# run. Builds a bundle of the synthetic test images with LAYER_SIZE-byte layers (default 20 MB: 4 images x 2 platforms),
# signs it with an Ed25519 key from openssl genpkey, times with farm-bench (A/B in turn, ratio pair by pair).
# Run after `npm run build`; the import half needs containerd (it starts its own in a temp dir, killed by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/containerd.sh
LAYER_SIZE=${LAYER_SIZE:-20000000}
RUNS=${RUNS:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/kf-bench-signing.XXXXXX")
CONTAINERD_PID=""
cleanup() { [ -n "$CONTAINERD_PID" ] && kill "$CONTAINERD_PID" 2>/dev/null && wait "$CONTAINERD_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
LAYER_SIZE=$LAYER_SIZE node dist/test/load/make-bundle.js "$work/k8s.tar" >/dev/null
openssl genpkey -algorithm ed25519 -out "$work/ed.key" 2>/dev/null
openssl pkey -in "$work/ed.key" -pubout -out "$work/ed.pub"
echo "bundle: $(stat -c %s "$work/k8s.tar") bytes"
node dist/bench/sign-cost.js "$work/k8s.tar" "$work/ed.key" 20
node bin/run.js sign "$work/k8s.tar" --key "$work/ed.key" >/dev/null
export KUBEFERRY_TRUSTED_KEYS="$work/no-policy"
echo "== install.sh --verify-only: --key (A) vs none (B)"
farm-bench -n "$RUNS" --vs "dash $work/k8s.install.sh --verify-only" -- dash "$work/k8s.install.sh" --verify-only --key "$work/ed.pub"
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  start_containerd "$work"
  # each run into a fresh namespace (its pid), so both import every image
  run="dash $work/k8s.install.sh --address $work/c.sock --config $work/config.toml --namespace"
  echo "== install.sh import into containerd: --key (A) vs none (B)"
  farm-bench -n "$RUNS" --timeout 600 --vs "sh -c '$run b\$\$ >/dev/null'" -- sh -c "$run a\$\$ --key $work/ed.pub >/dev/null"
fi
