/**
 * The one kind of tar header a bundle holds: a regular file with a short ASCII name, uid/gid 0, no user or group
 * names, plain ustar. Byte for byte what tar-stream 3 writes for such an entry (its `headers.encode`), so bundles
 * stay identical to those written through tar-stream; encoding it here lets the writer put headers straight into
 * the output file instead of passing every byte of every blob through a stream of streams.
 */
import {KubeferryError} from '../oci/errors.js'
import {END_OF_ARCHIVE_BYTES, TAR_BLOCK} from './layout.js'

const ZEROS = '0000000000000000000'
const SEVENS = '7777777777777777777'

function octal(value: number, digits: number): string {
  const text = value.toString(8)
  if (text.length > digits) return `${SEVENS.slice(0, digits)} `
  return `${ZEROS.slice(0, digits - text.length)}${text} `
}

function encodeSize(size: number, block: Buffer, offset: number): void {
  if (size.toString(8).length > 11) {
    // base-256 (GNU) for sizes of 8 GiB and more, as tar-stream does
    block[offset] = 0x80
    let n = size
    for (let i = 11; i > 0; i--) {
      block[offset + i] = n & 0xff
      n = Math.floor(n / 0x100)
    }
  } else {
    block.write(octal(size, 11), offset, 'latin1')
  }
}

/** A 512-byte ustar header for a regular file. `mtime` in seconds since the epoch. */
export function fileHeader(name: string, size: number, mode: number, mtime: number): Buffer {
  // eslint-disable-next-line no-control-regex
  if (name.length >= 100 || !/^[\x20-\x7e]+$/.test(name)) throw new KubeferryError('INTERNAL', `tar entry name not representable in a plain ustar header: ${name}`)
  const block = Buffer.alloc(TAR_BLOCK)
  block.write(name, 0, 'latin1')
  block.write(octal(mode & 0o7777, 6), 100, 'latin1')
  block.write(octal(0, 6), 108, 'latin1') // uid
  block.write(octal(0, 6), 116, 'latin1') // gid
  encodeSize(size, block, 124)
  block.write(octal(mtime | 0, 11), 136, 'latin1')
  block[156] = 0x30 // '0': regular file
  block.write('ustar\u000000', 257, 'latin1') // magic "ustar\0", version "00"
  block.write(octal(0, 6), 329, 'latin1') // devmajor
  block.write(octal(0, 6), 337, 'latin1') // devminor
  let sum = 8 * 32 // the checksum field counts as eight spaces
  for (let i = 0; i < 148; i++) sum += block[i]
  for (let i = 156; i < TAR_BLOCK; i++) sum += block[i]
  block.write(octal(sum, 6), 148, 'latin1')
  return block
}

/** Zero bytes that pad `size` bytes of data to the next block boundary. */
export function paddingFor(size: number): number {
  const rest = size % TAR_BLOCK
  return rest === 0 ? 0 : TAR_BLOCK - rest
}

/** A small complete tar in memory: header, data and padding per file, then the end-of-archive marker. */
export function tarOf(files: {name: string; bytes: Buffer; mode?: number}[], mtime: number): Buffer {
  const parts: Buffer[] = []
  for (const file of files) {
    parts.push(fileHeader(file.name, file.bytes.length, file.mode ?? 0o644, mtime), file.bytes, Buffer.alloc(paddingFor(file.bytes.length)))
  }
  parts.push(Buffer.alloc(END_OF_ARCHIVE_BYTES))
  return Buffer.concat(parts)
}
