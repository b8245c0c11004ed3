# --- runtime detection ------------------------------------------------------------------------------------
ctr_kind=ctr
kubelet_endpoint() {
  for ke_file in /var/lib/kubelet/kubeadm-flags.env /var/lib/kubelet/config.yaml; do
    [ -r "$ke_file" ] || continue
    ke_value=$(sed -n 's/.*container-runtime-endpoint[=:] *"\{0,1\}\([^" ]*\).*/\1/p; s/.*containerRuntimeEndpoint: *"\{0,1\}\([^" ]*\).*/\1/p' "$ke_file" | head -n 1)
    [ -n "$ke_value" ] && { printf '%s\n' "$ke_value"; return 0; }
  done
  return 0
}
detect_runtime() {
  dr_looked='--address/CONTAINERD_ADDRESS'
  if [ "$address_given" = 1 ] || [ -n "$address" ]; then runtime=containerd; return 0; fi
  dr_endpoint=$(kubelet_endpoint)
  case $dr_endpoint in
    *cri-dockerd*) runtime=docker; return 0 ;;
    *crio*) runtime=cri-o; return 0 ;;
    *k3s*) runtime=k3s; return 0 ;;
    *containerd*) runtime=containerd; address=${dr_endpoint#unix://}; return 0 ;;
  esac
  dr_looked="$dr_looked, kubelet's container-runtime-endpoint"
  if [ -S /run/k3s/containerd/containerd.sock ]; then
    if have k3s; then runtime=k3s; return 0; fi
    if [ -x /var/lib/rancher/rke2/bin/ctr ]; then runtime=rke2; return 0; fi
    if have ctr; then runtime=containerd; address=/run/k3s/containerd/containerd.sock; return 0; fi
  fi
  dr_looked="$dr_looked, /run/k3s/containerd/containerd.sock (k3s/rke2)"
  if [ -S /run/containerd/containerd.sock ] && have ctr; then runtime=containerd; return 0; fi
  dr_looked="$dr_looked, /run/containerd/containerd.sock with ctr"
  if [ -S /run/crio/crio.sock ] && { have skopeo || have podman; }; then runtime=cri-o; return 0; fi
  dr_looked="$dr_looked, /run/crio/crio.sock with skopeo or podman"
  if have docker && { [ -n "${DOCKER_HOST:-}" ] || [ -S /var/run/docker.sock ]; }; then runtime=docker; return 0; fi
  dr_looked="$dr_looked, docker (DOCKER_HOST or /var/run/docker.sock)"
  if have podman; then runtime=podman; return 0; fi
  if have nerdctl && have ctr; then runtime=nerdctl; return 0; fi
  die 3 "no container runtime found; looked for: $dr_looked, podman, nerdctl. Pass --runtime NAME (and --address SOCKET)"
}
[ "$runtime" = auto ] && detect_runtime

case $runtime in
  containerd|nerdctl) address=${address:-/run/containerd/containerd.sock} ;;
  k3s|rke2) address=${address:-/run/k3s/containerd/containerd.sock} ;;
esac
address=${address#unix://}
case $runtime in
  containerd|nerdctl)
    have ctr || die 3 "runtime $runtime: ctr (containerd's CLI) is not on PATH"
    [ "$runtime" = containerd ] || have nerdctl || die 3 "runtime nerdctl: nerdctl is not on PATH" ;;
  k3s) have k3s || die 3 "runtime k3s: the k3s binary is not on PATH"; ctr_kind=k3s ;;
  rke2)
    if [ -x /var/lib/rancher/rke2/bin/ctr ]; then ctr_kind=rke2; else have ctr || die 3 "runtime rke2: /var/lib/rancher/rke2/bin/ctr not found"; fi ;;
  docker)
    have docker || die 3 "runtime docker: the docker CLI is not on PATH"
    if [ -n "$address" ] && [ "$address_given" = 1 ]; then
      case $address in *://*) DOCKER_HOST=$address ;; *) DOCKER_HOST=unix://$address ;; esac
      export DOCKER_HOST
    fi ;;
  podman) have podman || die 3 "runtime podman: podman is not on PATH" ;;
  cri-o) have skopeo || have podman || die 3 "runtime cri-o: skopeo or podman is needed to write into containers-storage" ;;
esac

run_ctr() {
  case $ctr_kind in
    k3s) k3s ctr --address "$address" --namespace "$namespace" "$@" ;;
    rke2) /var/lib/rancher/rke2/bin/ctr --address "$address" --namespace "$namespace" "$@" ;;
    *) ctr --address "$address" --namespace "$namespace" "$@" ;;
  esac
}

# containerd's images into $tmp/ls (ctr_ls_start: in the background, cs_ls its pid) and, for this host's own platform,
# which of them are complete into $tmp/check (ctr_check). Each ctr start costs ~20 ms: they run concurrently, and
# the check only where its answer matters.
host_platform_matches=0
case $machine in
  x86_64) [ "$platform" = linux/amd64 ] && host_platform_matches=1 ;;
  aarch64|arm64) [ "$platform" = linux/arm64 ] && host_platform_matches=1 ;;
esac
: >"$tmp/check" || die 6 "cannot write scratch files in $tmp (disk full?)"
ctr_ls_start() {
  run_ctr images ls >"$tmp/ls" 2>"$tmp/err" &
  cs_ls=$!
}
ctr_check() {
  [ "$host_platform_matches" = 1 ] || return 0
  run_ctr images check >"$tmp/check" 2>/dev/null || : >"$tmp/check"
}

# Prints "VALUE|LINE|STYLE" for the sandbox setting of a containerd config (1.x sandbox_image, 2.x pinned_images.sandbox).
containerd_sandbox() {
  awk '
    /^[ \t]*\[/ { section = $0 }
    /^[ \t]*sandbox_image[ \t]*=/ { v = $0; sub(/^[^=]*=[ \t]*/, "", v); gsub(/["\047]/, "", v); sub(/[ \t]*(#.*)?$/, "", v); print v "|" NR "|1"; exit }
    /^[ \t]*sandbox[ \t]*=/ && section ~ /pinned_images/ { v = $0; sub(/^[^=]*=[ \t]*/, "", v); gsub(/["\047]/, "", v); sub(/[ \t]*(#.*)?$/, "", v); print v "|" NR "|2"; exit }
  ' "$1"
}
# The containerd config preflight reads (pf_file) and its sandbox setting (pf_found); when the file sets none,
# `containerd config dump` (containerd's built-in default) starts in the background into $tmp/dump (pf_dump: its pid).
containerd_preflight_start() {
  pf_dump=''
  pf_found=''
  pf_file=$config
  if [ -z "$pf_file" ]; then
    case $runtime in
      k3s) pf_file=/var/lib/rancher/k3s/agent/etc/containerd/config.toml ;;
      rke2) pf_file=/var/lib/rancher/rke2/agent/etc/containerd/config.toml ;;
      *) pf_file=/etc/containerd/config.toml ;;
    esac
  fi
  [ -n "$suggested_sandbox" ] || return 0
  [ -r "$pf_file" ] && pf_found=$(containerd_sandbox "$pf_file")
  if [ -z "$pf_found" ] && have containerd && [ "$runtime" = containerd ]; then
    if [ -r "$pf_file" ]; then containerd --config "$pf_file" config dump >"$tmp/dump" 2>/dev/null &
    else containerd --config /dev/null config dump >"$tmp/dump" 2>/dev/null &
    fi
    pf_dump=$!
  fi
  return 0
}

case $runtime in
  containerd|nerdctl|k3s|rke2)
    [ -S "$address" ] || die 3 "runtime $runtime: no containerd socket at $address; is containerd running? (--address SOCKET)"
    ctr_ls_start
    containerd_preflight_start
    wait "$cs_ls" || die 3 "runtime $runtime: cannot reach containerd at $address: $(tail -n 1 "$tmp/err")"
    runtime_desc="$runtime ($address, namespace $namespace)" ;;
  docker)
    docker version >/dev/null 2>"$tmp/err" || die 3 "runtime docker: cannot reach the docker daemon${DOCKER_HOST:+ at $DOCKER_HOST}: $(tail -n 1 "$tmp/err")"
    runtime_desc="docker${DOCKER_HOST:+ ($DOCKER_HOST)}" ;;
  *) runtime_desc=$runtime ;;
esac
say "kubeferry: runtime $runtime_desc"

# --- preflight: the runtime's sandbox image ---------------------------------------------------------------
normalize_ref() {
  nr=$1
  case $nr in
    */*) case ${nr%%/*} in *.*|*:*|localhost) ;; *) nr=docker.io/$nr ;; esac ;;
    *) nr=docker.io/library/$nr ;;
  esac
  case $nr in docker.io/*/*) ;; docker.io/*) nr=docker.io/library/${nr#docker.io/} ;; esac
  case ${nr##*/} in *:*|*@*) ;; *) nr=$nr:latest ;; esac
}
# bundle_has REF: the bundle holds REF (normalized) for $platform
bundle_has() {
  normalize_ref "$1"
  while read -r bh_name _; do [ "$bh_name" != "$nr" ] || return 0; done <"$tmp/images"
  return 1
}

preflight_warn() { # preflight_warn RUNTIME CONFIGURED SOURCE FIX
  warn "$1 is configured to use sandbox image $2 ($3), which this bundle does not hold: pods will fail with 'failed to get sandbox image' on an offline node."
  warn "  fix: $4"
}
preflight() {
  case $runtime in
    containerd|nerdctl|k3s|rke2)
      # pf_file, pf_found and pf_dump come from containerd_preflight_start
      pf_source="$pf_file line ${pf_found#*|}"
      pf_source=${pf_source%|*}
      if [ -n "$pf_dump" ]; then
        wait "$pf_dump"
        pf_found=$(containerd_sandbox "$tmp/dump")
        pf_source="containerd's built-in default; $pf_file does not set it"
      fi
      [ -n "$pf_found" ] || return 0
      pf_value=${pf_found%%|*}
      pf_style=${pf_found##*|}
      bundle_has "$pf_value" && return 0
      if [ "$pf_style" = 2 ]; then
        pf_fix="in $pf_file under [plugins.\"io.containerd.cri.v1.images\".pinned_images] set: sandbox = \"$suggested_sandbox\" (then restart containerd)"
      else
        pf_fix="in $pf_file under [plugins.\"io.containerd.grpc.v1.cri\"] set: sandbox_image = \"$suggested_sandbox\" (then restart containerd)"
      fi
      [ "$runtime" = k3s ] && pf_fix="start k3s with --pause-image $suggested_sandbox"
      preflight_warn "$runtime" "$pf_value" "$pf_source" "$pf_fix" ;;
    cri-o)
      pf_value=''
      pf_source=''
      for pf_file in ${config:-/etc/crio/crio.conf /etc/crio/crio.conf.d/*.conf}; do
        [ -r "$pf_file" ] || continue
        pf_line=$(awk '/^[ \t]*pause_image[ \t]*=/ { v = $0; sub(/^[^=]*=[ \t]*/, "", v); gsub(/["\047]/, "", v); sub(/[ \t]*(#.*)?$/, "", v); print v "|" NR }' "$pf_file" | tail -n 1)
        [ -n "$pf_line" ] && { pf_value=${pf_line%|*}; pf_source="$pf_file line ${pf_line#*|}"; pf_where=$pf_file; }
      done
      [ -n "$pf_value" ] || return 0
      bundle_has "$pf_value" && return 0
      preflight_warn cri-o "$pf_value" "$pf_source" "in $pf_where under [crio.image] set: pause_image = \"$suggested_sandbox\" (then restart crio)" ;;
  esac
  pf_kubelet=''
  [ -r /var/lib/kubelet/kubeadm-flags.env ] &&
    pf_kubelet=$(sed -n 's/.*--pod-infra-container-image[= ]\([^ "]*\).*/\1/p' /var/lib/kubelet/kubeadm-flags.env | head -n 1)
  if [ -n "$pf_kubelet" ] && ! bundle_has "$pf_kubelet"; then
    preflight_warn kubelet "$pf_kubelet" "--pod-infra-container-image in /var/lib/kubelet/kubeadm-flags.env" "set --pod-infra-container-image=$suggested_sandbox there (or drop the deprecated flag and set the runtime's sandbox image)"
  fi
  return 0
}

