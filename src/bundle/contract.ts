/**
 * The bundle's contract: which entries a bundle has, with which mode, how each one's bytes are made from the
 * metadata, which ones install.sh checks by sha256, which ones `verify` requires, which ones SHA256SUMS lists. ONE
 * table (ENTRY_KINDS); the writer (writer.ts), `verify` (verify.ts), install.sh's entry list (install-script.ts) and
 * the files beside a bundle (`load`, install.sh) all read it. The names themselves (paths, the fragment slug) are
 * layout.ts's, which the import plan shares.
 *
 * To add a kind of entry (a signature file, a parts list): one row in ENTRY_KINDS above install.sh, plus its tests.
 * The writer then writes it, SHA256SUMS lists it, install.sh refuses a tar without it (and checks its sha256 if
 * `installCheck` says so), and `verify` reports it MISSING when absent if `verifyRequires`. See docs/architecture.md.
 */
import {basename, dirname, join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {digestHex, sha256Digest, type Digest} from '../oci/digest.js'
import {checksumLineLength, formatChecksums} from './checksums.js'
import {dockerManifestBytes} from './docker-manifest.js'
import {uniqueBlobs} from './image-blobs.js'
import {fillInstallScript, type ListedEntry} from './install-template.js'
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
} from './layout.js'
import {ociIndexBytes} from './oci-index.js'
import {tarOf} from './tar-header.js'

/** A blob as the contract needs it; the writer passes its planned blobs (kept on the entry as `blob`). */
export interface ContractBlob {
  digest: Digest
  size: number
}

/** What a kind makes: a file rendered from the metadata (`bytes`), or a blob (`digest`, bytes from the plan). */
export interface EntryContent<B extends ContractBlob = ContractBlob> {
  path: string
  size: number
  bytes?: Buffer
  blob?: B
}

/** One entry of a bundle. */
export interface BundleEntry<B extends ContractBlob = ContractBlob> extends EntryContent<B> {
  kind: string
  mode: number
}

export interface MakeContext<B extends ContractBlob = ContractBlob> {
  meta: BundleMetadata
  /** mtime of every tar header (SOURCE_DATE_EPOCH or 0), also inside the docker fragments. */
  mtime: number
  blobs: B[]
  /** The entries the kinds above this one made. */
  made: BundleEntry<B>[]
}

/** A file `verify` must find in the bundle (`platform`: the docker fragment's). */
export interface RequiredFile {
  kind: string
  path: string
  platform?: string
}

export interface EntryKind {
  kind: string
  mode: number
  /** install.sh checks this entry's sha256 before any runtime reads the tar ('sha256'), or only its size. */
  installCheck: 'sha256' | 'size'
  /** SHA256SUMS has a line for it. */
  checksummed: boolean
  /** `verify` reports it MISSING when absent (blobs: the manifest walk checks them; install.sh: SHA256SUMS does). */
  verifyRequires: boolean
  /** Its paths in a bundle of `meta` (undefined: bundle.json unreadable), without making any bytes. */
  files(meta: BundleMetadata | undefined): {path: string; platform?: string}[]
  make<B extends ContractBlob>(context: MakeContext<B>): EntryContent<B>[]
}

const file = (path: string, bytes: Buffer): EntryContent<never> => ({path, size: bytes.length, bytes})
const fixed = (path: string) => (): {path: string}[] => [{path}]

/** The bundle's entry kinds, in the order they are made (tar order is by path). Later rows read earlier ones. */
export const ENTRY_KINDS: EntryKind[] = [
  {
    // a delta (create --base) leaves out the layers its base holds: it carries every other blob (see reliedOn)
    kind: 'blob', mode: 0o644, installCheck: 'size', checksummed: true, verifyRequires: false,
    files: () => [],
    make: ({meta, blobs}) => {
      const relied = reliedOn(meta)
      return blobs.filter((blob) => !relied.has(blob.digest)).map((blob) => ({path: blobPath(blob.digest), size: blob.size, blob}))
    },
  },
  {
    kind: 'oci-layout', mode: 0o644, installCheck: 'sha256', checksummed: true, verifyRequires: true,
    files: fixed(OCI_LAYOUT_FILE),
    make: () => [file(OCI_LAYOUT_FILE, Buffer.from(OCI_LAYOUT_CONTENT))],
  },
  {
    kind: 'index.json', mode: 0o644, installCheck: 'sha256', checksummed: true, verifyRequires: true,
    files: fixed(INDEX_FILE),
    make: ({meta}) => [file(INDEX_FILE, ociIndexBytes(meta))],
  },
  {
    kind: 'manifest.json', mode: 0o644, installCheck: 'sha256', checksummed: true, verifyRequires: true,
    files: fixed(DOCKER_MANIFEST_FILE),
    make: ({meta}) => [file(DOCKER_MANIFEST_FILE, dockerManifestBytes(meta.images, meta.dockerPlatform))],
  },
  {
    kind: 'bundle.json', mode: 0o644, installCheck: 'sha256', checksummed: true, verifyRequires: true,
    files: fixed(METADATA_FILE),
    make: ({meta}) => [file(METADATA_FILE, Buffer.from(`${JSON.stringify(meta, null, 2)}\n`))],
  },
  {
    // `docker load` of another platform: bundle minus its end marker, then this small tar (see layout.ts)
    kind: 'docker-fragment', mode: 0o644, installCheck: 'sha256', checksummed: true, verifyRequires: true,
    files: (meta) => (meta?.platforms ?? []).map((platform) => ({path: dockerFragmentPath(platform), platform})),
    make: ({meta, mtime}) =>
      meta.platforms.map((platform) => file(dockerFragmentPath(platform), tarOf([{name: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(meta.images, platform)}], mtime))),
  },
  {
    // lists every entry of the bundle (itself with its size only: it cannot hold its own hash)
    kind: 'install.sh', mode: 0o755, installCheck: 'size', checksummed: true, verifyRequires: false,
    files: fixed(INSTALL_SCRIPT_FILE),
    make: ({meta, made}) => {
      checkBlobTotals(meta)
      return [file(INSTALL_SCRIPT_FILE, Buffer.from(fillInstallScript(meta, (self) => installListing(made, self))))]
    },
  },
  {
    kind: 'SHA256SUMS', mode: 0o644, installCheck: 'size', checksummed: false, verifyRequires: true,
    files: fixed(CHECKSUMS_FILE),
    make: ({made}) => [file(CHECKSUMS_FILE, Buffer.from(formatChecksums(made.filter(isChecksummed).map((e) => ({hex: sha256Of(e), path: e.path})))))],
  },
]

const kindByName = (name: string): EntryKind => {
  const kind = ENTRY_KINDS.find((k) => k.kind === name)
  if (!kind) throw new KubeferryError('INTERNAL', `unknown bundle entry kind ${name}`)
  return kind
}
const isChecksummed = (entry: BundleEntry): boolean => kindByName(entry.kind).checksummed
const byPath = (a: {path: string}, b: {path: string}): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

/** sha256 hex of an entry: a blob's is its name. */
function sha256Of(entry: EntryContent): string {
  return entry.bytes ? digestHex(sha256Digest(entry.bytes)) : digestHex(entry.blob!.digest)
}

/** Make the entries of the kinds in ENTRY_KINDS order, up to (not including) kind `until`. */
function makeKinds<B extends ContractBlob>(meta: BundleMetadata, mtime: number, blobs: B[], until?: string): BundleEntry<B>[] {
  const made: BundleEntry<B>[] = []
  for (const kind of ENTRY_KINDS) {
    if (kind.kind === until) break
    for (const content of kind.make({meta, mtime, blobs, made})) made.push({...content, kind: kind.kind, mode: kind.mode})
  }
  return made
}

/**
 * Every entry of the bundle for `meta`, sorted by path (tar order). Blob entries carry the given blob; all others
 * carry their bytes. Made once per bundle: the writer's size, layout and content all come from this list.
 */
export function bundleEntries<B extends ContractBlob>(meta: BundleMetadata, blobs: B[], mtime: number): BundleEntry<B>[] {
  const entries = makeKinds(meta, mtime, blobs).sort(byPath)
  for (const entry of entries) {
    if (Buffer.byteLength(entry.path) >= 100) throw new KubeferryError('INTERNAL', `tar entry name too long for a plain ustar header: ${entry.path}`)
  }
  return entries
}

/**
 * What install.sh lists for a bundle whose entries above install.sh are `made`: those, the script itself (size
 * `selfSize`, no hash) and the entries below it in ENTRY_KINDS, which are known by size before they are made
 * (SHA256SUMS: one line per checksummed path). Sorted by path.
 */
export function installListing(made: BundleEntry[], selfSize: number): ListedEntry[] {
  const listed: ListedEntry[] = made.map((e) => ({path: e.path, size: e.size, ...(kindByName(e.kind).installCheck === 'sha256' ? {sha256: sha256Of(e)} : {})}))
  listed.push({path: INSTALL_SCRIPT_FILE, size: selfSize})
  const summed = [...made.filter(isChecksummed).map((e) => e.path), INSTALL_SCRIPT_FILE]
  listed.push({path: CHECKSUMS_FILE, size: summed.reduce((n, path) => n + checksumLineLength(path), 0)})
  return listed.sort(byPath)
}

/** The blobs a delta bundle relies on (not carried, held by its base), by digest; empty for a full bundle. */
export function reliedOn(meta: Pick<BundleMetadata, 'delta'>): Map<Digest, number> {
  return new Map((meta.delta?.relies ?? []).map((b) => [b.digest, b.size]))
}

/**
 * The blobs the bundle of `meta` carries: what its images name (index, manifests, configs, layers, and their
 * artifacts'), and a carried trusted root, each once, less what a delta relies on.
 */
export function blobsOf(meta: BundleMetadata): ContractBlob[] {
  const relied = reliedOn(meta)
  const blobs = [...uniqueBlobs(meta.images, {artifacts: true}).values()].map(({digest, size}) => ({digest, size}))
  // create --trusted-root: the Sigstore trusted root, a blob named by bundle.json only (absent otherwise).
  if (meta.trustedRoot && !blobs.some((b) => b.digest === meta.trustedRoot!.digest)) blobs.push({digest: meta.trustedRoot.digest, size: meta.trustedRoot.size})
  return blobs.filter((b) => !relied.has(b.digest))
}

/** Throws when the blobs the images name do not add up to `meta.blobs` (install.sh would refuse its own bundle). */
function checkBlobTotals(meta: BundleMetadata): void {
  const blobs = blobsOf(meta)
  const total = blobs.reduce((n, b) => n + b.size, 0)
  if (blobs.length !== meta.blobs.count || total !== meta.blobs.totalSize) {
    throw new KubeferryError('INTERNAL', `bundle metadata lists ${meta.blobs.count} blobs (${meta.blobs.totalSize} bytes) but its images name ${blobs.length} (${total} bytes); cannot write an install.sh that checks the bundle`)
  }
}

/** The mtime a bundle of `meta` was written with: SOURCE_DATE_EPOCH is its `created`. */
export function mtimeOf(meta: BundleMetadata): number {
  return meta.created ? Math.floor(Date.parse(meta.created) / 1000) : 0
}

/** The entries of a bundle of `meta` made from the metadata alone: those above install.sh, blobs from the images. */
export function entriesBeforeInstallScript(meta: BundleMetadata): BundleEntry[] {
  checkBlobTotals(meta)
  return makeKinds(meta, mtimeOf(meta), blobsOf(meta), 'install.sh')
}

/** The files `verify` requires in a bundle of `meta` (undefined: bundle.json unreadable), in ENTRY_KINDS order. */
export function requiredFiles(meta: BundleMetadata | undefined): RequiredFile[] {
  return ENTRY_KINDS.filter((k) => k.verifyRequires).flatMap((k) => k.files(meta).map((f) => ({kind: k.kind, ...f})))
}

// --- the files beside a bundle ---------------------------------------------------------------------------------

/** `k8s.tar` → `k8s.tar.sha256`: the whole bundle's sha256, checkable with `sha256sum -c` (install.sh, load read it). */
export function checksumFileFor(bundle: string): string {
  return `${bundle}.sha256`
}

/** `k8s.tar` → `k8s.install.sh` (same directory): the bundle's install.sh, identical to the one inside. */
export function installScriptPathFor(bundle: string): string {
  const base = basename(bundle).replace(/\.tar$/, '')
  return join(dirname(bundle), `${base}.install.sh`)
}
