#!/usr/bin/env bash
# THE test command: bash scripts/test.sh [ava test files…]
# Installs the peers' Debian packages when missing (as root), installs npm dependencies, builds, then runs
# every test against real peers (docker-registry ×3, token server, containerd, dockerd) started and torn
# down by dist/test/harness/run.js. The whole suite (no arguments, or KUBEFERRY_TEST_SEA=1) also builds the
# single files (npm run package) and runs the end-to-end CLI tests again against dist/sea/kubeferry-linux-amd64
# with Node.js absent from its PATH. The last line is `tests: N passed, N failed` (both runs counted).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! bash scripts/install-peers.sh; then
  if [[ ${CI:-} == true ]]; then
    echo "test.sh: FAILED: the test peers' Debian packages could not be installed" >&2
    exit 1
  fi
  echo "test.sh: some peers are missing; tests that need them will be skipped" >&2
fi

# npm ci wipes node_modules; skip it when node_modules already matches package-lock.json.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json || -n ${KUBEFERRY_NPM_CI:-} ]]; then
  npm ci --no-audit --no-fund
fi

# tsc emits JavaScript even when it reports type errors: run the tests anyway, and fail the run at the end.
if ! npm run --silent build; then
  echo "test.sh: tsc reported type errors (above); the run will fail after the tests" >&2
  export KUBEFERRY_BUILD_FAILED=1
fi

# --- the single file (issue 21) -----------------------------------------------------------------------------------
# The CLI tests that carry a bundle through the whole flow (create → install.sh, push, serve, verify, load, config,
# --with-tool), run a second time against the amd64 single file. In that run (KUBEFERRY_TEST_SEA_SUBSET=1) these files
# leave out their tests marked `firstRunOnly('why')` (test/helpers/cli.ts): those that never start the CLI, or check
# only argument parsing or messages, the same code in both builds. grep -rn firstRunOnly test/ lists them.
SEA_TESTS=(dist/test/e2e/*.test.js dist/test/load/install.test.js dist/test/push/push.test.js dist/test/serve/cli.test.js
  dist/test/bundle/verify.test.js dist/test/bundle/create.test.js dist/test/config/config.test.js dist/test/sea/with-tool.test.js
  dist/test/trust/consumers.test.js dist/test/delta/diff.test.js dist/test/bundle/parts-install.test.js dist/test/cli/stdout.test.js)
sea=${KUBEFERRY_TEST_SEA:-}
[[ $# -eq 0 && -z $sea ]] && sea=1
sea_failed=''
if [[ $sea == 1 ]]; then
  # The arm64 file's code cache is made by the arm64 node under qemu-user, which also runs it in test/sea; without
  # qemu, the file is built without a code cache and test/sea checks its ELF machine and blob only.
  if ! command -v qemu-aarch64-static >/dev/null || [[ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]]; then
    if [[ $(id -u) == 0 ]] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross >/tmp/kubeferry-qemu-install.log 2>&1; then :
    else export KUBEFERRY_TEST_NO_QEMU="qemu-user-static could not be installed (see /tmp/kubeferry-qemu-install.log)"; echo "test.sh: $KUBEFERRY_TEST_NO_QEMU" >&2
    fi
  fi
  if ! node scripts/package/build.mjs; then
    echo "test.sh: FAILED: npm run package (above) could not build the single files" >&2
    sea_failed='npm run package failed'
  fi
fi

logs=$(mktemp -d /tmp/kubeferry-test-logs-XXXXXX)
trap 'rm -rf "$logs"' EXIT
set +e
node dist/test/harness/run.js "$@" | tee "$logs/main"
main_rc=${PIPESTATUS[0]}
sea_rc=0
if [[ $sea == 1 && -z $sea_failed ]]; then
  echo "test.sh: the end-to-end CLI tests against dist/sea/kubeferry-linux-amd64, Node.js absent from its PATH" >&2
  KUBEFERRY_TEST_SEA_SUBSET=1 KUBEFERRY_TEST_CLI=$PWD/dist/sea/kubeferry-linux-amd64 node dist/test/harness/run.js "${SEA_TESTS[@]}" | tee "$logs/sea"
  sea_rc=${PIPESTATUS[0]}
  [[ $sea_rc == 0 ]] || sea_failed='its end-to-end tests failed (above)'
fi
set -e
[[ -z $sea_failed ]] || echo "test.sh: FAILED: the single file: $sea_failed" >&2
# One closing line for both runs: the sum of each run's `tests: …` line.
tail -q -n 1 "$logs"/* | awk '
  /^tests: / { for (i = 2; i <= NF; i += 2) { n = $i + 0; k = $(i + 1); sub(/,$/, "", k); sum[k] += n; if (!(k in seen)) { seen[k] = 1; order[++count] = k } } }
  END {
    line = "tests: " (sum["passed"] + 0) " passed, " (sum["failed"] + 0) " failed"
    for (j = 1; j <= count; j++) if (order[j] != "passed" && order[j] != "failed" && sum[order[j]] > 0) line = line ", " sum[order[j]] " " order[j]
    print line
  }'
[[ $main_rc == 0 && $sea_rc == 0 && -z $sea_failed ]]
