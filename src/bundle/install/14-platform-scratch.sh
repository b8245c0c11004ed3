# --- the node's platform ----------------------------------------------------------------------------------
machine=$(uname -m)
if [ -z "$platform" ]; then
  case $machine in
    x86_64|amd64) platform=linux/amd64 ;;
    aarch64|arm64) platform=linux/arm64 ;;
    armv8l|armv7l) platform=linux/arm/v7 ;;
    armv6l) platform=linux/arm/v6 ;;
    i386|i686) platform=linux/386 ;;
    ppc64le|s390x|riscv64) platform=linux/$machine ;;
    mips64) platform=linux/mips64le ;;
    loongarch64) platform=linux/loong64 ;;
    *) die 5 "unknown machine type '$machine' from uname -m; pass --platform OS/ARCH" ;;
  esac
fi
case $platform in
  */arm64/v8) platform=${platform%/v8} ;;
  */amd64/v1) platform=${platform%/v1} ;;
esac
case " $BUNDLE_PLATFORMS " in
  *" $platform "*) ;;
  *) die 5 "the bundle holds $BUNDLE_PLATFORMS but not $platform (this node's platform); nothing was imported. Build a bundle with: kubeferry create --platform $platform" ;;
esac

# --- scratch space (TMPDIR), removed on every exit path ---------------------------------------------------
scratch_parent=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$scratch_parent/kubeferry.XXXXXX" 2>/dev/null) ||
  die 6 "cannot create a scratch directory in $scratch_parent (full or read-only?); set TMPDIR to a directory with free space"
early_hash='' # the pid of a whole-file hash running in the background (see below), stopped on every exit
trap '[ -z "$early_hash" ] || kill "$early_hash" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

free_kb() { # free_kb DIR: KiB available where DIR is (or would be), from the 4th field of df -P's second line
  fk_dir=$1
  while [ ! -d "$fk_dir" ]; do fk_dir=$(dirname -- "$fk_dir"); done
  fk_out=$(df -Pk "$fk_dir" 2>/dev/null) || return 0
  case $fk_out in *"
"*) ;; *) return 0 ;; esac
  # shellcheck disable=SC2086 # split the data line into fields
  set -- ${fk_out#*"
"}
  [ $# -ge 4 ] && printf '%s\n' "$4"
}
need_space() { # need_space DIR BYTES WHAT
  ns_free=$(free_kb "$1")
  [ -n "$ns_free" ] || return 0
  ns_need=$(( ($2 + 1023) / 1024 ))
  if [ "$ns_free" -lt "$ns_need" ]; then
    die 6 "not enough space for $3 in $1: $ns_free KiB free, at least $ns_need KiB needed; nothing was imported"
  fi
}
need_space "$tmp" 262144 "scratch files (TMPDIR)"
# The plan for $platform in one pass: images, blobs and the bundle's entry list into scratch files; on stdout
# "BYTES DOCKER_SOURCE IMAGE_COUNT SANDBOX" (SANDBOX: the sandbox image preflight suggests, - for none).
if ! : >"$tmp/images" || ! : >"$tmp/blobs" || ! : >"$tmp/entries" || ! plan_facts=$(plan_data | awk -F'|' -v p="$platform" -v dir="$tmp" '
    $1 == "platform" && $2 == p { bytes = $3; source = $4 }
    $1 == "image" && $2 == p { print $3, $4, $5, $6, $7, $8 >(dir "/images"); n++ }
    $1 == "blob" && $2 == p { print $3, $4 >(dir "/blobs") }
    $1 == "entry" { print $2, $3, $4 >(dir "/entries") }
    $1 == "sandbox" && sandbox == "" { sandbox = $2 }
    END { printf "%s %s %d %s\n", bytes, source, n, sandbox == "" ? "-" : sandbox }'); then
  die 6 "cannot write scratch files in $tmp (disk full?)"
fi
plan_bytes=${plan_facts%% *}
plan_facts=${plan_facts#* }
docker_source=${plan_facts%% *}
plan_facts=${plan_facts#* }
image_count=${plan_facts%% *}
suggested_sandbox=${plan_facts#* }
[ "$suggested_sandbox" != - ] || suggested_sandbox=''

