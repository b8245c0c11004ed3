# --- a delta bundle: does the runtime hold what it relies on? ----------------------------------------------
# (only in a delta's install.sh) The bundle leaves out layers its base holds. ctr import would create the images
# and then fail to unpack them, docker load would load the images before the first missing layer: so check first,
# and import nothing when a relied-on layer is not there. containerd: the blob in this namespace's content store;
# docker, podman: the layer chain (ChainID) among the images present, which is what docker load looks up.
dc_for=$(plan_data | awk -F'|' '$1 == "delta" { print $2 " " $3; exit }')
dc_kind=${dc_for%% *}
case ",${dc_for#* }," in
  *,load,*) ;;
  *) die 7 "this is a delta bundle made against a $dc_kind: it is for \`kubeferry push\` into that registry, not for a node; nothing was imported" ;;
esac
plan_data | awk -F'|' -v p="$platform" '$1 == "relies" && $2 == p { print $3, "sha256:" $4, "sha256:" $5 }' >"$tmp/relies" ||
  die 6 "cannot write scratch files in $tmp (disk full?)"
# One held key a line into $tmp/held: containerd blob digests, or docker/podman ChainIDs.
held_chains() { # held_chains CLI
  "$1" images -aq --no-trunc 2>/dev/null | sort -u | while read -r hc_id; do
    hc_prev=''
    "$1" image inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "$hc_id" 2>/dev/null | while read -r hc_diff; do
      [ -n "$hc_diff" ] || continue
      if [ -z "$hc_prev" ]; then hc_prev=$hc_diff; else hc_prev=sha256:$(printf '%s %s' "$hc_prev" "$hc_diff" | sha256sum | awk '{ print $1 }'); fi
      printf '%s\n' "$hc_prev"
    done
  done
}
if [ -s "$tmp/relies" ]; then
  case $runtime in
    containerd|nerdctl|k3s|rke2) dc_key=2; run_ctr content ls -q >"$tmp/held" 2>"$tmp/err" || die 3 "cannot list containerd's content store: $(tail -n 1 "$tmp/err")" ;;
    docker) dc_key=3; held_chains docker >"$tmp/held" ;;
    podman|cri-o) dc_key=3; have podman || die 3 "runtime $runtime: podman is needed to check the layers this delta bundle relies on"; held_chains podman >"$tmp/held" ;;
  esac
  dc_missing=$(awk -v key="$dc_key" 'FILENAME == ARGV[1] { held[$1] = 1; next } !($key in held) && !seen[$1]++ { printf "%s%s", sep, $1; sep = ", " }' "$tmp/held" "$tmp/relies")
  if [ -n "$dc_missing" ]; then
    die 7 "this delta bundle relies on layers that $runtime does not hold; missing for: $dc_missing. Nothing was imported (import its base bundle first, or carry a full bundle)"
  fi
  say "kubeferry: delta bundle: $runtime holds the $(wc -l <"$tmp/relies" | tr -d ' ') layer uses it relies on"
fi
