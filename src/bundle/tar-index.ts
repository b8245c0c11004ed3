/**
 * Random access to an uncompressed tar: one pass over the headers (skipping file data with positioned reads, so the
 * cost is O(entries), not O(bytes)) builds a map name → data offset. Hostile input is refused here, before anything
 * reads a byte of content: links, devices, absolute or `..` paths, duplicate names, bad header checksums, entries
 * running past the end of the file, and absurd entry counts.
 */
import {KubeferryError} from '../oci/errors.js'
import {TAR_BLOCK} from './layout.js'
import type {ByteReader, ByteSource} from './byte-source.js'
import {openBundleBytes} from './parted-bytes.js'
import {explainPartedFailure} from './parts-check.js'

export interface TarEntry {
  name: string
  /** Byte offset of the entry's data in the file. */
  offset: number
  size: number
  /** Offset of the entry's (first) header block. */
  headerOffset: number
  mode: number
}

export interface TarIndex {
  path: string
  size: number
  entries: Map<string, TarEntry>
  /** Entries in archive order. */
  order: TarEntry[]
  /** Offset of the end-of-archive marker (first zero block). */
  endOffset: number
  /** Where the entries' bytes are read from. */
  bytes: ByteSource
}

export const MAX_TAR_ENTRIES = 200_000

function bad(path: string, why: string): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', `${path}: not a valid bundle: ${why}`, {
    hint: 'the file is corrupt, truncated or was tampered with; copy it again from the source and compare its .sha256',
  })
}

function readString(block: Buffer, start: number, length: number): string {
  const slice = block.subarray(start, start + length)
  const nul = slice.indexOf(0)
  return slice.subarray(0, nul === -1 ? length : nul).toString('utf8')
}

function readNumber(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length)
  if (field[0] & 0x80) {
    // base-256 (GNU) for large sizes
    let value = 0
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]
    return value
  }
  const text = readString(block, start, length).trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) return Number.NaN
  return Number.parseInt(text, 8)
}

function checksumOk(block: Buffer): boolean {
  const stored = readNumber(block, 148, 8)
  let sum = 0
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]
  return sum === stored
}

/** Validate an entry name and return its normalised form (no leading `./`). Throws on unsafe names. */
export function safeEntryName(tarPath: string, raw: string): string {
  let name = raw
  while (name.startsWith('./')) name = name.slice(2)
  if (name === '' || name === '.') throw bad(tarPath, `entry with an empty name`)
  if (name.startsWith('/')) throw bad(tarPath, `absolute path entry "${raw}"`)
  if (name.includes('\\') || name.includes('\0')) throw bad(tarPath, `entry name with a backslash or NUL "${raw}"`)
  const parts = name.replace(/\/$/, '').split('/')
  if (parts.some((p) => p === '..')) throw bad(tarPath, `path traversal entry "${raw}"`)
  return name
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let pos = 0
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos)
    if (space === -1) break
    const length = Number.parseInt(data.subarray(pos, space).toString('ascii'), 10)
    if (!Number.isFinite(length) || length <= 0 || pos + length > data.length) break
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1)
    pos += length
  }
  return out
}

const MAX_META_ENTRY = 1024 * 1024

/** Index the tar at `path` (one file, or its parts: see openBundleBytes) or behind any byte source. */
export async function indexTar(source: string | ByteSource): Promise<TarIndex> {
  const bytes = typeof source === 'string' ? await openBundleBytes(source) : source
  try {
    return await scanTar(bytes)
  } catch (error) {
    throw await explainPartedFailure(bytes, error)
  }
}

async function scanTar(bytes: ByteSource): Promise<TarIndex> {
  const path = bytes.label
  const size = bytes.size
  let scan: ByteReader
  try {
    scan = await bytes.open()
  } catch (error) {
    throw new KubeferryError('IO', `cannot open bundle ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'check the path and permissions'})
  }
  try {
    const entries = new Map<string, TarEntry>()
    const order: TarEntry[] = []
    let pos = 0
    let pendingName: string | undefined
    let pendingSize: number | undefined
    let endOffset = -1
    while (pos + TAR_BLOCK <= size) {
      const block = await scan.read(pos, TAR_BLOCK)
      if (block.length !== TAR_BLOCK) throw bad(path, 'truncated header')
      if (block.every((b) => b === 0)) {
        endOffset = pos
        break
      }
      if (!checksumOk(block)) throw bad(path, `corrupt tar header at offset ${pos}`)
      const type = String.fromCharCode(block[156] || 0x30)
      let entrySize = readNumber(block, 124, 12)
      if (!Number.isSafeInteger(entrySize) || entrySize < 0) throw bad(path, `invalid entry size at offset ${pos}`)
      const dataOffset = pos + TAR_BLOCK
      if (dataOffset + entrySize > size) throw bad(path, `entry at offset ${pos} runs past the end of the file (truncated)`)
      const next = dataOffset + Math.ceil(entrySize / TAR_BLOCK) * TAR_BLOCK

      if (type === 'x' || type === 'L' || type === 'g') {
        if (entrySize > MAX_META_ENTRY) throw bad(path, `oversized extended header at offset ${pos}`)
        const data = await scan.read(dataOffset, entrySize)
        if (type === 'x') {
          const pax = parsePax(data)
          if (pax.path !== undefined) pendingName = pax.path
          if (pax.size !== undefined) pendingSize = Number.parseInt(pax.size, 10)
        } else if (type === 'L') {
          pendingName = readString(data, 0, data.length)
        }
        pos = next
        continue
      }
      const prefix = block.subarray(257, 263).toString('ascii').startsWith('ustar') ? readString(block, 345, 155) : ''
      const headerName = readString(block, 0, 100)
      const rawName = pendingName ?? (prefix ? `${prefix}/${headerName}` : headerName)
      if (pendingSize !== undefined) {
        entrySize = pendingSize
        if (!Number.isSafeInteger(entrySize) || dataOffset + entrySize > size) throw bad(path, `entry "${rawName}" runs past the end of the file`)
      }
      pendingName = undefined
      pendingSize = undefined

      const name = safeEntryName(path, rawName)
      if (type === '5') {
        pos = next
        continue // directories carry nothing; tolerated
      }
      if (type === '1' || type === '2') throw bad(path, `link entry "${name}" (links are not allowed in a bundle)`)
      if (type !== '0' && type !== '7') throw bad(path, `entry "${name}" is not a regular file (type ${JSON.stringify(type)})`)
      if (entries.has(name)) throw bad(path, `duplicate entry "${name}"`)
      if (entries.size >= MAX_TAR_ENTRIES) throw bad(path, `more than ${MAX_TAR_ENTRIES} entries`)
      const entry: TarEntry = {name, offset: dataOffset, size: entrySize, headerOffset: pos, mode: readNumber(block, 100, 8)}
      entries.set(name, entry)
      order.push(entry)
      pos = dataOffset + Math.ceil(entrySize / TAR_BLOCK) * TAR_BLOCK
    }
    if (endOffset === -1) throw bad(path, 'no end-of-archive marker (the file is truncated)')
    return {path, size, entries, order, endOffset, bytes}
  } finally {
    await scan.close()
  }
}
