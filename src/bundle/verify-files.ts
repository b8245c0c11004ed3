/**
 * `verify`'s part that the bundle's contract drives (contract.ts `requiredFiles`): every required file is present;
 * manifest.json and each docker fragment match bundle.json; SHA256SUMS lists every entry but itself, with the right
 * sha256. A kind of entry verify has no check for is required to be present (its content is held by SHA256SUMS).
 */
import {digestHex, sha256Digest, type Digest} from '../oci/digest.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {parseChecksums} from './checksums.js'
import {reliedOn, requiredFiles, type RequiredFile} from './contract.js'
import {dockerManifest, type DockerManifestEntry} from './docker-manifest.js'
import {BLOBS_DIR, blobPath, CHECKSUMS_FILE, DOCKER_MANIFEST_FILE, type BundleMetadata} from './layout.js'
import type {BundleReader} from './reader.js'

export interface RequiredFilesCheck {
  reader: BundleReader
  /** bundle.json, if readable. */
  meta: BundleMetadata | undefined
  /** Blob entry → digest of its content, for the blobs hashed (none with `quick`). */
  blobHashes: Map<string, Digest>
  quick: boolean
  add: (kind: string, message: string, entry?: string) => void
  /** Reads a small entry; reports it MISSING (or unreadable) and gives undefined. */
  readSmall: (name: string) => Promise<Buffer | undefined>
  /** Files verify read and reported on already (oci-layout, index.json, bundle.json: the manifest walk needs them). */
  readAlready: string[]
}

function parse<T>(bytes: Buffer): T | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    return undefined
  }
}

export async function checkRequiredFiles(c: RequiredFilesCheck): Promise<void> {
  const {reader, meta, add} = c
  const entries = reader.index.entries
  const relied = new Set([...(meta ? reliedOn(meta).keys() : [])].map((digest) => blobPath(digest))) // a delta leaves them out
  const checkDocker = (list: DockerManifestEntry[] | undefined, where: string, platform: string | undefined): void => {
    if (!Array.isArray(list)) {
      add('DOCKER', `${where} is not a docker manifest list`)
      return
    }
    for (const e of list) {
      for (const p of [e.Config, ...(e.Layers ?? [])]) if (!reader.has(p) && !relied.has(p)) add('DOCKER', `${where}: ${(e.RepoTags ?? []).join(',') || 'entry'} points at missing "${p}"`, p)
    }
    if (meta && platform) {
      const expected = JSON.stringify(normalizeRepoTags(dockerManifest(meta.images ?? [], platform)))
      if (JSON.stringify(normalizeRepoTags(list)) !== expected) add('DOCKER', `${where} does not match bundle.json for ${platform}`)
    }
  }
  const checkSums = async (sumsBytes: Buffer): Promise<void> => {
    let lines: {hex: string; path: string}[] = []
    try {
      lines = parseChecksums(sumsBytes.toString('utf8'), CHECKSUMS_FILE)
    } catch (error) {
      add('CHECKSUMS', (error as Error).message, CHECKSUMS_FILE)
    }
    const listed = new Set<string>()
    for (const line of lines) {
      listed.add(line.path)
      const entry = entries.get(line.path)
      if (!entry) {
        add('CHECKSUMS', `${CHECKSUMS_FILE} lists "${line.path}", which is not in the bundle`, line.path)
        continue
      }
      let actual: string | undefined
      if (line.path.startsWith(BLOBS_DIR)) actual = c.blobHashes.get(line.path)?.slice(7) ?? (c.quick ? line.path.slice(BLOBS_DIR.length) : undefined)
      else {
        const bytes = await c.readSmall(line.path)
        actual = bytes ? digestHex(sha256Digest(bytes)) : undefined
      }
      if (actual !== undefined && actual !== line.hex) add('CHECKSUMS', `"${line.path}" does not match ${CHECKSUMS_FILE}`, line.path)
    }
    for (const name of entries.keys()) {
      if (name !== CHECKSUMS_FILE && !listed.has(name)) add('CHECKSUMS', `"${name}" is in the bundle but not in ${CHECKSUMS_FILE}`, name)
    }
  }
  /** What verify checks in a required file beyond its presence (and its SHA256SUMS line), by entry kind. */
  const checks: Record<string, (bytes: Buffer, file: RequiredFile) => void | Promise<void>> = {
    'manifest.json': (bytes) => checkDocker(parse<DockerManifestEntry[]>(bytes), DOCKER_MANIFEST_FILE, meta?.dockerPlatform),
    'docker-fragment': (bytes, file) => {
      const inner = readFragmentManifest(bytes)
      if (!inner) add('DOCKER', `"${file.path}" is not a tar holding one manifest.json`, file.path)
      else checkDocker(parse<DockerManifestEntry[]>(inner), file.path, file.platform)
    },
    SHA256SUMS: checkSums,
  }
  for (const file of requiredFiles(meta)) {
    if (c.readAlready.includes(file.path)) continue
    const check = checks[file.kind]
    if (!check) {
      if (!entries.has(file.path)) add('MISSING', `"${file.path}" is missing`, file.path)
      continue
    }
    const bytes = await c.readSmall(file.path)
    if (bytes) await check(bytes, file)
  }
}

/**
 * RepoTags compared by what they mean: bundles of kubeferry 0.1 before fully qualified tags wrote docker's familiar
 * form (`busybox:1.36`); both name the same image. An unparsable tag stays as written, so it never matches.
 */
function normalizeRepoTags(entries: DockerManifestEntry[]): DockerManifestEntry[] {
  return entries.map((e) => ({
    ...e,
    RepoTags: (e.RepoTags ?? []).map((tag) => {
      try {
        return formatReference(parseReference(tag))
      } catch {
        return tag
      }
    }),
  }))
}

/** The manifest.json inside a docker fragment (a tiny tar), or undefined. */
function readFragmentManifest(tarBytes: Buffer): Buffer | undefined {
  if (tarBytes.length < 1536) return undefined
  const name = tarBytes.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '')
  if (name !== DOCKER_MANIFEST_FILE) return undefined
  const size = Number.parseInt(tarBytes.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8)
  if (!Number.isSafeInteger(size) || 512 + size > tarBytes.length) return undefined
  return tarBytes.subarray(512, 512 + size)
}
