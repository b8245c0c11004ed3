#!/usr/bin/env bash
# Install the Debian packages the test peers need, only those missing. Idempotent; quick when all present.
set -euo pipefail

PACKAGES=(docker-registry skopeo containerd docker.io runc apache2-utils shellcheck dash busybox-static openssl iproute2 podman)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-peers: all test peers present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-peers: missing Debian packages: ${missing[*]} (run as root: bash scripts/install-peers.sh)" >&2
  exit 1
fi

echo "install-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting system services (docker, containerd): the tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [[ -n $created_policy ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-peers: done"
