#!/usr/bin/env bash
# install.sh import time vs plain `ctr -n NS images import --platform linux/amd64` of the same bundle (target <= 1.1x).
# Starts its own containerd in a temp dir (killed by PID), builds a bundle of the synthetic test images with
# LAYER_SIZE-byte layers (default 20 MB each: 4 images x 2 platforms), then runs both imports ROUNDS times (default 3)
# after one warm-up of each, each run into a fresh namespace, the order alternating (ctr first in odd rounds,
# install.sh first in even ones) so that neither always runs right after the other. Both do the same import work:
# ctr imports an OCI archive without expected digests, so every run re-reads and re-hashes every blob whatever the
# content store already holds, and every fresh namespace unpacks its own snapshots. Prints each round, then the
# medians (wall seconds, and CPU seconds of the command plus containerd's) and the median of the per-round ratios.
# PARTS=N: the baseline is install.sh reading the single file instead of ctr, and the contender install.sh reading
# the same bundle cut by coreutils split into N parts (NAME.tar.001…, with NAME.parts.sha256 and NAME.tar.sha256).
# Run after `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/containerd.sh
LAYER_SIZE=${LAYER_SIZE:-20000000}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/kf-bench-install.XXXXXX")
CONTAINERD_PID=""
cleanup() { [ -n "$CONTAINERD_PID" ] && kill "$CONTAINERD_PID" 2>/dev/null && wait "$CONTAINERD_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
start_containerd "$work"
LAYER_SIZE=$LAYER_SIZE node dist/test/load/make-bundle.js "$work/k8s.tar" >/dev/null
size=$(stat -c %s "$work/k8s.tar")
PARTS=${PARTS:-0}
if [ "$PARTS" -gt 0 ]; then
  mkdir "$work/parts"
  (cd "$work/parts" && split -b $(((size + PARTS - 1) / PARTS)) -d -a 3 --numeric-suffixes=1 ../k8s.tar k8s.tar. && sha256sum k8s.tar.0* >k8s.parts.sha256)
  cp "$work/k8s.tar.sha256" "$work/k8s.install.sh" "$work/parts/"
fi
ticks=$(getconf CLK_TCK)
containerd_cpu() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$CONTAINERD_PID/stat"; }
ctr_import() { ctr --address "$work/c.sock" -n "$1" images import --platform linux/amd64 "$work/k8s.tar" >/dev/null 2>>"$work/errors"; }
script_import() { dash "$work/k8s.install.sh" --address "$work/c.sock" --namespace "$1" --config "$work/config.toml" >/dev/null 2>>"$work/errors"; }
parts_import() { dash "$work/parts/k8s.install.sh" --address "$work/c.sock" --namespace "$1" --config "$work/config.toml" >/dev/null 2>>"$work/errors"; }
base=ctr_import base_label='ctr import' contender=script_import label=install.sh
[ "$PARTS" = 0 ] || { base=script_import base_label='install.sh (one file)' contender=parts_import label="install.sh ($PARTS parts)"; }
# timed FUNCTION NAMESPACE: prints "WALL CPU" (CPU: the function's processes plus containerd's)
timed() {
  local c0 c1 t TIMEFORMAT='%R %U %S'
  # The previous import's snapshots are still being written back: flush them first, so that neither contender pays
  # for the other's disk writes (the bundle itself stays in the page cache for both).
  sync
  c0=$(containerd_cpu)
  t=$({ time "$1" "$2"; } 2>&1) || { echo "bench: $1 failed: $(tail -n 3 "$work/errors")" >&2; exit 1; }
  c1=$(containerd_cpu)
  awk -v c0="$c0" -v c1="$c1" '{ printf "%.3f %.3f\n", $1, $2 + $3 + c1 - c0 }' <<<"$t"
}
$base warm-ctr
$contender warm-script
: >"$work/rounds"
for i in $(seq "$ROUNDS"); do
  if [ $((i % 2)) -eq 1 ]; then
    c=$(timed "$base" "ctr-$i"); s=$(timed "$contender" "script-$i")
  else
    s=$(timed "$contender" "script-$i"); c=$(timed "$base" "ctr-$i")
  fi
  echo "$c $s" >>"$work/rounds"
  awk -v i="$i" -v b="$base_label" -v l="$label" '{ printf "round %d: %s %.2f s (cpu %.2f s), %s %.2f s (cpu %.2f s) -> %.2fx\n", i, b, $1, $2, l, $3, $4, $3 / $1 }' <<<"$c $s"
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m_ctr=$(awk '{ print $1 }' "$work/rounds" | median)
m_script=$(awk '{ print $3 }' "$work/rounds" | median)
m_ratio=$(awk '{ print $3 / $1 }' "$work/rounds" | median)
cpu_ctr=$(awk '{ print $2 }' "$work/rounds" | median)
cpu_script=$(awk '{ print $4 }' "$work/rounds" | median)
awk -v b="$base_label" -v l="$label" -v mb="$((size / 1000000))" -v n="$ROUNDS" -v c="$m_ctr" -v s="$m_script" -v r="$m_ratio" -v cc="$cpu_ctr" -v cs="$cpu_script" 'BEGIN {
  printf "bundle %d MB, %d rounds, medians: %s %.2f s (cpu %.2f s), %s %.2f s (cpu %.2f s) (incl. structure and sha256 checks, import, digest checks, digest names, pin) -> ratio %.2fx (median of per-round ratios %.2fx)\n", mb, n, b, c, cc, l, s, cs, s / c, r }'
