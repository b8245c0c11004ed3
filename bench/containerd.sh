# Sourced by the bench scripts that import into containerd (install.sh, signing.sh): start_containerd DIR starts a
# containerd of its own with its config, root, state and socket (DIR/c.sock) in DIR, logging to DIR/containerd.log,
# and sets CONTAINERD_PID (the caller kills it on exit). Fails if the socket does not appear within 5 s.
start_containerd() {
  cat >"$1/config.toml" <<TOML
version = 2
root = "$1/root"
state = "$1/state"
[grpc]
  address = "$1/c.sock"
TOML
  containerd -c "$1/config.toml" >"$1/containerd.log" 2>&1 &
  CONTAINERD_PID=$!
  for _ in $(seq 50); do
    [ -S "$1/c.sock" ] && return 0
    sleep 0.1
  done
  echo "containerd did not start within 5 s; its log: $1/containerd.log" >&2
  return 1
}
