#!/usr/bin/env bash
# Regenerate fixtures/bundles/demo-upstream.tar (the README demo's stand-in for registry.k8s.io, served by
# `kubeferry serve`). Deterministic: rerunning gives the same bytes. Source: test/serve/gen-demo-fixture.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null 2>&1 || true   # tsc emits even when unrelated files have type errors
exec node dist/test/serve/gen-demo-fixture.js "$@"
