#!/usr/bin/env bash
# install.sh import time vs plain `ctr -n NS images import` of the same bundle (target <= 1.1x).
# Starts its own containerd in a temp dir (killed by PID), builds a bundle of the synthetic test images with
# LAYER_SIZE-byte layers (default 20 MB each: 4 images x 2 platforms), then alternates the two imports, each into a
# fresh namespace, ROUNDS times (default 3), after one warm-up of each. Run after `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
LAYER_SIZE=${LAYER_SIZE:-20000000}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/kf-bench-install.XXXXXX")
pid=''
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$work/c.sock"
TOML
containerd -c "$work/config.toml" >"$work/containerd.log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$work/c.sock" ] && break; sleep 0.1; done
LAYER_SIZE=$LAYER_SIZE node dist/test/load/make-bundle.js "$work/k8s.tar" >/dev/null
size=$(stat -c %s "$work/k8s.tar")
now() { date +%s.%N; }
ctr_import() { ctr --address "$work/c.sock" -n "$1" images import --platform linux/amd64 "$work/k8s.tar" >/dev/null; }
script_import() { dash "$work/k8s.install.sh" --address "$work/c.sock" --namespace "$1" --config "$work/config.toml" >/dev/null 2>&1; }
ctr_import warm-ctr
script_import warm-script
t_ctr=0
t_script=0
for i in $(seq "$ROUNDS"); do
  a=$(now); ctr_import "ctr-$i"; b=$(now); script_import "script-$i"; c=$(now)
  t_ctr=$(awk -v t="$t_ctr" -v a="$a" -v b="$b" 'BEGIN { print t + b - a }')
  t_script=$(awk -v t="$t_script" -v b="$b" -v c="$c" 'BEGIN { print t + c - b }')
done
awk -v mb="$((size / 1000000))" -v n="$ROUNDS" -v c="$t_ctr" -v s="$t_script" 'BEGIN {
  printf "bundle %d MB, %d rounds: ctr import %.2f s, install.sh %.2f s (incl. sha256 check, import, digest checks, pin) -> ratio %.2fx (target <= 1.1x)\n", mb, n, c / n, s / n, s / c }'
