# --- what is already there --------------------------------------------------------------------------------
# containerd: $tmp/ls and $tmp/check; docker, podman, cri-o: $tmp/state lines NAME ID
read_state() {
  case $runtime in
    containerd|nerdctl|k3s|rke2)
      ctr_ls_start
      # ctr exits 0 from an import only once it unpacked every image it imported for $platform: complete content
      if [ "$import_complete" = 1 ]; then : >"$tmp/check"; else ctr_check; fi
      wait "$cs_ls" || : ;;
    docker)
      : >"$tmp/state"
      while read -r rs_name _ _ _ _ _; do
        rs_id=$(docker image inspect --format '{{.Id}}' "$rs_name" 2>/dev/null) && printf '%s %s\n' "$rs_name" "$rs_id" >>"$tmp/state"
      done <"$tmp/images" ;;
    podman|cri-o)
      : >"$tmp/state"
      while read -r rs_name _ rs_pdigest _ _ _; do
        if have podman; then
          rs_id=$(podman image inspect --format '{{.Id}}' "$rs_name" 2>/dev/null) && printf '%s sha256:%s\n' "$rs_name" "${rs_id#sha256:}" >>"$tmp/state"
        else
          rs_raw=$(skopeo inspect --raw "containers-storage:$rs_name" 2>/dev/null | sha256sum | awk '{ print $1 }') &&
            [ "sha256:$rs_raw" = "$rs_pdigest" ] && printf '%s %s\n' "$rs_name" "$rs_pdigest" >>"$tmp/state"
        fi
      done <"$tmp/images" ;;
  esac
}
# One awk pass over what the runtime holds: a line per image of $tmp/images, in its order,
#   NAME DIGEST CONFIG_DIGEST PIN PRESENT PINNED TODO
# PRESENT 1: there with the expected digest (containerd: the upstream digest, and complete, since incomplete content,
# e.g. only another platform's blobs, does not count; docker: the config digest; podman, cri-o: either digest);
# PINNED 1: carries the pin label; TODO 1: listed in $tmp/todo.
classify() {
  case $runtime in
    containerd|nerdctl|k3s|rke2) cl_kind=containerd; cl_state=/dev/null; cl_ls=$tmp/ls ;;
    *) cl_kind=$runtime; cl_state=$tmp/state; cl_ls=/dev/null ;;
  esac
  awk -v kind="$cl_kind" -v label="$PIN_LABEL" '
    FILENAME == ARGV[1] { held[$1 " " $2] = 1; next } # NAME ID
    FILENAME == ARGV[2] { # ctr images ls: REF TYPE DIGEST SIZE (two words) PLATFORMS LABELS
      if (FNR > 1) { held[$1 " " $3] = 1; if (index("," $NF ",", "," label ",") > 0) pinned[$1] = 1 }
      next
    }
    FILENAME == ARGV[3] { if (FNR > 1 && $4 != "complete") incomplete[$1] = 1; next } # ctr images check
    FILENAME == ARGV[4] { todo[$1] = 1; next }
    { # NAME DIGEST PLATFORM_DIGEST CONFIG_DIGEST PIN ROLE
      upstream = $1 " " $2; platform = $1 " " $3; image_id = $1 " " $4
      if (kind == "containerd") present = (upstream in held) && !($1 in incomplete)
      else if (kind == "docker") present = image_id in held
      else present = (platform in held) || (image_id in held)
      print $1, $2, $4, $5, present ? 1 : 0, ($1 in pinned) ? 1 : 0, ($1 in todo) ? 1 : 0
    }' "$cl_state" "$cl_ls" "$tmp/check" "$tmp/todo" "$tmp/images"
}
pins_supported() { case $runtime in containerd|nerdctl|k3s|rke2) return 0 ;; *) return 1 ;; esac; }

# containerd's image list was read when it answered (above); which images are complete matters only when some
# of them are listed with the expected digest (a first import has none).
import_complete=0
case $runtime in containerd|nerdctl|k3s|rke2) ;; *) read_state ;; esac
# Classifies what the runtime holds into $tmp/before; counts present, todo_count (names in $tmp/todo) and unpinned.
read_before() {
  : >"$tmp/todo" || die 6 "cannot write scratch files in $tmp (disk full?)"
  classify >"$tmp/before" || die 6 "cannot write scratch files in $tmp (disk full?)"
  present=0
  todo_count=0
  unpinned=0
  while read -r name _ _ pin ok is_pinned _; do
    if [ "$ok" = 1 ]; then
      present=$((present + 1))
    else
      todo_count=$((todo_count + 1))
      printf '%s\n' "$name" >>"$tmp/todo" || die 6 "cannot write scratch files in $tmp (disk full?)"
    fi
    if pins_supported && [ "$pin" = 1 ] && [ "$is_pinned" = 0 ]; then unpinned=$((unpinned + 1)); fi
  done <"$tmp/before"
}
read_before
if [ "$present" -gt 0 ] && pins_supported && [ "$host_platform_matches" = 1 ]; then
  ctr_check
  read_before
fi

summary() { # summary IMPORTED PRESENT MISSING PINNED
  say "summary: $platform into $runtime: $image_count images, $1 imported, $2 already present, $3 missing, $4 pinned"
}
if [ "$todo_count" -eq 0 ] && [ "$unpinned" -eq 0 ]; then
  [ -z "$suggested_sandbox" ] || preflight
  summary 0 "$present" 0 0
  exit 0
fi

# --- checks before anything changes -----------------------------------------------------------------------
# With openssl every check comes first and ctr then reads the bundle file itself: the hash costs less than feeding
# ctr through a pipe would. With sha256sum alone (several times slower) ctr imports while the whole bundle is hashed
# and checked against BUNDLE.sha256 (import_hashing), when the structure is as written and the tar's end-of-archive
# marker can be held back; otherwise every check comes first.
hash_during_import=0
if [ "$todo_count" -gt 0 ]; then
  case $runtime in
    containerd|k3s|rke2)
      if [ "$dry_run" = 0 ] && [ "$parted" = 0 ] && ! fast_hash && expected_checksum && verify_structure && [ "$data_end" -le $((bundle_size - END_OF_ARCHIVE)) ]; then
        hash_during_import=1
      else
        verify_bundle
      fi ;;
    *) verify_bundle ;;
  esac
  case $runtime in
    containerd|nerdctl|k3s|rke2)
      target_root=''
      for tr_file in "$config" /etc/containerd/config.toml; do
        if [ -z "$tr_file" ] || [ ! -r "$tr_file" ]; then continue; fi
        target_root=$(awk '/^[ \t]*\[/ { exit } /^[ \t]*root[ \t]*=/ { v = $0; sub(/^[^=]*=[ \t]*/, "", v); gsub(/["\047]/, "", v); sub(/[ \t]*(#.*)?$/, "", v); print v }' "$tr_file")
        [ -n "$target_root" ] && break
      done
      case $runtime in
        k3s) target_root=${target_root:-/var/lib/rancher/k3s/agent/containerd} ;;
        rke2) target_root=${target_root:-/var/lib/rancher/rke2/agent/containerd} ;;
        *) target_root=${target_root:-/var/lib/containerd} ;;
      esac
      need_space "$target_root" $((plan_bytes * 2)) "$image_count images of $platform (containerd root)" ;;
    docker)
      target_root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null)
      # docker load unpacks the whole tar into its own tmp first
      [ -n "$target_root" ] && need_space "$target_root" $((bundle_size + plan_bytes * 2)) "docker load of $bundle (docker root)" ;;
    podman|cri-o)
      need_space "$tmp" "$plan_bytes" "an OCI layout of $platform's blobs (TMPDIR)"
      target_root=/var/lib/containers/storage
      have podman && target_root=$(podman info --format '{{.Store.GraphRoot}}' 2>/dev/null)
      need_space "${target_root:-/var/lib/containers/storage}" $((plan_bytes * 2)) "$image_count images of $platform (containers-storage)" ;;
  esac
fi

# after the bundle checks, which containerd's config dump (started with the image list) runs alongside
[ -z "$suggested_sandbox" ] || preflight

if [ "$dry_run" = 1 ]; then
  while read -r name _; do say "would import $name"; done <"$tmp/todo"
  if pins_supported; then
    while read -r name _ _ _ pin _; do [ "$pin" = 1 ] && say "would pin $name ($PIN_LABEL)"; done <"$tmp/images"
  fi
  say "kubeferry: dry run, nothing changed"
  exit 0
fi

