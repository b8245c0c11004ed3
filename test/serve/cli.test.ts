/**
 * The `kubeferry serve` command as an operator runs it: startup document, access log (text and --json), SIGTERM
 * with downloads in flight, TLS, several bundles with a conflicting tag (first wins), bad flags.
 */
import test from 'ava'
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, symlink} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {promisify} from 'node:util'
import {Agent, request} from 'undici'
import {loadPeers, type TestImage} from '../harness/peers.js'
import {buildImageSet} from '../images/builder.js'
import {makeBundle} from './make-bundle.js'
import {get, serveBundles, sharedBundle, startCli, stopCli} from './helpers.js'
import {firstRunOnly} from '../helpers/cli.js'

const execFileP = promisify(execFile)
const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

let bundle: string
let images: TestImage[]
let dir: string

test.before(async () => {
  const shared = await sharedBundle(loadPeers())
  bundle = shared.path
  images = shared.layout.images
  dir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-cli-'))
})

/** A bundle holding one image with a large layer, and a different registry.k8s.io/pause:3.10 than the shared one. */
let bigBundle: Promise<{path: string; images: TestImage[]}> | undefined
async function big(): Promise<{path: string; images: TestImage[]}> {
  bigBundle ??= (async () => {
    const layoutDir = join(dir, 'big-layout')
    const set = await buildImageSet({dir: layoutDir, only: ['registry.k8s.io/pause:3.10'], layerSize: 24 * 1024 * 1024, gzipLevel: 1, busybox: false})
    const path = join(dir, 'big.tar')
    await makeBundle({output: path, layout: {dir: layoutDir, images: set.images}})
    return {path, images: set.images}
  })()
  return bigBundle
}

test('--json: a listening document on stdout, JSON access-log lines on stderr, SIGTERM exits 0', async (t) => {
  const server = await startCli([bundle, '--listen', '127.0.0.1:0', '--json', '--prefix', 'k8s'])
  const info = JSON.parse(server.first) as {event: string; url: string; images: number; repositories: number; prefix: string; verify: string}
  t.is(info.event, 'listening')
  t.regex(info.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.is(info.images, images.length)
  t.is(info.prefix, 'k8s')
  t.is(info.verify, 'at-start')
  const pause = images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  const answer = await get(`${info.url}/v2/k8s/pause/manifests/3.10`)
  t.is(answer.headers['docker-content-digest'], pause.digest)
  t.is(await stopCli(server), 0)
  const lines = server.stderr().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const access = lines.find((l) => l.path === '/v2/k8s/pause/manifests/3.10')
  t.truthy(access, server.stderr())
  t.is(access!.method, 'GET')
  t.is(access!.status, 200)
  t.is(access!.bytes, pause.size)
  t.is(typeof access!.ms, 'number')
  t.true(lines.some((l) => String(l.message).includes('SIGTERM')))
  t.true(lines.some((l) => l.message === 'stopped'))
})

test('text mode: one line per request (method, path, status, bytes, time); SIGINT stops it too', async (t) => {
  const server = await startCli([bundle, '--listen', '127.0.0.1:0'])
  t.regex(server.first, /^serving \d+ images \(\d+ repositories\) on http:\/\/127\.0\.0\.1:\d+$/)
  const url = /on (http:\S+)$/.exec(server.first)![1]
  await get(`${url}/v2/nope/manifests/x`)
  if (server.child.pid) process.kill(server.child.pid, 'SIGINT')
  t.is(await server.exited, 0)
  t.regex(server.stderr(), /^\S+Z 127\.0\.0\.1 "GET \/v2\/nope\/manifests\/x" 404 \d+ \d+\.\dms$/m)
  t.regex(server.stderr(), /loopback only/)
})

if (firstRunOnly('never starts the CLI: an in-process server')) test('graceful shutdown: a download in flight completes, new connections are refused', async (t) => {
  const {path, images: bigImages} = await big()
  const server = await serveBundles([path])
  const platform = bigImages[0].platforms[0]
  const layer = platform.layers.reduce((a, b) => (a.size > b.size ? a : b))
  t.true(layer.size > 8 * 1024 * 1024)
  const response = await request(`${server.url}/v2/pause/blobs/${layer.digest}`)
  t.is(response.statusCode, 200)
  const iterator = (response.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  const chunks: Buffer[] = [(await iterator.next()).value as Buffer]
  // The client stalls with most of the blob unsent; the server is told to stop.
  const closing = server.close(20_000)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await t.throwsAsync(get(`${server.url}/v2/`), undefined, 'a new connection is refused once shutdown started')
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) chunks.push(next.value as Buffer)
  await closing
  const bytes = Buffer.concat(chunks)
  t.is(bytes.length, layer.size)
  t.is(sha(bytes), layer.digest)
})

test('several bundles: the first given wins a conflicting tag, with a warning; the rest is merged', async (t) => {
  const {path: bigPath, images: bigImages} = await big()
  const bigPause = bigImages[0]
  const sharedPause = images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  t.not(bigPause.digest, sharedPause.digest)
  for (const [order, winner] of [[[bigPath, bundle], bigPause], [[bundle, bigPath], sharedPause]] as const) {
    const server = await startCli([...order, '--listen', '127.0.0.1:0', '--json'])
    const {url} = JSON.parse(server.first) as {url: string}
    t.is((await get(`${url}/v2/pause/manifests/3.10`)).headers['docker-content-digest'], winner.digest)
    // both bundles' other content is there: the other image's manifest by digest, and another repository
    const loser = winner === bigPause ? sharedPause : bigPause
    t.is((await get(`${url}/v2/pause/manifests/${loser.digest}`)).status, 200)
    t.is((await get(`${url}/v2/kube-proxy/manifests/v1.31.6`)).status, 200)
    t.is(await stopCli(server), 0)
    t.regex(server.stderr(), /pause:3\.10 is sha256:\S+ .*serving the first/)
  }
})

if (firstRunOnly('argument handling')) test('the same bundle named twice (the same path, a symlink, ./path): checked and counted once, with a note', async (t) => {
  const link = join(dir, 'same-as-all.tar')
  await symlink(bundle, link)
  const dotted = `${dirname(bundle)}/./${basename(bundle)}` // not join(): it would take the ./ out
  const server = await startCli([bundle, bundle, link, dotted, '--listen', '127.0.0.1:0', '--json'])
  t.is(await stopCli(server), 0) // first: a failed assertion must not leave it running
  const info = JSON.parse(server.first) as {bundles: string[]; images: number}
  t.deepEqual(info.bundles, [bundle])
  t.is(info.images, images.length, 'each image counted once')
  const messages = server.stderr().trim().split('\n').map((l) => String((JSON.parse(l) as {message?: string}).message))
  t.true(messages.some((m) => m.startsWith('verified 1 bundle(s), ')), messages.join('\n'))
  for (const repeat of [bundle, link, dotted]) t.true(messages.includes(`${repeat}: the same file as ${bundle}; served once`), messages.join('\n'))
  t.false(messages.some((m) => /is sha256:\S+ .*serving the first/.test(m)), 'no conflict warning against itself')
})

test('SIGTERM the moment the listening line is read: a graceful stop (exit 0, "stopped"), every time', async (t) => {
  for (let i = 0; i < 5; i++) {
    const server = await startCli([bundle, '--listen', '127.0.0.1:0', '--json'])
    t.is(await stopCli(server), 0, `start ${i + 1}: ${server.stderr()}`)
    t.regex(server.stderr(), /"stopped"/)
  }
})

test('TLS: --tls-cert/--tls-key serve HTTPS that a client trusting the certificate can pull from', async (t) => {
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  const server = await startCli([bundle, '--listen', '127.0.0.1:0', '--json', '--tls-cert', cert, '--tls-key', key])
  try {
    const {url} = JSON.parse(server.first) as {url: string}
    t.regex(url, /^https:\/\//)
    const {readFile} = await import('node:fs/promises')
    const dispatcher = new Agent({connect: {ca: await readFile(cert)}})
    const pause = images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
    const response = await request(`${url}/v2/pause/manifests/3.10`, {dispatcher})
    const chunks: Buffer[] = []
    for await (const chunk of response.body) chunks.push(chunk as Buffer)
    t.is(response.statusCode, 200)
    t.is(sha(Buffer.concat(chunks)), pause.digest)
    await dispatcher.close()
    // plain HTTP to the TLS port is not answered as a registry
    await t.throwsAsync(get(url.replace('https:', 'http:') + '/v2/').then((a) => (a.status === 200 ? a : Promise.reject(new Error(String(a.status))))))
  } finally {
    t.is(await stopCli(server), 0)
  }
})

if (firstRunOnly('argument parsing and messages')) test('bad flags and a busy port give one error line and exit 1', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  const busy = (blocker.address() as {port: number}).port
  try {
    const cases: Array<[string[], RegExp]> = [
      [[bundle, '--listen', 'nonsense'], /invalid listen address "nonsense"/],
      [[bundle, '--listen', '127.0.0.1:99999'], /invalid listen address/],
      [[bundle, '--prefix', 'Bad Prefix', '--listen', '127.0.0.1:0'], /invalid repository prefix/],
      [[bundle, '--listen', `127.0.0.1:${busy}`], /cannot listen on 127\.0\.0\.1:\d+: the address is already in use \(EADDRINUSE\)/],
      [[bundle, '--tls-cert', join(dir, 'none.crt'), '--tls-key', join(dir, 'none.key'), '--listen', '127.0.0.1:0'], /cannot read TLS certificate/],
    ]
    for (const [args, pattern] of cases) {
      const error = (await t.throwsAsync(startCli(args))) as Error & {code?: number; stderr?: string}
      t.is(error.code, 1, args.join(' '))
      t.regex(error.stderr ?? '', pattern)
      t.notRegex(error.stderr ?? '', /\n\s+at /)
    }
  } finally {
    blocker.close()
  }
})

if (firstRunOnly('never starts the CLI: an in-process server')) test('same path from two upstream registries: containerd\'s ns parameter picks the right one, else the first bundle', async (t) => {
  const layoutDir = join(dir, 'gcr-layout')
  const set = await buildImageSet({dir: layoutDir, images: [{name: 'k8s.gcr.io/pause:3.10', format: 'oci'}], layerSize: 99, busybox: false})
  const gcrBundle = join(dir, 'gcr.tar')
  await makeBundle({output: gcrBundle, layout: {dir: layoutDir, images: set.images}})
  const gcr = set.images[0]
  const k8s = images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  t.not(gcr.digest, k8s.digest)
  const server = await serveBundles([bundle, gcrBundle])
  try {
    const digestOf = async (query: string) => (await get(`${server.url}/v2/pause/manifests/3.10${query}`)).headers['docker-content-digest']
    t.is(await digestOf('?ns=k8s.gcr.io'), gcr.digest)
    t.is(await digestOf('?ns=registry.k8s.io'), k8s.digest)
    t.is(await digestOf(''), k8s.digest)
    t.is(await digestOf('?ns=quay.io'), k8s.digest)
    t.deepEqual(server.catalog.warnings, [], 'different upstreams are not a conflict')
  } finally {
    await server.close(1000)
  }
})

if (firstRunOnly('never starts the CLI: an in-process server')) test('64 concurrent clients pulling every blob of an image all get verified bytes', async (t) => {
  const server = await serveBundles([bundle], {contentVerified: false})
  try {
    const image = images.find((i) => i.name === 'registry.k8s.io/kube-proxy:v1.31.6')!
    const blobs = image.platforms.flatMap((p) => [{digest: p.config}, ...p.layers])
    const results = await Promise.all(
      Array.from({length: 64}, async (_, i) => {
        const blob = blobs[i % blobs.length]
        const answer = await get(`${server.url}/v2/kube-proxy/blobs/${blob.digest}`)
        return answer.status === 200 && sha(answer.body) === blob.digest
      }),
    )
    t.is(results.filter(Boolean).length, 64)
  } finally {
    await server.close(1000)
  }
})
