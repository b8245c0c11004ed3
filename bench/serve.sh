#!/usr/bin/env bash
# Pull throughput of `kubeferry serve` vs docker-registry with 8 concurrent clients, and serve's RSS under load.
# Usage: bash bench/serve.sh [--layer-mb 8] [--clients 8] [--rounds 3]   (prints one JSON line, a summary on stderr)
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build >/dev/null 2>&1 || true   # the whole build: a bare tsc would leave oclif.manifest.json older than dist/ (bin/run.js then ignores it, and every start pays)
exec node dist/bench/serve.js "$@"
