# --- import -----------------------------------------------------------------------------------------------
docker_stream() { # the docker archive of $platform on stdout
  if [ "$docker_source" = - ]; then
    bundle_cat
  else
    { bundle_head_bytes $((bundle_size - END_OF_ARCHIVE)) && cat "$tmp/small/$docker_source"; } # the fragment checked by verify_bundle
  fi
}
oci_extract() { # this platform's blobs as an OCI layout in $tmp/kubeferry-oci
  mkdir -p "$tmp/kubeferry-oci" || die 6 "cannot create $tmp/kubeferry-oci"
  { printf 'oci-layout\nindex.json\n'; awk '{ print "blobs/sha256/" $1 }' "$tmp/blobs"; } >"$tmp/members"
  bundle_tar -xf - -C "$tmp/kubeferry-oci" -T "$tmp/members" 2>"$tmp/err" || die 6 "cannot extract $platform's blobs into $tmp/kubeferry-oci: $(tail -n 1 "$tmp/err")"
}
override_args() { # override_args PREFIX: skopeo (--override-) or podman (--) flags that select $platform
  oa_rest=${platform#*/}
  printf -- '%sos %s %sarch %s' "$1" "${platform%%/*}" "$1" "${oa_rest%%/*}"
  case $oa_rest in */*) printf -- ' %svariant %s' "$1" "${oa_rest#*/}" ;; esac
}
bundle_head_bytes() { if [ "$parted" = 0 ]; then head -c "$1" "$bundle"; else bundle_cat | head -c "$1"; fi; }
bundle_tar() { # bundle_tar ARGS...: tar ARGS with the bundle as the archive "-" (parts reach it as one stream)
  if [ "$parted" = 0 ]; then
    tar "$@" <"$bundle"
  else
    bundle_cat | tar "$@"
  fi
}
ctr_import() { # ctr reads a bundle file itself; parts reach it as one stream
  if [ "$parted" = 0 ]; then
    run_ctr images import --platform "$platform" "$bundle"
  else
    bundle_cat | run_ctr images import --platform "$platform" -
  fi
}
import_failed() {
  printf 'kubeferry: error: %s import failed:\n' "$runtime" >&2
  tail -n 5 "$tmp/import.log" >&2
  say "kubeferry: checking what the runtime holds now"
}
# bundle_head BYTES: the bundle's first BYTES (a multiple of 512) on stdout in 1 MiB writes where dd is there (head -c
# writes 4 KiB at a time: three times the CPU through a pipe, for the reader too); the last partial MiB is read in
# 512-byte blocks and written at once.
bundle_head() {
  if have dd; then
    bh_mib=$(($1 / 1048576))
    dd if="$bundle" bs=1048576 count="$bh_mib" 2>/dev/null &&
      dd if="$bundle" ibs=512 obs=1048576 skip=$((bh_mib * 2048)) count=$((($1 - bh_mib * 1048576) / 512)) 2>/dev/null
  else
    head -c "$1" "$bundle"
  fi
}
# ctr reads the bundle through a pipe while sha256_file hashes it. The pipe holds back the tar's end (everything after
# the last entry's data: the end-of-archive marker) until the hash matches BUNDLE.sha256: ctr creates images only
# once it has read the whole archive, so a bundle that fails the checksum gets none. ctr gets 512 bytes that are no
# tar header instead and fails; the blobs it stored meanwhile, referenced by no image, are collected at once.
import_hashing() {
  {
    sha256_file "$bundle" >"$tmp/bundle.sum" 2>/dev/null &
    ih_hash=$!
    bundle_head "$data_end"
    wait "$ih_hash"
    ih_actual=''
    read -r ih_actual _ <"$tmp/bundle.sum"
    if [ -n "$ih_actual" ] && [ "$ih_actual" = "$vb_expected" ]; then
      tail -c +$((data_end + 1)) "$bundle"
    else
      awk 'BEGIN { for (i = 0; i < 512; i++) printf "x" }'
    fi
  } | run_ctr images import --platform "$platform" - >"$tmp/import.log" 2>&1
  ih_status=$?
  vb_actual=''
  read -r vb_actual _ <"$tmp/bundle.sum" 2>/dev/null
  # no hash line (the bundle could not be read): once more in the foreground, for the message
  [ -n "$vb_actual" ] || vb_actual=$(sha256_file "$bundle" 2>/dev/null | awk '{ print $1 }')
  if [ "$vb_actual" != "$vb_expected" ]; then
    collect_garbage
    checksum_mismatch "$vb_actual"
  fi
  say "kubeferry: structure ok ($vb_entries entries), checksum ok ($bundle.sha256)"
  [ "$ih_status" = 0 ] && return 0
  import_failed
  return 1
}
# A synchronous removal of a fresh lease makes containerd collect, now, content that no image references.
collect_garbage() {
  cg_lease=$(run_ctr leases create 2>/dev/null) && run_ctr leases rm --sync "$cg_lease" >/dev/null 2>&1
  return 0
}

if [ "$todo_count" -gt 0 ]; then
  case $runtime in
    containerd|k3s|rke2)
      if [ "$hash_during_import" = 1 ]; then
        import_hashing && import_complete=1
      else
        if ctr_import >"$tmp/import.log" 2>&1; then import_complete=1; else import_failed; fi
      fi ;;
    nerdctl)
      if [ "$parted" = 0 ]; then
        nerdctl --address "$address" --namespace "$namespace" load --platform "$platform" -i "$bundle"
      else
        bundle_cat | nerdctl --address "$address" --namespace "$namespace" load --platform "$platform"
      fi >"$tmp/import.log" 2>&1 || import_failed ;;
    docker)
      docker_stream | docker load >"$tmp/import.log" 2>&1 || import_failed ;;
    podman|cri-o)
      oci_extract
      # shellcheck disable=SC2046 # word splitting of the override flags is intended
      while read -r name _ _ cdigest _ _; do
        grep -qx -- "$name" "$tmp/todo" || continue
        if ! have skopeo; then
          # podman 4.3 names an oci: pull after the layout's path, which must be a valid image name: pull by the
          # relative path from inside $tmp, name it by image id, drop the path's name after the loop.
          (cd "$tmp" && podman pull $(override_args --) "oci:kubeferry-oci:$name") >>"$tmp/import.log" 2>&1 &&
            podman tag "${cdigest#sha256:}" "$name" >>"$tmp/import.log" 2>&1
        else
          skopeo copy --quiet $(override_args --override-) "oci:$tmp/kubeferry-oci:$name" "containers-storage:$name" >>"$tmp/import.log" 2>&1
        fi || { import_failed; break; }
      done <"$tmp/images"
      have skopeo || podman untag localhost/kubeferry-oci:latest localhost/kubeferry-oci:latest >/dev/null 2>&1 || : ;;
  esac
fi

