#!/usr/bin/env bash
# Do two builds of kubeferry write the same bytes? Builds the README demo's bundle and a two-platform kubeadm
# v1.31.6 set from the test registry with each CLI (fresh caches, SOURCE_DATE_EPOCH fixed) and prints the sha256 of
# every bundle and install script, then `same` or `DIFFERENT`.
#   KUBEFERRY_TEST_PEERS=…/peers.json bash bench/same-bytes.sh OLD/bin/run.js NEW/bin/run.js
# The test registry comes from a running harness (`node dist/test/harness/run.js --serve`); the demo's stand-in for
# registry.k8s.io is the committed fixture served by the first CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: KUBEFERRY_TEST_PEERS=FILE bash bench/same-bytes.sh CLI_A CLI_B" >&2; exit 2; }
: "${KUBEFERRY_TEST_PEERS:?start the peers with: node dist/test/harness/run.js --serve}"
open=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).registries.open.url)' "$KUBEFERRY_TEST_PEERS")
work=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node "$1" serve fixtures/bundles/demo-upstream.tar --listen "127.0.0.1:$port" 2>/dev/null &
serve=$!
trap 'kill $serve 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do node -e "fetch('http://127.0.0.1:$port/v2/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.1; done
export SOURCE_DATE_EPOCH=1700000000
status=same
for set in demo kubeadm; do
  sums=()
  for cli in "$1" "$2"; do
    d=$(mktemp -d "$work/XXXX")
    if [ $set = demo ]; then
      node "$cli" create --kubernetes-version v1.31.6 --runtime containerd@1.7 --platform linux/amd64 --platform linux/arm64 \
        --mirror "registry.k8s.io=http://127.0.0.1:$port" --cache-dir "$d/cache" --no-progress -o "$d/b.tar" >/dev/null 2>&1
    else
      node "$cli" create --kubernetes-version v1.31.6 --runtime containerd@1.6 --platform linux/amd64 --platform linux/arm64 \
        --mirror "registry.k8s.io=$open" --mirror "docker.io=$open" --cache-dir "$d/cache" --no-progress -o "$d/b.tar" >/dev/null 2>&1
    fi
    sum="$(sha256sum <"$d/b.tar" | cut -c1-64) $(sha256sum <"$d/b.install.sh" | cut -c1-64)"
    echo "$set $cli: bundle+install.sh sha256 $sum ($(stat -c %s "$d/b.tar") bytes)"
    sums+=("$sum")
  done
  [ "${sums[0]}" = "${sums[1]}" ] || status=DIFFERENT
done
echo "$status"
[ $status = same ]
