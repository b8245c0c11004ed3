/**
 * Hostile and malformed requests against `kubeferry serve`: path traversal (plain and encoded), invalid names, tags
 * and digests, oversize URLs and headers, garbage request lines — each gets 400 with spec error JSON, and the server
 * keeps answering other clients. A client that stops reading mid-blob is cut off once the connection is idle.
 */
import test from 'ava'
import {mkdtemp} from 'node:fs/promises'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {loadPeers} from '../harness/peers.js'
import {buildImageSet} from '../images/builder.js'
import {errorCode, get, rawRequest, serveBundles, sharedBundle, type TestServer} from './helpers.js'
import {makeBundle} from './make-bundle.js'

let server: TestServer

test.before(async () => {
  const {path} = await sharedBundle(loadPeers())
  server = await serveBundles([path])
})

test.after.always(async () => {
  await server?.close(1000)
})

const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)
const bodyOf = (raw: string): string => raw.slice(raw.indexOf('\r\n\r\n') + 4)

async function stillServing(t: import('ava').ExecutionContext): Promise<void> {
  const answer = await get(`${server.url}/v2/pause/manifests/3.10`)
  t.is(answer.status, 200, 'the server still serves after the bad request')
}

test('path traversal in the URL, plain or encoded, gives 400 with error JSON', async (t) => {
  const targets = [
    '/v2/../../etc/passwd',
    '/v2/pause/../../../etc/shadow/manifests/x',
    '/v2/pause/manifests/..',
    '/v2/pause/blobs/../../index.json',
    '/v2/%2e%2e/%2e%2e/etc/passwd',
    '/v2/pause%2f..%2f..%2fetc/manifests/3.10',
    '/v2/pause/./manifests/3.10',
    '/v2//pause/manifests/3.10',
    '/v2/pause\\..\\x/manifests/3.10',
  ]
  for (const target of targets) {
    const raw = await rawRequest(server.url, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    t.is(statusOf(raw), 400, target)
    t.is((JSON.parse(bodyOf(raw)) as {errors: Array<{code: string}>}).errors[0].code, 'BAD_REQUEST', target)
  }
  await stillServing(t)
})

test('malformed names, tags and digests give 400 with NAME_INVALID / TAG_INVALID / DIGEST_INVALID', async (t) => {
  const cases: Array<[string, string]> = [
    ['/v2/Pause/manifests/3.10', 'NAME_INVALID'],
    ['/v2/pause-/manifests/3.10', 'NAME_INVALID'],
    ['/v2/pa$use/tags/list', 'NAME_INVALID'],
    ['/v2/pause/manifests/-bad', 'TAG_INVALID'],
    [`/v2/pause/manifests/${'a'.repeat(129)}`, 'TAG_INVALID'],
    ['/v2/pause/manifests/sha256:1234', 'DIGEST_INVALID'],
    [`/v2/pause/manifests/sha512:${'a'.repeat(128)}`, 'DIGEST_INVALID'],
    ['/v2/pause/blobs/notadigest', 'DIGEST_INVALID'],
    [`/v2/pause/blobs/sha256:${'A'.repeat(64)}`, 'DIGEST_INVALID'],
  ]
  for (const [path, code] of cases) {
    const answer = await get(`${server.url}${path}`)
    t.is(answer.status, 400, path)
    t.is(errorCode(answer), code, path)
  }
  await stillServing(t)
})

test('an oversize URL gives 400 (in the app for long URLs, in the parser beyond the header limit)', async (t) => {
  const long = await get(`${server.url}/v2/${'a/'.repeat(1500)}pause/manifests/3.10`)
  t.is(long.status, 400)
  t.is(errorCode(long), 'BAD_REQUEST')
  const huge = await rawRequest(server.url, `GET /v2/${'a'.repeat(100_000)}/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  t.is(statusOf(huge), 400)
  t.is((JSON.parse(bodyOf(huge)) as {errors: Array<{code: string}>}).errors[0].code, 'BAD_REQUEST')
  const bigHeader = await rawRequest(server.url, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Junk: ${'j'.repeat(40_000)}\r\nConnection: close\r\n\r\n`)
  t.is(statusOf(bigHeader), 400)
  await stillServing(t)
})

test('garbage instead of HTTP gives 400 JSON and does not stop the server', async (t) => {
  for (const garbage of ['\x00\x01\x02garbage\r\n\r\n', 'GET\r\n\r\n', 'GET /v2/ HTTP/9.9\r\n\r\n', 'HELLO WORLD\r\n\r\n']) {
    const raw = await rawRequest(server.url, garbage)
    t.is(statusOf(raw), 400, JSON.stringify(garbage))
  }
  await stillServing(t)
})

test('paths outside /v2/ and unknown endpoints are 404 JSON, not files', async (t) => {
  for (const path of ['/', '/etc/passwd', '/index.json', '/blobs/sha256/x', '/v2/pause/unknown/x', '/v2/pause']) {
    const answer = await get(`${server.url}${path}`)
    t.is(answer.status, 404, path)
    t.truthy(errorCode(answer), path)
  }
})

test('bad requests are logged with their status and the server keeps its clients', async (t) => {
  const before = server.logLines.length
  await get(`${server.url}/v2/%2e%2e/x`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.true(server.logLines.slice(before).some((line) => line.includes(' 400 ')))
  // Many concurrent good and bad requests: all good ones succeed.
  const results = await Promise.all(
    Array.from({length: 40}, (_, i) => (i % 2 ? get(`${server.url}/v2/pause/manifests/3.10`) : get(`${server.url}/v2/..%2f/x`))),
  )
  t.true(results.every((r, i) => r.status === (i % 2 ? 200 : 400)))
})

test('a client that stops reading mid-blob is cut off after the idle timeout, and others are served meanwhile', async (t) => {
  // A layer far bigger than the socket buffers, so the response really stalls when the client stops reading.
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-stall-'))
  const set = await buildImageSet({dir: join(dir, 'images'), only: ['registry.k8s.io/pause:3.10'], layerSize: 32 * 1024 * 1024, busybox: false, platforms: ['linux/amd64']})
  const bundle = join(dir, 'big.tar')
  await makeBundle({output: bundle, platforms: ['linux/amd64'], layout: {dir: join(dir, 'images'), images: set.images}})
  const stalled = await serveBundles([bundle], {idleTimeoutMs: 500})
  t.teardown(() => stalled.close(500))
  const layer = set.images[0].platforms[0].layers.reduce((a, b) => (b.size > a.size ? b : a))

  const socket = connect(stalled.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.pause() // never reads a byte of the body
  socket.write(`GET /v2/pause/blobs/${layer.digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
  t.is((await get(`${stalled.url}/v2/pause/manifests/3.10`)).status, 200, 'another client is served while one stalls')

  const deadline = Date.now() + 10_000
  let line: string | undefined
  while (!(line = stalled.logLines.find((l) => l.includes(layer.digest))) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.truthy(line, 'the stalled response ended (the access log has it)')
  const sent = Number(/ 200 (\d+) /.exec(line!)?.[1])
  t.true(sent < layer.size, `cut short: ${sent} of ${layer.size} bytes`)
  t.regex(line!, /error=/)
})
