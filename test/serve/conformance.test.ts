/**
 * Pull conformance of `kubeferry serve` (in-process, over a bundle of every test image made by the real writer):
 * the distribution spec's status codes, headers and error bodies for /v2/, manifests, blobs (Range exact bytes),
 * tags/list and _catalog pagination, read-only refusals, and unknown names/tags/digests.
 */
import test from 'ava'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {loadPeers, type TestImage} from '../harness/peers.js'
import {errorCode, get, serveBundles, sharedBundle, type TestServer} from './helpers.js'

const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

let server: TestServer
let images: TestImage[]
let layoutDir: string

test.before(async () => {
  const {path, layout} = await sharedBundle(loadPeers())
  images = layout.images
  layoutDir = layout.dir
  server = await serveBundles([path], {prefix: 'k8s'})
})

test.after.always(async () => {
  await server?.close(1000)
})

const blobFile = (digest: string): Promise<Buffer> => readFile(join(layoutDir, 'blobs', 'sha256', digest.slice(7)))
const servedPath = (image: TestImage): string => image.repository

test('GET and HEAD /v2/ answer 200 with the API version header', async (t) => {
  for (const path of ['/v2/', '/v2']) {
    for (const method of ['GET', 'HEAD'] as const) {
      const answer = await get(`${server.url}${path}`, {method})
      t.is(answer.status, 200, `${method} ${path}`)
      t.is(answer.headers['docker-distribution-api-version'], 'registry/2.0')
    }
  }
  t.deepEqual(JSON.parse((await get(`${server.url}/v2/`)).body.toString()), {})
})

test('every image by tag: exact bytes, Content-Type, Docker-Content-Digest, Content-Length, ETag — upstream path and prefix', async (t) => {
  t.true(images.length >= 8)
  for (const image of images) {
    for (const name of [servedPath(image), `k8s/${servedPath(image)}`]) {
      const url = `${server.url}/v2/${name}/manifests/${image.tag}`
      const answer = await get(url, {headers: {accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json'}})
      t.is(answer.status, 200, url)
      t.is(answer.headers['content-type'], image.mediaType, url)
      t.is(answer.headers['docker-content-digest'], image.digest, url)
      t.is(answer.headers['content-length'], String(image.size), url)
      t.is(answer.headers.etag, `"${image.digest}"`, url)
      t.is(sha(answer.body), image.digest, url)
      const head = await get(url, {method: 'HEAD'})
      t.is(head.status, 200)
      t.is(head.body.length, 0)
      t.is(head.headers['content-length'], String(image.size))
      t.is(head.headers['docker-content-digest'], image.digest)
      t.is(head.headers['content-type'], image.mediaType)
    }
  }
})

test('index and platform manifests by digest; blobs of every platform verified end to end', async (t) => {
  for (const image of images) {
    const byDigest = await get(`${server.url}/v2/${image.repository}/manifests/${image.digest}`)
    t.is(byDigest.status, 200)
    t.is(sha(byDigest.body), image.digest)
    for (const platform of image.platforms) {
      const manifest = await get(`${server.url}/v2/${image.repository}/manifests/${platform.digest}`)
      t.is(manifest.status, 200, `${image.name} ${platform.platform}`)
      t.is(manifest.headers['content-type'], platform.manifestMediaType)
      t.is(sha(manifest.body), platform.digest)
      for (const blob of [{digest: platform.config, size: platform.configSize}, ...platform.layers]) {
        const answer = await get(`${server.url}/v2/${image.repository}/blobs/${blob.digest}`)
        t.is(answer.status, 200)
        t.is(answer.headers['content-type'], 'application/octet-stream')
        t.is(answer.headers['docker-content-digest'], blob.digest)
        t.is(answer.headers['content-length'], String(blob.size))
        t.is(answer.headers['accept-ranges'], 'bytes')
        t.is(sha(answer.body), blob.digest)
      }
    }
  }
})

test('blob HEAD gives headers only; If-None-Match gives 304', async (t) => {
  const layer = images[0].platforms[0].layers[0]
  const url = `${server.url}/v2/${images[0].repository}/blobs/${layer.digest}`
  const head = await get(url, {method: 'HEAD'})
  t.is(head.status, 200)
  t.is(head.headers['content-length'], String(layer.size))
  t.is(head.body.length, 0)
  t.is((await get(url, {headers: {'if-none-match': `"${layer.digest}"`}})).status, 304)
  const manifestUrl = `${server.url}/v2/${images[0].repository}/manifests/${images[0].tag}`
  t.is((await get(manifestUrl, {headers: {'if-none-match': `"${images[0].digest}"`}})).status, 304)
})

test('Range requests return exactly the asked bytes (206 + Content-Range); bad ranges give 416', async (t) => {
  const image = images.find((i) => i.platforms[0].layers.some((l) => l.size > 1000))!
  const layer = image.platforms[0].layers.find((l) => l.size > 1000)!
  const bytes = await blobFile(layer.digest)
  const url = `${server.url}/v2/${image.repository}/blobs/${layer.digest}`
  const size = bytes.length
  const cases: Array<[string, number, number]> = [
    ['bytes=0-0', 0, 0],
    ['bytes=0-99', 0, 99],
    ['bytes=100-', 100, size - 1],
    ['bytes=-10', size - 10, size - 1],
    [`bytes=${size - 5}-${size + 1000}`, size - 5, size - 1],
    [`bytes=-${size + 50}`, 0, size - 1],
  ]
  for (const [range, start, end] of cases) {
    const answer = await get(url, {headers: {range}})
    t.is(answer.status, 206, range)
    t.is(answer.headers['content-range'], `bytes ${start}-${end}/${size}`, range)
    t.is(answer.headers['content-length'], String(end - start + 1), range)
    t.true(answer.body.equals(bytes.subarray(start, end + 1)), range)
  }
  for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=10-5', 'bytes=abc', 'items=0-1', 'bytes=-0']) {
    const answer = await get(url, {headers: {range}})
    t.is(answer.status, 416, range)
    t.is(answer.headers['content-range'], `bytes */${size}`, range)
    t.is(errorCode(answer), 'RANGE_INVALID', range)
  }
})

test('tags/list: full list, then n/last pagination through Link headers', async (t) => {
  const pauseTags = images.filter((i) => i.repository === 'pause').map((i) => i.tag).sort()
  t.true(pauseTags.length >= 3)
  const full = await get(`${server.url}/v2/pause/tags/list`)
  t.is(full.status, 200)
  t.is(full.headers['content-type'], 'application/json; charset=utf-8')
  t.deepEqual(JSON.parse(full.body.toString()), {name: 'pause', tags: pauseTags})
  t.false('link' in full.headers)

  const walked: string[] = []
  let next: string | undefined = '/v2/k8s/pause/tags/list?n=2'
  let pages = 0
  while (next) {
    const page = await get(`${server.url}${next}`)
    t.is(page.status, 200)
    const body = JSON.parse(page.body.toString()) as {name: string; tags: string[]}
    t.is(body.name, 'k8s/pause')
    t.true(body.tags.length <= 2)
    walked.push(...body.tags)
    next = /^<([^>]+)>; rel="next"$/.exec(page.headers.link ?? '')?.[1]
    pages++
  }
  t.deepEqual(walked, pauseTags)
  t.is(pages, Math.ceil(pauseTags.length / 2))
  const afterLast = JSON.parse((await get(`${server.url}/v2/pause/tags/list?last=${pauseTags[0]}`)).body.toString()) as {tags: string[]}
  t.deepEqual(afterLast.tags, pauseTags.slice(1))
  t.deepEqual((JSON.parse((await get(`${server.url}/v2/pause/tags/list?n=0`)).body.toString()) as {tags: string[]}).tags, [])
  const bad = await get(`${server.url}/v2/pause/tags/list?n=-1`)
  t.is(bad.status, 400)
  t.is(errorCode(bad), 'PAGINATION_NUMBER_INVALID')
})

test('_catalog lists upstream paths, prefixed paths and the kubeadm CoreDNS alias, paginated', async (t) => {
  const full = JSON.parse((await get(`${server.url}/v2/_catalog`)).body.toString()) as {repositories: string[]}
  const expected = new Set<string>()
  for (const image of images) {
    expected.add(image.repository)
    expected.add(`k8s/${image.repository}`)
  }
  expected.add('coredns')
  expected.add('k8s/coredns')
  t.deepEqual(full.repositories, [...expected].sort())
  t.true(full.repositories.includes('library/busybox'))
  t.true(full.repositories.includes('coredns/coredns'))

  const walked: string[] = []
  let next: string | undefined = '/v2/_catalog?n=3'
  while (next) {
    const page = await get(`${server.url}${next}`)
    walked.push(...(JSON.parse(page.body.toString()) as {repositories: string[]}).repositories)
    next = /^<([^>]+)>; rel="next"$/.exec(page.headers.link ?? '')?.[1]
  }
  t.deepEqual(walked, full.repositories)
})

test('the CoreDNS alias answers the same digest as coredns/coredns', async (t) => {
  const coredns = images.find((i) => i.repository === 'coredns/coredns')!
  for (const name of ['coredns', 'k8s/coredns']) {
    const answer = await get(`${server.url}/v2/${name}/manifests/${coredns.tag}`)
    t.is(answer.status, 200, name)
    t.is(answer.headers['docker-content-digest'], coredns.digest)
  }
})

test('writes are refused with 405 UNSUPPORTED on every endpoint', async (t) => {
  const image = images[0]
  const paths = ['/v2/', `/v2/${image.repository}/manifests/${image.tag}`, `/v2/${image.repository}/blobs/${image.digest}`, `/v2/${image.repository}/blobs/uploads/`, '/v2/new/repo/blobs/uploads/abc', '/v2/_catalog']
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    for (const path of paths) {
      const answer = await get(`${server.url}${path}`, {method, body: method === 'DELETE' ? undefined : '{}'})
      t.is(answer.status, 405, `${method} ${path}`)
      t.is(errorCode(answer), 'UNSUPPORTED', `${method} ${path}`)
      t.is(answer.headers['docker-distribution-api-version'], 'registry/2.0')
    }
  }
  t.is((await get(`${server.url}/v2/${image.repository}/blobs/uploads/`)).status, 405)
  // still serving afterwards
  t.is((await get(`${server.url}/v2/${image.repository}/manifests/${image.tag}`)).status, 200)
})

test('unknown repository, tag and digests give 404 with the spec error codes', async (t) => {
  const image = images[0]
  const other = images.find((i) => i.repository !== image.repository)!
  const zero = `sha256:${'0'.repeat(64)}`
  const cases: Array<[string, string, 'GET' | 'HEAD']> = [
    ['/v2/no/such/repo/manifests/latest', 'NAME_UNKNOWN', 'GET'],
    ['/v2/no-such-repo/tags/list', 'NAME_UNKNOWN', 'GET'],
    ['/v2/no-such-repo/blobs/' + zero, 'NAME_UNKNOWN', 'GET'],
    [`/v2/${image.repository}/manifests/no-such-tag`, 'MANIFEST_UNKNOWN', 'GET'],
    [`/v2/${image.repository}/manifests/${zero}`, 'MANIFEST_UNKNOWN', 'GET'],
    // in the bundle, but not an image of this repository
    [`/v2/${image.repository}/manifests/${other.digest}`, 'MANIFEST_UNKNOWN', 'GET'],
    [`/v2/${image.repository}/blobs/${zero}`, 'BLOB_UNKNOWN', 'GET'],
    [`/v2/${image.repository}/blobs/${other.platforms[0].config}`, 'BLOB_UNKNOWN', 'GET'],
  ]
  for (const [path, code] of cases) {
    const answer = await get(`${server.url}${path}`)
    t.is(answer.status, 404, path)
    t.is(answer.headers['content-type'], 'application/json; charset=utf-8', path)
    t.is(errorCode(answer), code, path)
    const head = await get(`${server.url}${path}`, {method: 'HEAD'})
    t.is(head.status, 404, `HEAD ${path}`)
    t.is(head.body.length, 0)
  }
})

test('every request gets an access-log line with method, path, status, bytes and time', async (t) => {
  const image = images[0]
  const before = server.logLines.length
  await get(`${server.url}/v2/${image.repository}/manifests/${image.tag}`)
  await get(`${server.url}/v2/nope/tags/list`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const lines = server.logLines.slice(before)
  t.regex(lines.find((l) => l.includes(`/manifests/${image.tag}`)) ?? '', new RegExp(`"GET /v2/${image.repository}/manifests/${image.tag}" 200 ${image.size} \\d+\\.\\dms$`))
  t.regex(lines.find((l) => l.includes('/v2/nope/')) ?? '', /"GET \/v2\/nope\/tags\/list" 404 \d+ /)
})
