/**
 * Only verified content is served. A bundle with one flipped byte in a layer is refused at start; with --no-verify it
 * is served, and the bad blob is cut off mid-answer the first time (the client never gets the complete bytes) and
 * never served again, while intact blobs — whole or by Range — keep flowing.
 */
import test from 'ava'
import {createHash} from 'node:crypto'
import {copyFile, mkdtemp, open, readFile, truncate} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {request} from 'undici'
import {indexTar} from '../../src/bundle/tar-index.js'
import {blobPath} from '../../src/bundle/layout.js'
import type {Digest} from '../../src/oci/digest.js'
import {loadPeers, type TestImage} from '../harness/peers.js'
import {errorCode, get, serveBundles, sharedBundle, startCli} from './helpers.js'

const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

let dir: string
let good: string
let images: TestImage[]
let layoutDir: string

test.before(async () => {
  const shared = await sharedBundle(loadPeers())
  good = shared.path
  images = shared.layout.images
  layoutDir = shared.layout.dir
  dir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-verify-'))
})

/** Copy the bundle and flip one byte in the middle of `digest`'s entry. */
async function corruptCopy(name: string, digest: string): Promise<string> {
  const path = join(dir, name)
  await copyFile(good, path)
  const entry = (await indexTar(path)).entries.get(blobPath(digest as Digest))!
  const handle = await open(path, 'r+')
  try {
    const at = entry.offset + Math.floor(entry.size / 2)
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, at)
    byte[0] ^= 0xff
    await handle.write(byte, 0, 1, at)
  } finally {
    await handle.close()
  }
  return path
}

function bigLayer(): {image: TestImage; digest: string; size: number} {
  for (const image of images) {
    for (const layer of image.platforms[0].layers) if (layer.size > 2000) return {image, digest: layer.digest, size: layer.size}
  }
  throw new Error('no layer over 2000 bytes in the test images')
}

test('a bundle with a flipped layer byte is refused at start with a clear one-line error', async (t) => {
  const {digest} = bigLayer()
  const bad = await corruptCopy('flipped.tar', digest)
  const error = await t.throwsAsync(startCli([bad, '--listen', '127.0.0.1:0']))
  const stderr = (error as Error & {stderr?: string}).stderr ?? ''
  t.is((error as Error & {code?: number}).code, 1)
  t.regex(stderr, /^error: .*flipped\.tar does not verify: /m)
  t.true(stderr.includes(digest.slice(7, 19)) || stderr.includes(digest), stderr)
  t.notRegex(stderr, /\n\s+at /, 'no stack trace')
})

test('a truncated bundle and a missing file are refused at start, even with --no-verify', async (t) => {
  const cut = join(dir, 'truncated.tar')
  await copyFile(good, cut)
  await truncate(cut, 70_000)
  for (const args of [[cut], [cut, '--no-verify'], [join(dir, 'missing.tar')]]) {
    const error = await t.throwsAsync(startCli([...args, '--listen', '127.0.0.1:0']))
    t.is((error as Error & {code?: number}).code, 1, args.join(' '))
    t.regex((error as Error & {stderr?: string}).stderr ?? '', /^error: /m)
  }
})

test('--no-verify: a corrupt blob is cut short on first serve, then 404; intact blobs and ranges still served', async (t) => {
  const {image, digest, size} = bigLayer()
  const bad = await corruptCopy('lazy.tar', digest)
  const server = await serveBundles([bad], {contentVerified: false})
  try {
    t.is(server.catalog.contents.get(digest as Digest)?.state, 'unverified')
    const url = `${server.url}/v2/${image.repository}/blobs/${digest}`
    // First serve: headers promise the full size, the body is cut before the end.
    let received = 0
    let failed = false
    try {
      const response = await request(url)
      t.is(response.statusCode, 200)
      for await (const chunk of response.body) received += (chunk as Buffer).length
    } catch {
      failed = true
    }
    t.true(failed || received < size, `client must not get the complete bad blob (got ${received} of ${size})`)
    t.true(received < size)
    t.is(server.catalog.contents.get(digest as Digest)?.state, 'bad')
    const again = await get(url)
    t.is(again.status, 404)
    t.is(errorCode(again), 'BLOB_UNKNOWN')
    t.is((await get(url, {headers: {range: 'bytes=0-10'}})).status, 404)

    // Every other blob is intact and still served; a Range on a not-yet-verified blob hashes it first.
    const other = images.flatMap((i) => i.platforms.flatMap((p) => p.layers.map((l) => ({i, l})))).find(({l}) => l.digest !== digest && l.size > 100)!
    const otherUrl = `${server.url}/v2/${other.i.repository}/blobs/${other.l.digest}`
    t.is(server.catalog.contents.get(other.l.digest as Digest)?.state, 'unverified')
    const part = await get(otherUrl, {headers: {range: 'bytes=10-49'}})
    t.is(part.status, 206)
    const file = await readFile(join(layoutDir, 'blobs', 'sha256', other.l.digest.slice(7)))
    t.true(part.body.equals(file.subarray(10, 50)))
    t.is(server.catalog.contents.get(other.l.digest as Digest)?.state, 'verified')
    const whole = await get(`${server.url}/v2/${image.repository}/manifests/${image.tag}`)
    t.is(whole.status, 200)
    t.is(sha(whole.body), image.digest)
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.true(server.logLines.some((line) => line.includes(digest) && line.includes('error=')), 'the cut answer is logged with its reason')
  } finally {
    await server.close(1000)
  }
})

test('--no-verify: the first full serve of an intact blob verifies it', async (t) => {
  const server = await serveBundles([good], {contentVerified: false})
  try {
    const image = images[0]
    const layer = image.platforms[0].layers[0]
    const answer = await get(`${server.url}/v2/${image.repository}/blobs/${layer.digest}`)
    t.is(answer.status, 200)
    t.is(sha(answer.body), layer.digest)
    t.is(server.catalog.contents.get(layer.digest as Digest)?.state, 'verified')
  } finally {
    await server.close(1000)
  }
})

test('a corrupt manifest is refused at start, even with --no-verify', async (t) => {
  const image = images.find((i) => i.size > 200)!
  const bad = await corruptCopy('manifest.tar', image.platforms[0].digest)
  const error = await t.throwsAsync(startCli([bad, '--no-verify', '--listen', '127.0.0.1:0']))
  t.is((error as Error & {code?: number}).code, 1)
  t.regex((error as Error & {stderr?: string}).stderr ?? '', /^error: .*manifest\.tar/m)
})
