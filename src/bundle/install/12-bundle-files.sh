# --- the bundle -------------------------------------------------------------------------------------------
# A bundle is one file, NAME.tar, or its parts NAME.tar.001, NAME.tar.002, ... (kubeferry create --split): plain
# consecutive byte ranges of NAME.tar, listed in order with their sha256 in NAME.parts.sha256. Parts are read in
# order as one stream or by offset, never joined on disk (a node has no room for two copies). $bundle is NAME.tar
# either way: NAME.tar.sha256, the whole bundle's checksum, sits beside the parts too.
parted=0
part_count=0
part_size=0
parts_listed=0
part_name() { printf '%s.%03d' "$bundle" "$1"; }
parts_sums() { # NAME.parts.sha256, beside NAME.tar
  ps_base=${bundle##*/}
  case $bundle in */*) printf '%s/' "${bundle%/*}" ;; esac
  printf '%s.parts.sha256\n' "${ps_base%.tar}"
}
file_size() { fs_size=$(wc -c <"$1") && printf '%s\n' "${fs_size##* }"; } # some wc pad the number with blanks
find_bundle() {
  case $0 in */*) fb_dir=${0%/*}; fb_dir=${fb_dir:-/} ;; *) fb_dir=. ;; esac
  # kubeferry create writes NAME.tar (or NAME.tar.001, ...) and NAME.install.sh side by side
  case $0 in
    *.install.sh) if [ -f "${0%.install.sh}.tar" ] || [ -f "${0%.install.sh}.tar.001" ]; then bundle=${0%.install.sh}.tar; return 0; fi ;;
  esac
  for fb_candidate_dir in "$fb_dir" "$fb_dir/.."; do
    fb_found=''
    fb_count=0
    for fb_file in "$fb_candidate_dir"/*.tar "$fb_candidate_dir"/*.tar.001; do
      [ -f "$fb_file" ] || continue
      case $fb_file in *.001) fb_file=${fb_file%.001}; [ ! -f "$fb_file" ] || continue ;; esac
      fb_found=$fb_file
      fb_count=$((fb_count + 1))
    done
    if [ "$fb_count" -eq 1 ]; then bundle=$fb_found; return 0; fi
    [ "$fb_count" -gt 1 ] && die 2 "several bundles (.tar files or parts) beside the script in $fb_candidate_dir; name the bundle: sh install.sh BUNDLE"
    [ "$(basename -- "$(cd "$fb_dir" && pwd)")" = kubeferry ] || break
  done
  die 2 "no bundle given and no .tar beside the script; run: sh install.sh BUNDLE"
}
part_number() { # part_number FILE: N of NAME.tar.00N, leading zeros dropped (sh reads 010 as octal)
  pn=${1##*.}
  pn=${pn#0}
  pn=${pn#0}
  printf '%s\n' "$pn"
}
# The parts, checked before anything reads them: none missing, none beyond NAME.parts.sha256's list, every part but
# the last as large as the largest, the last no larger, none empty. Their content is checked by sha256 later.
check_parts() {
  cp_sums=$(parts_sums)
  cp_fix="sha256sum -c ${cp_sums##*/} in the parts' directory checks every part"
  if [ -f "$cp_sums" ]; then
    [ "$(file_size "$cp_sums")" -le 511488 ] || die 4 "$cp_sums is larger than a list of 999 parts can be; copy the parts and their .parts.sha256 again. Nothing was imported"
    part_count=$(awk -v base="${bundle##*/}" '
      { n++; name = $2; sub(/^\*/, "", name); want = sprintf("%s.%03d", base, n)
        if (NF != 2 || $1 !~ /^[0-9a-f]+$/ || length($1) != 64 || name != want) { print "line " n " names \"" $2 "\", not " want; bad = 1; exit 1 } }
      END { if (bad) exit 1; if (n < 1 || n > 999) { print "it lists " n " parts"; exit 1 } print n }' "$cp_sums") ||
      die 4 "$cp_sums is not the checksum list of these parts ($part_count); copy the parts and their .parts.sha256 again, from the same split. Nothing was imported"
    parts_listed=1
  fi
  cp_high=0
  cp_sizes=''
  for cp_file in "$bundle".[0-9][0-9][0-9]; do
    [ -f "$cp_file" ] || continue
    cp_n=$(part_number "$cp_file")
    [ "$cp_n" -gt 0 ] 2>/dev/null || continue
    [ "$cp_n" -le "$cp_high" ] || cp_high=$cp_n
    if [ "$parts_listed" = 1 ] && [ "$cp_n" -gt "$part_count" ]; then
      die 4 "$cp_file is an extra part: ${cp_sums##*/} lists $part_count parts (up to $(part_name "$part_count")); remove it (it is not part of this bundle) or copy the parts again from the same split. Nothing was imported"
    fi
  done
  [ "$parts_listed" = 1 ] || part_count=$cp_high
  cp_i=1
  while [ "$cp_i" -le "$part_count" ]; do
    cp_file=$(part_name "$cp_i")
    if [ ! -f "$cp_file" ]; then
      if [ "$parts_listed" = 1 ]; then cp_of="${cp_sums##*/} lists $part_count parts"; else cp_of="the parts go up to $(part_name "$part_count")"; fi
      die 4 "part $cp_file is missing ($cp_of): the bundle cannot be read without it; copy ${cp_file##*/} again from the source ($cp_fix). Nothing was imported"
    fi
    [ -r "$cp_file" ] || die 4 "part $cp_file: not readable"
    cp_size=$(file_size "$cp_file")
    [ "$cp_size" -gt 0 ] || die 4 "part $cp_file is empty: it was truncated in the copy; copy ${cp_file##*/} again from the source ($cp_fix). Nothing was imported"
    if [ "$cp_i" -lt "$part_count" ] && [ "$cp_size" -gt "$part_size" ]; then part_size=$cp_size; fi
    [ "$part_count" -gt 1 ] || part_size=$cp_size
    bundle_size=$((bundle_size + cp_size))
    cp_sizes="$cp_sizes $cp_size"
    cp_i=$((cp_i + 1))
  done
  # Once every size is known (the largest is the split's part size): only the last part may be smaller.
  cp_i=1
  for cp_size in $cp_sizes; do
    cp_file=$(part_name "$cp_i")
    if [ "$cp_i" -lt "$part_count" ] && [ "$cp_size" -lt "$part_size" ]; then
      die 4 "part $cp_file is $cp_size bytes where the other parts are $part_size: it is truncated (or from another split); copy ${cp_file##*/} again from the source ($cp_fix). Nothing was imported"
    fi
    if [ "$cp_i" -eq "$part_count" ] && [ "$cp_size" -gt "$part_size" ]; then
      die 4 "part $cp_file is $cp_size bytes, larger than the $part_size of the parts before it: the last part cannot be the largest (a part from another split, or parts missing before it); copy the parts again from the same split. Nothing was imported"
    fi
    cp_i=$((cp_i + 1))
  done
}
[ -n "$bundle" ] || find_bundle
case $bundle in
  *.tar.[0-9][0-9][0-9]) [ "$(part_number "$bundle")" -gt 0 ] 2>/dev/null && { bundle=${bundle%.*}; parted=1; } ;;
esac
if [ "$parted" = 0 ] && [ ! -e "$bundle" ] && [ -f "$(part_name 1)" ]; then parted=1; fi
bundle_size=0
if [ "$parted" = 1 ]; then
  check_parts
else
  [ -f "$bundle" ] || die 4 "bundle $bundle: no such file"
  [ -r "$bundle" ] || die 4 "bundle $bundle: not readable"
  bundle_size=$(file_size "$bundle")
fi
# The bundle's bytes on stdout: the file, or the parts in order.
bundle_cat() {
  if [ "$parted" = 0 ]; then
    cat "$bundle"
    return
  fi
  bc_i=1
  while [ "$bc_i" -le "$part_count" ]; do
    cat "$(part_name "$bc_i")" || return 1
    bc_i=$((bc_i + 1))
  done
}
# file_range FILE OFFSET LENGTH: those bytes on stdout (dd from the 512-byte block that holds OFFSET, where dd is)
file_range() {
  if have dd; then
    fr_skip=$(($2 / 512))
    fr_in=$(($2 - fr_skip * 512))
    dd if="$1" bs=512 skip="$fr_skip" count=$(((fr_in + $3 + 511) / 512)) 2>/dev/null | tail -c +$((fr_in + 1)) | head -c "$3"
  else
    tail -c +$(($2 + 1)) "$1" | head -c "$3"
  fi
}
# bundle_range OFFSET LENGTH: bytes of the bundle on stdout, across part boundaries
bundle_range() {
  if [ "$parted" = 0 ]; then
    file_range "$bundle" "$1" "$2"
    return
  fi
  br_offset=$1
  br_left=$2
  while [ "$br_left" -gt 0 ]; do
    br_part=$((br_offset / part_size + 1))
    br_at=$((br_offset - (br_part - 1) * part_size))
    br_count=$((part_size - br_at))
    [ "$br_count" -le "$br_left" ] || br_count=$br_left
    file_range "$(part_name "$br_part")" "$br_at" "$br_count" || return 1
    br_offset=$((br_offset + br_count))
    br_left=$((br_left - br_count))
  done
}
