# --- bundle checks ----------------------------------------------------------------------------------------
verified=''
vb_entries=''
verify_bundle() {
  [ -n "$verified" ] && return 0
  verify_structure
  verify_checksums
  verify_signatures # 15-signatures.sh
  say "kubeferry: $verified"
}
# bundle_bad MESSAGE: the bundle is not as written. From parts, name the damaged part first when NAME.parts.sha256
# lists them (a swapped or corrupted part breaks the tar before any checksum is compared).
bundle_bad() {
  if [ "$parted" = 1 ]; then
    check_part_sums
    [ "$parts_listed" = 1 ] || die 4 "$* (read from $part_count parts, ${bundle##*/}.001 to $(part_name "$part_count"), with no $(parts_sums) to tell which part is damaged: one may be truncated, swapped or missing after the last; copy the parts again with their .parts.sha256)"
  fi
  die 4 "$*"
}
# Sets vb_entries (the entry count) and data_end (the byte offset where the last entry's data ends: its
# end-of-archive marker follows).
verify_structure() {
  [ -z "$vb_entries" ] || return 0
  have tar || bundle_bad "tar is needed to read $bundle"
  # Structure, from the tar's headers alone, before anything else reads the tar: exactly the entries kubeferry wrote
  # for this bundle, each once, each a regular file of its size. This refuses ../ and absolute names, links,
  # duplicates (a second index.json), oversized files and extra entries (a tar bomb).
  bundle_listing ||
    bundle_bad "bundle $bundle is not a readable tar ($(head -n 1 "$tmp/tar.err")): corrupt or truncated; copy it again. Nothing was imported"
  # tar warns about names it would rewrite (a leading / or ../); busybox tar lists them already rewritten
  if [ -s "$tmp/tar.err" ]; then
    bundle_bad "bundle $bundle holds entries kubeferry never writes ($(head -n 1 "$tmp/tar.err")): it was tampered with; nothing was imported"
  fi
  awk -v offsets="$tmp/offsets" '
    NR == FNR { size[$1] = $2; expected++; next }
    bad { next }
    { # GNU tar: MODE UID/GID SIZE DATE TIME NAME; busybox tar: the same with seconds in TIME
      name = $6
      for (i = 7; i <= NF; i++) name = name " " $i
      shown = length(name) > 120 ? substr(name, 1, 120) "..." : name
      type = substr($1, 1, 1)
      if (type != "-") {
        what = type == "l" ? "a symbolic link" : type == "h" ? "a hard link" : type == "d" ? "a directory" : "not a regular file"
        msg = "entry " shown " is " what; bad = 1
      } else if (name ~ /^\// || name ~ /(^|\/)\.\.(\/|$)/) { msg = "entry " shown " has an absolute or ../ path"; bad = 1 }
      else if (!(name in size)) { msg = "unexpected entry " shown; bad = 1 }
      else if (name in seen) { msg = "entry " shown " appears twice"; bad = 1 }
      else if ($3 != size[name]) { msg = "entry " shown " is " $3 " bytes, expected " size[name]; bad = 1 }
      seen[name] = 1
      print name, end + 512, $3 >offsets # where its data starts: after its header block
      end += 512 + int(($3 + 511) / 512) * 512 # its header block, its data padded to whole blocks
    }
    END {
      if (bad) { print msg " (the tar lists " FNR " entries, " expected " expected)"; exit 1 }
      for (n in size) if (!(n in seen)) {
        if (n ~ /^blobs\/sha256\//) print "missing blob sha256:" substr(n, 14); else print "missing " n
        exit 1
      }
      printf "%d %.0f\n", expected, end
    }' "$tmp/entries" "$tmp/listing" >"$tmp/structure" ||
    bundle_bad "bundle $bundle is not the one this script was written for: $(head -n 1 "$tmp/structure"); it is incomplete or was tampered with. Nothing was imported"
  read -r vb_entries data_end <"$tmp/structure"
  # The small files runtimes read (index.json, manifest.json, docker fragments), by sha256, in one pass.
  set --
  while read -r vb_path _ vb_sum; do [ "$vb_sum" = - ] || set -- "$@" "$vb_path"; done <"$tmp/entries"
  if ! mkdir "$tmp/small" || ! extract_small "$@" 2>"$tmp/tar.err"; then
    bundle_bad "cannot read $* from $bundle ($(head -n 1 "$tmp/tar.err")); nothing was imported"
  fi
  (cd "$tmp/small" && sha256sum "$@") >"$tmp/small.sums" 2>"$tmp/tar.err" || bundle_bad "cannot hash $* from $bundle ($(head -n 1 "$tmp/tar.err")); nothing was imported"
  awk 'NR == FNR { want[$1] = $3; next }
    { sub(/^\*/, "", $2); if (want[$2] != $1) { print $2 " (sha256 " $1 ", expected " want[$2] ")"; exit 1 } }' \
    "$tmp/entries" "$tmp/small.sums" >"$tmp/structure" ||
    bundle_bad "bundle $bundle: $(head -n 1 "$tmp/structure") is not the one this script was written for: the bundle was changed after it was made; nothing was imported"
}
# The whole-file checksum from BUNDLE.sha256 (vb_expected), if there is one.
expected_checksum() {
  [ -f "$bundle.sha256" ] || return 1
  have sha256sum || die 4 "sha256sum is needed to check $bundle.sha256"
  read -r vb_expected _ <"$bundle.sha256" || vb_expected=''
  return 0
}
# sha256 of a file, the hex digest first on the line: openssl where it works (it uses the CPU's SHA instructions,
# several times faster than coreutils' sha256sum), else sha256sum.
sha256_file() {
  if have openssl && openssl dgst -sha256 -r <"$1" 2>/dev/null; then return 0; fi
  sha256sum <"$1"
}
# Whether openssl hashes here (then a whole bundle is hashed in about a tenth of a second per 100 MB).
fast_hash() { have openssl && printf x | openssl dgst -sha256 -r >/dev/null 2>&1; }
sha256_stream() { if fast_hash; then openssl dgst -sha256 -r; else sha256sum; fi; } # stdin's sha256, hex first
# tar's listing of the bundle into $tmp/listing. Parts are read once, as one stream, and the same pass hashes the
# whole bundle through a FIFO into $tmp/bundle.whole (where mkfifo is), so the checksum needs no second read.
bundle_listing() {
  if [ "$parted" = 0 ]; then
    tar -tvf "$bundle" >"$tmp/listing" 2>"$tmp/tar.err"
    return
  fi
  : >"$tmp/bundle.whole"
  if mkfifo "$tmp/whole.fifo" 2>/dev/null; then
    sha256_stream <"$tmp/whole.fifo" >"$tmp/bundle.whole" 2>/dev/null &
    bl_hash=$!
    # tar stops at the end-of-archive marker: cat reads what follows it, for the hash
    bundle_cat | tee "$tmp/whole.fifo" | { tar -tvf - >"$tmp/listing" 2>"$tmp/tar.err"; bl_status=$?; cat >/dev/null; exit "$bl_status"; }
    bl_status=$?
    wait "$bl_hash" || : >"$tmp/bundle.whole"
    return "$bl_status"
  fi
  bundle_cat | tar -tvf - >"$tmp/listing" 2>"$tmp/tar.err"
}
entry_at() { awk -v p="$1" '$1 == p { print $2, $3; exit }' "$tmp/offsets"; } # OFFSET SIZE of an entry's data
# extract_small PATH...: those entries into $tmp/small (from parts: by their offsets, read across the parts)
extract_small() {
  if [ "$parted" = 0 ]; then
    tar -xf "$bundle" -C "$tmp/small" "$@"
    return
  fi
  for es_path; do
    es_at=$(entry_at "$es_path")
    [ -n "$es_at" ] || return 1
    case $es_path in */*) mkdir -p "$tmp/small/${es_path%/*}" || return 1 ;; esac
    bundle_range "${es_at% *}" "${es_at#* }" >"$tmp/small/$es_path" || return 1
  done
}
blob_bytes() { # blob_bytes HEX: the blob's bytes on stdout
  if [ "$parted" = 0 ]; then
    tar -xOf "$bundle" "blobs/sha256/$1"
    return
  fi
  bb_at=$(entry_at "blobs/sha256/$1")
  bundle_range "${bb_at% *}" "${bb_at#* }"
}
bundle_sha256() { # the whole bundle's sha256 (hex): from the listing's pass over the parts when it ran
  if [ "$parted" = 0 ]; then
    sha256_file "$bundle" | awk '{ print $1 }'
    return
  fi
  bs_whole=''
  [ ! -s "$tmp/bundle.whole" ] || read -r bs_whole _ <"$tmp/bundle.whole"
  if [ -n "$bs_whole" ]; then printf '%s\n' "$bs_whole"; else bundle_cat | sha256_stream | awk '{ print $1 }'; fi
}
# Each part against NAME.parts.sha256 (a read of every part): dies naming the first part that is corrupt or swapped.
check_part_sums() {
  [ "$parts_listed" = 1 ] || return 0
  cs_sums=$(parts_sums)
  cs_i=1
  while [ "$cs_i" -le "$part_count" ]; do
    cs_want=$(awk -v n="$cs_i" 'NR == n { print $1; exit }' "$cs_sums")
    cs_part=$(part_name "$cs_i")
    cs_got=$(sha256_file "$cs_part" | awk '{ print $1 }')
    if [ "$cs_got" != "$cs_want" ]; then
      cs_other=$(awk -v h="$cs_got" '$1 == h { sub(/^\*/, "", $2); print $2; exit }' "$cs_sums")
      [ -z "$cs_other" ] || die 4 "part $cs_part holds the bytes ${cs_sums##*/} lists for $cs_other: the parts were swapped or renamed; give each part its own name again. Nothing was imported"
      die 4 "part $cs_part does not match its sha256 in ${cs_sums##*/} (sha256 ${cs_got:-unreadable}, expected $cs_want): it is corrupt; copy ${cs_part##*/} again from the source. Nothing was imported"
    fi
    cs_i=$((cs_i + 1))
  done
}
checksum_mismatch() { # checksum_mismatch ACTUAL
  [ "$parted" = 0 ] || check_part_sums
  die 4 "bundle $bundle does not match $bundle.sha256 (sha256 ${1:-unreadable}, expected $vb_expected): it is corrupt or incomplete; copy it again. Nothing was imported"
}
verify_checksums() {
  if expected_checksum; then
    vb_actual=''
    if [ -n "$early_hash" ] && wait "$early_hash"; then read -r vb_actual _ <"$tmp/bundle.early" || vb_actual=''; fi
    early_hash=''
    [ -n "$vb_actual" ] || vb_actual=$(bundle_sha256)
    [ "$vb_expected" = "$vb_actual" ] || checksum_mismatch "$vb_actual"
    verified="structure ok ($vb_entries entries), checksum ok ($bundle.sha256)"
  elif [ "$sig_need" -gt 0 ]; then
    [ "$parted" = 0 ] || check_part_sums
    sig_whole_hash # the signed statement names the whole file's sha256
    verified="structure ok ($vb_entries entries), whole bundle hashed (no $bundle.sha256 beside the bundle)"
  elif [ "$parts_listed" = 1 ]; then
    check_part_sums
    verified="structure ok ($vb_entries entries), $part_count parts checked against $(parts_sums) (no $bundle.sha256 beside them)"
  else
    # No checksum file: hash this platform's blobs one by one.
    while read -r vb_hex vb_size; do
      vb_sum=$(blob_bytes "$vb_hex" | sha256sum | awk '{ print $1 }')
      [ "$vb_sum" = "$vb_hex" ] || die 4 "blob sha256:$vb_hex in $bundle has sha256 $vb_sum ($vb_size bytes): the bundle is corrupt; copy it again. Nothing was imported"
    done <"$tmp/blobs"
    verified="structure ok ($vb_entries entries), $(wc -l <"$tmp/blobs" | tr -d ' ') blobs of $platform hashed (no $bundle.sha256 beside the bundle)"
  fi
}

if [ "$verify_only" = 1 ]; then vb_doing=checking; else vb_doing=importing; fi
say "kubeferry: bundle $bundle ($BUNDLE_PLATFORMS); $vb_doing $image_count images for $platform"
# With openssl the whole-file hash starts now, in the background, while the structure is checked and the runtime is
# asked what it holds; verify_checksums waits for it (a failed run falls back to hashing in the foreground).
if [ -z "$early_hash" ] && [ "$dry_run" = 0 ] && [ "$parted" = 0 ] && [ -f "$bundle.sha256" ] && fast_hash; then # (signed: started in 15-signatures.sh)
  openssl dgst -sha256 -r <"$bundle" >"$tmp/bundle.early" 2>/dev/null &
  early_hash=$!
fi
if [ "$verify_only" = 1 ]; then
  verify_bundle
  say "kubeferry: bundle verified; nothing imported (--verify-only)"
  exit 0
fi

