/**
 * TRANSITIONAL: the renderer and entry list as they were before contract.ts (a copy of install-script.ts and
 * writer.ts's bundleEntries at 7908cf7), to compare old and new byte for byte. Removed once the comparison held.
 *
 * Renders install.sh from the bundle metadata through the same import plan `kubeferry load` uses (import-plan.ts):
 * the plan is embedded as data lines, the shell only follows it. POSIX sh only (dash, busybox ash), shellcheck clean
 * (a test runs shellcheck on the rendered script). Placeholders: @@VERSION@@ @@COUNT@@ @@PLATFORMS@@ @@PLAN@@.
 *
 * Besides the plan, the script carries the bundle's exact entry list (`entry|<path>|<size>|<sha256 or ->`): every
 * entry writer.ts writes for this metadata, with the sha256 of the small files the runtimes read (index.json,
 * manifest.json, the docker fragments; also oci-layout and bundle.json). The script refuses a tar whose listing is
 * anything else (an extra, missing, duplicate, oversized or non-regular entry) and checks those hashes before any
 * runtime sees the tar. The script's own entry has no hash (it cannot hold its own), only its size.
 *
 * Import speed (bench/install.sh compares it with a plain `ctr images import`): on containerd with BUNDLE.sha256,
 * ctr reads the bundle through a pipe while the whole file is hashed; the pipe holds back the archive's end until
 * the hash matches, so ctr, which creates images only after the whole archive, creates none from a bundle that
 * fails the checksum (the blobs it stored meanwhile are collected at once). Other ctr calls are few and concurrent.
 */
import {KubeferryError} from '../../src/oci/errors.js'
import {formatChecksums, type ChecksumLine} from '../../src/bundle/checksums.js'
import type {BundlePlan} from '../../src/bundle/plan.js'
import type {LayoutEntry} from '../../src/bundle/tar-fill.js'
import {digestHex, sha256Digest, type Digest} from '../../src/oci/digest.js'
import {dockerManifestBytes} from '../../src/bundle/docker-manifest.js'
import {canonicalPlatform, renderPlanData} from '../../src/bundle/import-plan.js'
import {
  blobPath,
  CHECKSUMS_FILE,
  DOCKER_MANIFEST_FILE,
  dockerFragmentPath,
  INDEX_FILE,
  INSTALL_SCRIPT_FILE,
  METADATA_FILE,
  OCI_LAYOUT_CONTENT,
  OCI_LAYOUT_FILE,
  type BundleMetadata,
} from '../../src/bundle/layout.js'
import {tarOf} from '../../src/bundle/tar-header.js'
import {ociIndexBytes} from '../../src/bundle/oci-index.js'

export interface ExpectedEntry {
  path: string
  size: number
  /** sha256 hex of the content, for the small files the script checks; undefined for blobs and unknowable files. */
  sha256?: string
}

/** Length of a `sha256sum` line in kubeferry/SHA256SUMS (`<64 hex>  <path>\n`). */
const checksumLineLength = (path: string): number => 64 + 2 + Buffer.byteLength(path) + 1

/**
 * Every entry of the bundle writer.ts writes for `meta`, sorted by path. `installScriptSize` is the byte size of
 * kubeferry/install.sh (the rendered script itself). Throws when the blobs the images name do not add up to
 * `meta.blobs` (the script would then refuse its own bundle).
 */
export function expectedEntries(meta: BundleMetadata, installScriptSize: number): ExpectedEntry[] {
  const blobs = new Map<Digest, number>()
  for (const image of meta.images) {
    blobs.set(image.digest, image.size)
    for (const p of image.platforms) {
      blobs.set(p.digest, p.size)
      blobs.set(p.config.digest, p.config.size)
      for (const layer of p.layers) blobs.set(layer.digest, layer.size)
    }
  }
  const total = [...blobs.values()].reduce((n, size) => n + size, 0)
  if (blobs.size !== meta.blobs.count || total !== meta.blobs.totalSize) {
    throw new KubeferryError('INTERNAL', `bundle metadata lists ${meta.blobs.count} blobs (${meta.blobs.totalSize} bytes) but its images name ${blobs.size} (${total} bytes); cannot write an install.sh that checks the bundle`)
  }
  const mtime = meta.created ? Math.floor(Date.parse(meta.created) / 1000) : 0
  const small: {path: string; bytes: Buffer}[] = [
    {path: OCI_LAYOUT_FILE, bytes: Buffer.from(OCI_LAYOUT_CONTENT)},
    {path: INDEX_FILE, bytes: ociIndexBytes(meta)},
    {path: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(meta.images, meta.dockerPlatform)},
    {path: METADATA_FILE, bytes: Buffer.from(`${JSON.stringify(meta, null, 2)}\n`)},
    ...meta.platforms.map((platform) => ({
      path: dockerFragmentPath(platform),
      bytes: tarOf([{name: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(meta.images, platform)}], mtime),
    })),
  ]
  const entries: ExpectedEntry[] = [
    ...[...blobs].map(([digest, size]) => ({path: blobPath(digest), size})),
    ...small.map((f) => ({path: f.path, size: f.bytes.length, sha256: digestHex(sha256Digest(f.bytes))})),
    {path: INSTALL_SCRIPT_FILE, size: installScriptSize},
  ]
  entries.push({path: CHECKSUMS_FILE, size: entries.reduce((n, e) => n + checksumLineLength(e.path), 0)})
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

export function renderInstallScript(meta: BundleMetadata): string {
  const version = String(meta.tool?.version ?? 'unknown')
  if (!/^[A-Za-z0-9._+-]+$/.test(version)) throw new KubeferryError('BUNDLE_INVALID', `unsafe tool version in bundle metadata: ${JSON.stringify(version)}`)
  const platforms = meta.platforms.map(canonicalPlatform).join(' ')
  const plan = renderPlanData(meta).join('\n')
  const render = (selfSize: number): string => {
    const entries = expectedEntries(meta, selfSize).map((e) => ['entry', e.path, String(e.size), e.sha256 ?? '-'].join('|'))
    for (const line of entries) {
      if (!/^[A-Za-z0-9|/._-]+$/.test(line)) throw new KubeferryError('BUNDLE_INVALID', `unsafe character in a bundle entry name: ${JSON.stringify(line)}`)
    }
    return TEMPLATE.replace('@@PLAN@@', () => `${plan}\n${entries.join('\n')}`)
      .replaceAll('@@VERSION@@', version)
      .replaceAll('@@COUNT@@', String(meta.images.length))
      .replaceAll('@@PLATFORMS@@', platforms)
  }
  // The script lists its own size: only the number's digits change the length, so this settles in a step or two.
  let size = 0
  for (let i = 0; i < 8; i++) {
    const script = render(size)
    const length = Buffer.byteLength(script)
    if (length === size) return script
    size = length
  }
  throw new KubeferryError('INTERNAL', 'install.sh: its own size does not settle')
}


async function smallTar(files: {name: string; bytes: Buffer}[], mtime: number): Promise<Buffer> {
  return tarOf([...files].sort((a, b) => (a.name < b.name ? -1 : 1)), mtime)
}

/** All entries of the bundle in tar order. Blobs come from the plan; everything else is rendered here. */
export async function bundleEntries(plan: Pick<BundlePlan, 'blobs'>, metadata: BundleMetadata, mtime: number): Promise<LayoutEntry[]> {
  const small: {name: string; bytes: Buffer; mode: number}[] = []
  small.push({name: OCI_LAYOUT_FILE, bytes: Buffer.from(OCI_LAYOUT_CONTENT), mode: 0o644})
  small.push({name: INDEX_FILE, bytes: ociIndexBytes(metadata), mode: 0o644})
  small.push({name: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(metadata.images, metadata.dockerPlatform), mode: 0o644})
  small.push({name: METADATA_FILE, bytes: Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`), mode: 0o644})
  small.push({name: INSTALL_SCRIPT_FILE, bytes: Buffer.from(renderInstallScript(metadata)), mode: 0o755})
  for (const platform of metadata.platforms) {
    const fragment = await smallTar([{name: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(metadata.images, platform)}], mtime)
    small.push({name: dockerFragmentPath(platform), bytes: fragment, mode: 0o644})
  }
  const sums: ChecksumLine[] = [
    ...plan.blobs.map((b) => ({hex: digestHex(b.digest), path: blobPath(b.digest)})),
    ...small.map((f) => ({hex: digestHex(sha256Digest(f.bytes)), path: f.name})),
  ]
  small.push({name: CHECKSUMS_FILE, bytes: Buffer.from(formatChecksums(sums)), mode: 0o644})

  const entries: LayoutEntry[] = [
    ...plan.blobs.map((blob) => ({name: blobPath(blob.digest), size: blob.size, mode: 0o644, blob})),
    ...small.map((f) => ({name: f.name, size: f.bytes.length, mode: f.mode, bytes: f.bytes})),
  ]
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    if (Buffer.byteLength(entry.name) >= 100) throw new KubeferryError('INTERNAL', `tar entry name too long for a plain ustar header: ${entry.name}`)
  }
  return entries
}


const TEMPLATE = `#!/bin/sh
# kubeferry install.sh: imports this bundle's images into the node's container runtime.
# Generated by kubeferry @@VERSION@@ for @@COUNT@@ images (@@PLATFORMS@@) from the same import plan
# \`kubeferry load\` uses. Needs only a POSIX sh, the runtime's own CLI, and tar, sha256sum, head, tail, df, uname,
# mktemp (openssl and dd, where present, make it faster).
#   sh install.sh [BUNDLE] [--runtime auto|containerd|k3s|rke2|docker|podman|nerdctl|cri-o] [--address SOCKET]
#                 [--namespace k8s.io] [--platform OS/ARCH] [--config FILE] [--dry-run] [--verify-only]
# Exit codes: 0 ok, 1 an image missing after import, 2 usage, 3 no runtime, 4 bad bundle, 5 platform not in bundle,
# 6 no space.
set -u

PIN_LABEL='io.cri-containerd.pinned=pinned'
BUNDLE_PLATFORMS='@@PLATFORMS@@'
END_OF_ARCHIVE=1024

plan_data() {
  cat <<'KUBEFERRY_PLAN'
@@PLAN@@
KUBEFERRY_PLAN
}

usage() {
  cat <<'KUBEFERRY_USAGE'
usage: sh install.sh [BUNDLE] [options]
Imports the bundle's images for this node's platform into its container runtime, checks every
name and digest afterwards, and pins the sandbox (pause) images so that kubelet GC keeps them.

  BUNDLE               the bundle tar (default: the .tar beside this script or the one it came from)
  --runtime NAME       auto (default), containerd, k3s, rke2, docker, podman, nerdctl, cri-o
  --address SOCKET     runtime socket (containerd: CONTAINERD_ADDRESS, docker: DOCKER_HOST)
  --namespace NS       containerd namespace (default k8s.io, the kubelet's)
  --platform OS/ARCH   import for this platform instead of the node's (uname -m)
  --config FILE        runtime config to read the sandbox image from (default: the runtime's own)
  --dry-run            say what would be imported, change nothing
  --verify-only        check the bundle's checksums and structure, import nothing
KUBEFERRY_USAGE
}

say() { printf '%s\\n' "$*"; }
warn() { printf 'kubeferry: warning: %s\\n' "$*" >&2; }
die() {
  die_code=$1
  shift
  printf 'kubeferry: error: %s\\n' "$*" >&2
  exit "$die_code"
}
have() { command -v "$1" >/dev/null 2>&1; }

bundle=''
runtime=auto
address=\${CONTAINERD_ADDRESS:-}
address_given=0
namespace=\${CONTAINERD_NAMESPACE:-k8s.io}
platform=''
config=''
dry_run=0
verify_only=0
need_value() { [ "$2" -ge 2 ] || die 2 "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    --runtime) need_value "$1" $#; runtime=$2; shift 2 ;;
    --runtime=*) runtime=\${1#*=}; shift ;;
    --address) need_value "$1" $#; address=$2; address_given=1; shift 2 ;;
    --address=*) address=\${1#*=}; address_given=1; shift ;;
    --namespace) need_value "$1" $#; namespace=$2; shift 2 ;;
    --namespace=*) namespace=\${1#*=}; shift ;;
    --platform) need_value "$1" $#; platform=$2; shift 2 ;;
    --platform=*) platform=\${1#*=}; shift ;;
    --config) need_value "$1" $#; config=$2; shift 2 ;;
    --config=*) config=\${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    --verify-only) verify_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; [ $# -eq 0 ] || { bundle=$1; shift; } ;;
    -*) die 2 "unknown option $1 (see --help)" ;;
    *) [ -z "$bundle" ] || die 2 "more than one bundle given: $bundle and $1"; bundle=$1; shift ;;
  esac
done
case $runtime in
  auto|containerd|k3s|rke2|docker|podman|nerdctl|cri-o|crio) ;;
  *) die 2 "unknown runtime '$runtime' (auto, containerd, k3s, rke2, docker, podman, nerdctl, cri-o)" ;;
esac
[ "$runtime" = crio ] && runtime=cri-o

# --- the bundle -------------------------------------------------------------------------------------------
find_bundle() {
  case $0 in */*) fb_dir=\${0%/*}; fb_dir=\${fb_dir:-/} ;; *) fb_dir=. ;; esac
  # kubeferry create writes NAME.tar and NAME.install.sh side by side
  case $0 in
    *.install.sh) if [ -f "\${0%.install.sh}.tar" ]; then bundle=\${0%.install.sh}.tar; return 0; fi ;;
  esac
  for fb_candidate_dir in "$fb_dir" "$fb_dir/.."; do
    fb_found=''
    fb_count=0
    for fb_file in "$fb_candidate_dir"/*.tar; do
      [ -f "$fb_file" ] || continue
      fb_found=$fb_file
      fb_count=$((fb_count + 1))
    done
    if [ "$fb_count" -eq 1 ]; then bundle=$fb_found; return 0; fi
    [ "$fb_count" -gt 1 ] && die 2 "several .tar files beside the script in $fb_candidate_dir; name the bundle: sh install.sh BUNDLE"
    [ "$(basename -- "$(cd "$fb_dir" && pwd)")" = kubeferry ] || break
  done
  die 2 "no bundle given and no .tar beside the script; run: sh install.sh BUNDLE"
}
[ -n "$bundle" ] || find_bundle
[ -f "$bundle" ] || die 4 "bundle $bundle: no such file"
[ -r "$bundle" ] || die 4 "bundle $bundle: not readable"
bundle_size=$(wc -c <"$bundle")
bundle_size=\${bundle_size##* } # some wc pad the number with blanks

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
  */arm64/v8) platform=\${platform%/v8} ;;
  */amd64/v1) platform=\${platform%/v1} ;;
esac
case " $BUNDLE_PLATFORMS " in
  *" $platform "*) ;;
  *) die 5 "the bundle holds $BUNDLE_PLATFORMS but not $platform (this node's platform); nothing was imported. Build a bundle with: kubeferry create --platform $platform" ;;
esac

# --- scratch space (TMPDIR), removed on every exit path ---------------------------------------------------
scratch_parent=\${TMPDIR:-/tmp}
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
  set -- \${fk_out#*"
"}
  [ $# -ge 4 ] && printf '%s\\n' "$4"
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
    END { printf "%s %s %d %s\\n", bytes, source, n, sandbox == "" ? "-" : sandbox }'); then
  die 6 "cannot write scratch files in $tmp (disk full?)"
fi
plan_bytes=\${plan_facts%% *}
plan_facts=\${plan_facts#* }
docker_source=\${plan_facts%% *}
plan_facts=\${plan_facts#* }
image_count=\${plan_facts%% *}
suggested_sandbox=\${plan_facts#* }
[ "$suggested_sandbox" != - ] || suggested_sandbox=''

# --- bundle checks ----------------------------------------------------------------------------------------
verified=''
vb_entries=''
verify_bundle() {
  [ -n "$verified" ] && return 0
  verify_structure
  verify_checksums
  say "kubeferry: $verified"
}
# Sets vb_entries (the entry count) and data_end (the byte offset where the last entry's data ends: its
# end-of-archive marker follows).
verify_structure() {
  [ -z "$vb_entries" ] || return 0
  have tar || die 4 "tar is needed to read $bundle"
  # Structure, from the tar's headers alone, before anything else reads the tar: exactly the entries kubeferry wrote
  # for this bundle, each once, each a regular file of its size. This refuses ../ and absolute names, links,
  # duplicates (a second index.json), oversized files and extra entries (a tar bomb).
  tar -tvf "$bundle" >"$tmp/listing" 2>"$tmp/tar.err" ||
    die 4 "bundle $bundle is not a readable tar ($(head -n 1 "$tmp/tar.err")): corrupt or truncated; copy it again. Nothing was imported"
  # tar warns about names it would rewrite (a leading / or ../); busybox tar lists them already rewritten
  if [ -s "$tmp/tar.err" ]; then
    die 4 "bundle $bundle holds entries kubeferry never writes ($(head -n 1 "$tmp/tar.err")): it was tampered with; nothing was imported"
  fi
  awk '
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
      } else if (name ~ /^\\// || name ~ /(^|\\/)\\.\\.(\\/|$)/) { msg = "entry " shown " has an absolute or ../ path"; bad = 1 }
      else if (!(name in size)) { msg = "unexpected entry " shown; bad = 1 }
      else if (name in seen) { msg = "entry " shown " appears twice"; bad = 1 }
      else if ($3 != size[name]) { msg = "entry " shown " is " $3 " bytes, expected " size[name]; bad = 1 }
      seen[name] = 1
      end += 512 + int(($3 + 511) / 512) * 512 # its header block, its data padded to whole blocks
    }
    END {
      if (bad) { print msg " (the tar lists " FNR " entries, " expected " expected)"; exit 1 }
      for (n in size) if (!(n in seen)) {
        if (n ~ /^blobs\\/sha256\\//) print "missing blob sha256:" substr(n, 14); else print "missing " n
        exit 1
      }
      printf "%d %.0f\\n", expected, end
    }' "$tmp/entries" "$tmp/listing" >"$tmp/structure" ||
    die 4 "bundle $bundle is not the one this script was written for: $(head -n 1 "$tmp/structure"); it is incomplete or was tampered with. Nothing was imported"
  read -r vb_entries data_end <"$tmp/structure"
  # The small files runtimes read (index.json, manifest.json, docker fragments), by sha256, in one pass.
  set --
  while read -r vb_path _ vb_sum; do [ "$vb_sum" = - ] || set -- "$@" "$vb_path"; done <"$tmp/entries"
  if ! mkdir "$tmp/small" || ! tar -xf "$bundle" -C "$tmp/small" "$@" 2>"$tmp/tar.err"; then
    die 4 "cannot read $* from $bundle ($(head -n 1 "$tmp/tar.err")); nothing was imported"
  fi
  (cd "$tmp/small" && sha256sum "$@") >"$tmp/small.sums" 2>"$tmp/tar.err" || die 4 "cannot hash $* from $bundle ($(head -n 1 "$tmp/tar.err")); nothing was imported"
  awk 'NR == FNR { want[$1] = $3; next }
    { sub(/^\\*/, "", $2); if (want[$2] != $1) { print $2 " (sha256 " $1 ", expected " want[$2] ")"; exit 1 } }' \\
    "$tmp/entries" "$tmp/small.sums" >"$tmp/structure" ||
    die 4 "bundle $bundle: $(head -n 1 "$tmp/structure") is not the one this script was written for: the bundle was changed after it was made; nothing was imported"
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
checksum_mismatch() { # checksum_mismatch ACTUAL
  die 4 "bundle $bundle does not match $bundle.sha256 (sha256 \${1:-unreadable}, expected $vb_expected): it is corrupt or incomplete; copy it again. Nothing was imported"
}
verify_checksums() {
  if expected_checksum; then
    vb_actual=''
    if [ -n "$early_hash" ] && wait "$early_hash"; then read -r vb_actual _ <"$tmp/bundle.early" || vb_actual=''; fi
    early_hash=''
    [ -n "$vb_actual" ] || vb_actual=$(sha256_file "$bundle" | awk '{ print $1 }')
    [ "$vb_expected" = "$vb_actual" ] || checksum_mismatch "$vb_actual"
    verified="structure ok ($vb_entries entries), checksum ok ($bundle.sha256)"
  else
    # No checksum file: hash this platform's blobs one by one.
    while read -r vb_hex vb_size; do
      vb_sum=$(tar -xOf "$bundle" "blobs/sha256/$vb_hex" | sha256sum | awk '{ print $1 }')
      [ "$vb_sum" = "$vb_hex" ] || die 4 "blob sha256:$vb_hex in $bundle has sha256 $vb_sum ($vb_size bytes): the bundle is corrupt; copy it again. Nothing was imported"
    done <"$tmp/blobs"
    verified="structure ok ($vb_entries entries), $(wc -l <"$tmp/blobs" | tr -d ' ') blobs of $platform hashed (no $bundle.sha256 beside the bundle)"
  fi
}

say "kubeferry: bundle $bundle ($BUNDLE_PLATFORMS); importing $image_count images for $platform"
# With openssl the whole-file hash starts now, in the background, while the structure is checked and the runtime is
# asked what it holds; verify_checksums waits for it (a failed run falls back to hashing in the foreground).
if [ "$dry_run" = 0 ] && [ -f "$bundle.sha256" ] && fast_hash; then
  openssl dgst -sha256 -r <"$bundle" >"$tmp/bundle.early" 2>/dev/null &
  early_hash=$!
fi
if [ "$verify_only" = 1 ]; then
  verify_bundle
  say "kubeferry: bundle verified; nothing imported (--verify-only)"
  exit 0
fi

# --- runtime detection ------------------------------------------------------------------------------------
ctr_kind=ctr
kubelet_endpoint() {
  for ke_file in /var/lib/kubelet/kubeadm-flags.env /var/lib/kubelet/config.yaml; do
    [ -r "$ke_file" ] || continue
    ke_value=$(sed -n 's/.*container-runtime-endpoint[=:] *"\\{0,1\\}\\([^" ]*\\).*/\\1/p; s/.*containerRuntimeEndpoint: *"\\{0,1\\}\\([^" ]*\\).*/\\1/p' "$ke_file" | head -n 1)
    [ -n "$ke_value" ] && { printf '%s\\n' "$ke_value"; return 0; }
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
    *containerd*) runtime=containerd; address=\${dr_endpoint#unix://}; return 0 ;;
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
  if have docker && { [ -n "\${DOCKER_HOST:-}" ] || [ -S /var/run/docker.sock ]; }; then runtime=docker; return 0; fi
  dr_looked="$dr_looked, docker (DOCKER_HOST or /var/run/docker.sock)"
  if have podman; then runtime=podman; return 0; fi
  if have nerdctl && have ctr; then runtime=nerdctl; return 0; fi
  die 3 "no container runtime found; looked for: $dr_looked, podman, nerdctl. Pass --runtime NAME (and --address SOCKET)"
}
[ "$runtime" = auto ] && detect_runtime

case $runtime in
  containerd|nerdctl) address=\${address:-/run/containerd/containerd.sock} ;;
  k3s|rke2) address=\${address:-/run/k3s/containerd/containerd.sock} ;;
esac
address=\${address#unix://}
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
    /^[ \\t]*\\[/ { section = $0 }
    /^[ \\t]*sandbox_image[ \\t]*=/ { v = $0; sub(/^[^=]*=[ \\t]*/, "", v); gsub(/["\\047]/, "", v); sub(/[ \\t]*(#.*)?$/, "", v); print v "|" NR "|1"; exit }
    /^[ \\t]*sandbox[ \\t]*=/ && section ~ /pinned_images/ { v = $0; sub(/^[^=]*=[ \\t]*/, "", v); gsub(/["\\047]/, "", v); sub(/[ \\t]*(#.*)?$/, "", v); print v "|" NR "|2"; exit }
  ' "$1"
}
# The containerd config preflight reads (pf_file) and its sandbox setting (pf_found); when the file sets none,
# \`containerd config dump\` (containerd's built-in default) starts in the background into $tmp/dump (pf_dump: its pid).
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
    docker version >/dev/null 2>"$tmp/err" || die 3 "runtime docker: cannot reach the docker daemon\${DOCKER_HOST:+ at $DOCKER_HOST}: $(tail -n 1 "$tmp/err")"
    runtime_desc="docker\${DOCKER_HOST:+ ($DOCKER_HOST)}" ;;
  *) runtime_desc=$runtime ;;
esac
say "kubeferry: runtime $runtime_desc"

# --- preflight: the runtime's sandbox image ---------------------------------------------------------------
normalize_ref() {
  nr=$1
  case $nr in
    */*) case \${nr%%/*} in *.*|*:*|localhost) ;; *) nr=docker.io/$nr ;; esac ;;
    *) nr=docker.io/library/$nr ;;
  esac
  case $nr in docker.io/*/*) ;; docker.io/*) nr=docker.io/library/\${nr#docker.io/} ;; esac
  case \${nr##*/} in *:*|*@*) ;; *) nr=$nr:latest ;; esac
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
      pf_source="$pf_file line \${pf_found#*|}"
      pf_source=\${pf_source%|*}
      if [ -n "$pf_dump" ]; then
        wait "$pf_dump"
        pf_found=$(containerd_sandbox "$tmp/dump")
        pf_source="containerd's built-in default; $pf_file does not set it"
      fi
      [ -n "$pf_found" ] || return 0
      pf_value=\${pf_found%%|*}
      pf_style=\${pf_found##*|}
      bundle_has "$pf_value" && return 0
      if [ "$pf_style" = 2 ]; then
        pf_fix="in $pf_file under [plugins.\\"io.containerd.cri.v1.images\\".pinned_images] set: sandbox = \\"$suggested_sandbox\\" (then restart containerd)"
      else
        pf_fix="in $pf_file under [plugins.\\"io.containerd.grpc.v1.cri\\"] set: sandbox_image = \\"$suggested_sandbox\\" (then restart containerd)"
      fi
      [ "$runtime" = k3s ] && pf_fix="start k3s with --pause-image $suggested_sandbox"
      preflight_warn "$runtime" "$pf_value" "$pf_source" "$pf_fix" ;;
    cri-o)
      pf_value=''
      pf_source=''
      for pf_file in \${config:-/etc/crio/crio.conf /etc/crio/crio.conf.d/*.conf}; do
        [ -r "$pf_file" ] || continue
        pf_line=$(awk '/^[ \\t]*pause_image[ \\t]*=/ { v = $0; sub(/^[^=]*=[ \\t]*/, "", v); gsub(/["\\047]/, "", v); sub(/[ \\t]*(#.*)?$/, "", v); print v "|" NR }' "$pf_file" | tail -n 1)
        [ -n "$pf_line" ] && { pf_value=\${pf_line%|*}; pf_source="$pf_file line \${pf_line#*|}"; pf_where=$pf_file; }
      done
      [ -n "$pf_value" ] || return 0
      bundle_has "$pf_value" && return 0
      preflight_warn cri-o "$pf_value" "$pf_source" "in $pf_where under [crio.image] set: pause_image = \\"$suggested_sandbox\\" (then restart crio)" ;;
  esac
  pf_kubelet=''
  [ -r /var/lib/kubelet/kubeadm-flags.env ] &&
    pf_kubelet=$(sed -n 's/.*--pod-infra-container-image[= ]\\([^ "]*\\).*/\\1/p' /var/lib/kubelet/kubeadm-flags.env | head -n 1)
  if [ -n "$pf_kubelet" ] && ! bundle_has "$pf_kubelet"; then
    preflight_warn kubelet "$pf_kubelet" "--pod-infra-container-image in /var/lib/kubelet/kubeadm-flags.env" "set --pod-infra-container-image=$suggested_sandbox there (or drop the deprecated flag and set the runtime's sandbox image)"
  fi
  return 0
}

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
        rs_id=$(docker image inspect --format '{{.Id}}' "$rs_name" 2>/dev/null) && printf '%s %s\\n' "$rs_name" "$rs_id" >>"$tmp/state"
      done <"$tmp/images" ;;
    podman|cri-o)
      : >"$tmp/state"
      while read -r rs_name _ rs_pdigest _ _ _; do
        if have podman; then
          rs_id=$(podman image inspect --format '{{.Id}}' "$rs_name" 2>/dev/null) && printf '%s sha256:%s\\n' "$rs_name" "\${rs_id#sha256:}" >>"$tmp/state"
        else
          rs_raw=$(skopeo inspect --raw "containers-storage:$rs_name" 2>/dev/null | sha256sum | awk '{ print $1 }') &&
            [ "sha256:$rs_raw" = "$rs_pdigest" ] && printf '%s %s\\n' "$rs_name" "$rs_pdigest" >>"$tmp/state"
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
      printf '%s\\n' "$name" >>"$tmp/todo" || die 6 "cannot write scratch files in $tmp (disk full?)"
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
      if [ "$dry_run" = 0 ] && ! fast_hash && expected_checksum && verify_structure && [ "$data_end" -le $((bundle_size - END_OF_ARCHIVE)) ]; then
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
        target_root=$(awk '/^[ \\t]*\\[/ { exit } /^[ \\t]*root[ \\t]*=/ { v = $0; sub(/^[^=]*=[ \\t]*/, "", v); gsub(/["\\047]/, "", v); sub(/[ \\t]*(#.*)?$/, "", v); print v }' "$tr_file")
        [ -n "$target_root" ] && break
      done
      case $runtime in
        k3s) target_root=\${target_root:-/var/lib/rancher/k3s/agent/containerd} ;;
        rke2) target_root=\${target_root:-/var/lib/rancher/rke2/agent/containerd} ;;
        *) target_root=\${target_root:-/var/lib/containerd} ;;
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
      need_space "\${target_root:-/var/lib/containers/storage}" $((plan_bytes * 2)) "$image_count images of $platform (containers-storage)" ;;
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

# --- import -----------------------------------------------------------------------------------------------
docker_stream() { # the docker archive of $platform on stdout
  if [ "$docker_source" = - ]; then
    cat "$bundle"
  else
    { head -c $((bundle_size - END_OF_ARCHIVE)) "$bundle" && cat "$tmp/small/$docker_source"; } # the fragment checked by verify_bundle
  fi
}
oci_extract() { # this platform's blobs as an OCI layout in $tmp/kubeferry-oci
  mkdir -p "$tmp/kubeferry-oci" || die 6 "cannot create $tmp/kubeferry-oci"
  { printf 'oci-layout\\nindex.json\\n'; awk '{ print "blobs/sha256/" $1 }' "$tmp/blobs"; } >"$tmp/members"
  tar -xf "$bundle" -C "$tmp/kubeferry-oci" -T "$tmp/members" 2>"$tmp/err" || die 6 "cannot extract $platform's blobs into $tmp/kubeferry-oci: $(tail -n 1 "$tmp/err")"
}
override_args() { # override_args PREFIX: skopeo (--override-) or podman (--) flags that select $platform
  oa_rest=\${platform#*/}
  printf -- '%sos %s %sarch %s' "$1" "\${platform%%/*}" "$1" "\${oa_rest%%/*}"
  case $oa_rest in */*) printf -- ' %svariant %s' "$1" "\${oa_rest#*/}" ;; esac
}
import_failed() {
  printf 'kubeferry: error: %s import failed:\\n' "$runtime" >&2
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
        if run_ctr images import --platform "$platform" "$bundle" >"$tmp/import.log" 2>&1; then import_complete=1; else import_failed; fi
      fi ;;
    nerdctl)
      nerdctl --address "$address" --namespace "$namespace" load --platform "$platform" -i "$bundle" >"$tmp/import.log" 2>&1 || import_failed ;;
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
            podman tag "\${cdigest#sha256:}" "$name" >>"$tmp/import.log" 2>&1
        else
          skopeo copy --quiet $(override_args --override-) "oci:$tmp/kubeferry-oci:$name" "containers-storage:$name" >>"$tmp/import.log" 2>&1
        fi || { import_failed; break; }
      done <"$tmp/images"
      have skopeo || podman untag localhost/kubeferry-oci:latest localhost/kubeferry-oci:latest >/dev/null 2>&1 || : ;;
  esac
fi

# --- check every name and digest, pin sandbox images ------------------------------------------------------
# containerd: each imported image also gets its digest name, as a CRI pull records it (repoDigests), so that pods
# referencing @sha256: find it offline; sandbox images get the pin label. Those ctr calls run in the background,
# one job per image (the digest name, then the pin), at most 8 jobs at a time: each ctr start costs ~20 ms.
image_job() { # image_job N NAME DIGEST TAG(0/1) PIN(0/1): status and error in $tmp/tag.N.*, $tmp/pin.N.*
  if [ "$4" = 1 ]; then
    run_ctr images tag --force "$2" "\${2%:*}@$3" >/dev/null 2>"$tmp/tag.$1.err"
    echo "$?" >"$tmp/tag.$1.rc"
  fi
  if [ "$5" = 1 ]; then
    run_ctr images label "$2" "$PIN_LABEL" >/dev/null 2>"$tmp/pin.$1.err"
    echo "$?" >"$tmp/pin.$1.rc"
  fi
}
# start_image_jobs before|after: the jobs for the images $tmp/before or $tmp/after (classify's lines) shows
# present, to be imported (TODO) and not pinned; "before" stands for what a complete import made present.
start_image_jobs() {
  sj_n=0
  sj_jobs=0
  while read -r name digest _ pin ok is_pinned todo; do
    sj_n=$((sj_n + 1))
    if [ "$1" = before ]; then todo=$((1 - ok)); elif [ "$ok" != 1 ]; then continue; fi
    sj_tag=0
    if [ "$todo" = 1 ]; then case $name in *@*) ;; *) sj_tag=1 ;; esac; fi
    sj_pin=0
    if [ "$pin" = 1 ] && [ "$is_pinned" = 0 ]; then sj_pin=1; fi
    if [ "$sj_tag" = 1 ] || [ "$sj_pin" = 1 ]; then
      image_job "$sj_n" "$name" "$digest" "$sj_tag" "$sj_pin" &
      sj_jobs=$((sj_jobs + 1))
      [ $((sj_jobs % 8)) -ne 0 ] || wait
    fi
  done <"$tmp/$1"
}
job_ok() { jo_rc=''; read -r jo_rc <"$tmp/$1.rc" 2>/dev/null; [ "$jo_rc" = 0 ]; }
job_error() { tail -n 1 "$tmp/$1.err" 2>/dev/null; }
if pins_supported && [ "$import_complete" = 1 ]; then
  # ctr imported every image to do with the digest of the checked index.json: name them and pin while the image
  # list is read back for the check below
  start_image_jobs before
  read_state
  wait
  classify >"$tmp/after" || die 6 "cannot write scratch files in $tmp (disk full?)"
else
  read_state
  classify >"$tmp/after" || die 6 "cannot write scratch files in $tmp (disk full?)"
  if pins_supported; then
    start_image_jobs after
    wait
  fi
fi
imported=0
missing=0
pinned=0
n=0
while read -r name digest cdigest _ ok _ todo; do
  n=$((n + 1))
  if [ "$ok" = 1 ]; then
    if [ "$todo" = 1 ]; then
      imported=$((imported + 1))
      case $runtime in
        docker|podman|cri-o) say "imported $name (image id $cdigest)" ;;
        *) say "imported $name $digest" ;;
      esac
      if [ -f "$tmp/tag.$n.rc" ] && ! job_ok "tag.$n"; then
        printf 'kubeferry: warning: could not add the digest name %s@%s: %s\\n' "\${name%:*}" "$digest" "$(job_error "tag.$n")" >&2
      fi
    fi
    if [ -f "$tmp/pin.$n.rc" ]; then
      if job_ok "pin.$n"; then
        pinned=$((pinned + 1))
        say "pinned $name ($PIN_LABEL): kubelet image GC keeps it (containerd >= 1.7 honours the label)"
      else
        missing=$((missing + 1))
        printf 'kubeferry: error: could not pin %s: %s\\n' "$name" "$(job_error "pin.$n")" >&2
      fi
    fi
  else
    missing=$((missing + 1))
    printf 'kubeferry: error: MISSING %s: not in %s with %s after the import\\n' "$name" "$runtime" "$digest" >&2
  fi
done <"$tmp/after"
summary "$imported" "$present" "$missing" "$pinned"
[ "$missing" -eq 0 ] || exit 1
exit 0
`
