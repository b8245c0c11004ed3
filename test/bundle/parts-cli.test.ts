/**
 * Every consumer reads a bundle in parts (issue 20), as an operator runs them: a real `kubeferry create` bundle of the
 * kubeadm v1.31.6 images + busybox split by coreutils into at least four parts (with `sha256sum` lists), then
 * verify/inspect (text and --json equal to the whole file's but for paths), serve (same manifests and blobs), push
 * into the shared open registry (same digests), load into the shared containerd (upstream digests); and each part
 * fault refused by verify, load and push naming the part, with the runtime and the registry left as they were.
 */
import {execFile, execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import type {ExecutionContext} from 'ava'
import {parseImageList} from '../../src/runtime/containerd.js'
import {peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {bundleIndex, createBundle} from '../push/helpers.js'
import {get, startCli, stopCli} from '../serve/helpers.js'
import {FAULTS, faultyCopy, splitBundle, type SplitBundle} from './parts-helpers.js'

const execFileP = promisify(execFile)
const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
const run = `kf-parts-${process.pid}`

let made: Promise<{whole: string; split: SplitBundle}> | undefined
function bundle(peers: Peers): Promise<{whole: string; split: SplitBundle}> {
  made ??= (async () => {
    const whole = await createBundle(peers.registries.open.host)
    const size = (await stat(whole)).size
    const split = await splitBundle(whole, Math.floor(size / 4) - 13) // 5 parts, the last a small rest
    return {whole, split}
  })()
  return made
}

/** Output with the bundle's paths (and its file name) made neutral. */
const neutral = (text: string, paths: string[]): string => paths.reduce((s, p) => s.split(p).join('BUNDLE'), text).replace(/BUNDLE\.\d{3}/g, 'BUNDLE')

peerTest('verify and inspect of the first part give the whole file\'s output (text and --json)', ['registries'], async (t, peers) => {
  const {whole, split} = await bundle(peers)
  t.true(split.parts.length >= 4, `${split.parts.length} parts`)
  for (const command of [['verify'], ['verify', '--json'], ['verify', '--quick'], ['inspect'], ['inspect', '--json']]) {
    const a = await runCli([...command, whole])
    const b = await runCli([...command, split.parts[0]])
    t.is(b.code, 0, b.stderr)
    t.is(a.code, b.code)
    t.is(neutral(b.stdout, [split.parts[0], split.bundlePath]), neutral(a.stdout, [whole]), command.join(' '))
  }
})

/** Every tag's manifest, every child manifest and every blob a server answers, by digest. */
async function servedContent(url: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const repos = (JSON.parse((await get(`${url}/v2/_catalog`)).body.toString('utf8')) as {repositories: string[]}).repositories
  const fetchManifest = async (repo: string, ref: string): Promise<void> => {
    const answer = await get(`${url}/v2/${repo}/manifests/${ref}`, {headers: {accept: ACCEPT}})
    const body = Buffer.from(answer.body)
    out.set(`${repo}:${ref}`, sha(body))
    const doc = JSON.parse(answer.body.toString('utf8')) as {manifests?: Array<{digest: string}>; config?: {digest: string}; layers?: Array<{digest: string}>}
    for (const child of doc.manifests ?? []) if (!out.has(`${repo}@${child.digest}`)) await fetchManifest(repo, child.digest)
    for (const blob of doc.config ? [doc.config, ...(doc.layers ?? [])] : []) {
      const response = await fetch(`${url}/v2/${repo}/blobs/${blob.digest}`)
      out.set(`${repo}@${blob.digest}`, sha(Buffer.from(await response.arrayBuffer())))
    }
  }
  for (const repo of repos) {
    const tags = (JSON.parse((await get(`${url}/v2/${repo}/tags/list`)).body.toString('utf8')) as {tags: string[]}).tags
    for (const tag of tags) await fetchManifest(repo, tag)
  }
  return out
}

peerTest('serve from the parts answers the same manifests and blobs as from the whole file', ['registries'], async (t, peers) => {
  const {whole, split} = await bundle(peers)
  const servers = await Promise.all([whole, split.parts[0]].map((path) => startCli([path, '--listen', '127.0.0.1:0', '--json'])))
  try {
    const [a, b] = await Promise.all(servers.map((s) => servedContent((JSON.parse(s.first) as {url: string}).url)))
    t.true(a.size > 20, `${a.size} items served`)
    t.deepEqual(b, a)
    for (const [key, digest] of a) if (key.includes('@')) t.is(digest, key.slice(key.indexOf('@') + 1), key)
  } finally {
    await Promise.all(servers.map(stopCli))
  }
})

/** The digest the registry gives for each of the bundle's images pushed under `prefix` (undefined: absent). */
async function pushedDigests(peers: Peers, whole: string, prefix: string): Promise<Array<string | undefined>> {
  const out: Array<string | undefined> = []
  for (const image of await bundleIndex(whole)) {
    const path = image.name.slice(image.name.indexOf('/') + 1)
    const [repo, tag] = [path.slice(0, path.lastIndexOf(':')), path.slice(path.lastIndexOf(':') + 1)]
    const answer = await fetch(`${peers.registries.open.url}/v2/${prefix}/${repo}/manifests/${tag}`, {method: 'HEAD', headers: {accept: ACCEPT}})
    out.push(answer.ok ? (answer.headers.get('docker-content-digest') ?? 'no digest') : undefined)
  }
  return out
}

peerTest('push from the parts gives the registry the digests the whole file gives (upstream digests)', ['registries'], async (t, peers) => {
  const {whole, split} = await bundle(peers)
  const host = peers.registries.open.host
  for (const [path, prefix] of [[whole, `${run}-whole`], [split.parts[0], `${run}-parts`]]) {
    const r = await runCli(['push', path, `${host}/${prefix}`, '--no-progress'])
    t.is(r.code, 0, r.stderr)
  }
  const upstream = (await bundleIndex(whole)).map((i) => i.digest)
  t.deepEqual(await pushedDigests(peers, whole, `${run}-parts`), upstream)
  t.deepEqual(await pushedDigests(peers, whole, `${run}-whole`), upstream)
})

async function ctrImages(peers: Peers, namespace: string): Promise<Map<string, {digest: string; labels: string[]}>> {
  const {stdout} = await execFileP('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'ls'])
  return parseImageList(stdout)
}

async function clear(peers: Peers, namespace: string): Promise<void> {
  const names = [...(await ctrImages(peers, namespace)).keys()]
  if (names.length > 0) await execFileP('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'rm', ...names])
}

peerTest('load from the parts imports into containerd with the upstream digests', ['registries', 'containerd'], async (t, peers) => {
  const {whole, split} = await bundle(peers)
  const namespace = `${run}-load`
  const r = await runCli(['load', split.parts[0], '--runtime', 'containerd', '--address', peers.containerd!.address, '--namespace', namespace, '--platform', 'linux/amd64'])
  try {
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, /checksum ok \(\S+k8s\.parts\.sha256, \S+k8s\.tar\.sha256\)/)
    const images = await ctrImages(peers, namespace)
    for (const image of await bundleIndex(whole)) t.is(images.get(image.name)?.digest, image.digest, image.name)
  } finally {
    await clear(peers, namespace)
  }
})

peerTest('install.sh beside the parts imports the kubeadm v1.31.6 set into containerd with the upstream digests (dash, both platforms)', ['registries', 'containerd'], async (t, peers) => {
  const {whole, split} = await bundle(peers)
  const script = join(split.dir, 'k8s.install.sh')
  await writeFile(script, execFileSync('tar', ['-xOf', whole, 'kubeferry/install.sh']))
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    const namespace = `${run}-sh-${platform.split('/')[1]}`
    try {
      const r = await execFileP('dash', [script, '--address', peers.containerd!.address, '--namespace', namespace, '--platform', platform]) // a non-zero exit throws
      t.regex(r.stdout, /checksum ok \(\S+k8s\.tar\.sha256\)/)
      const images = await ctrImages(peers, namespace)
      for (const image of await bundleIndex(whole)) t.is(images.get(image.name)?.digest, image.digest, `${platform} ${image.name}`)
    } finally {
      await clear(peers, namespace)
    }
  }
})

function refused(t: ExecutionContext, r: {code: number | null; stdout: string; stderr: string}, pattern: RegExp, what: string): void {
  t.not(r.code, 0, `${what} exit`)
  t.regex(`${r.stdout}\n${r.stderr}`, pattern, what)
}

for (const [fault, damage, pattern] of FAULTS) {
  peerTest(`${/^[aeiou]/.test(fault) ? 'an' : 'a'} ${fault} part is refused by verify, load, push and serve, naming the part; containerd and the registry unchanged`, ['registries', 'containerd'], async (t, peers) => {
    const {whole, split} = await bundle(peers)
    const copy = await faultyCopy(split, damage)
    refused(t, await runCli(['verify', copy.parts[0]]), pattern, 'verify')
    const namespace = `${run}-${fault}`
    const load = await runCli(['load', copy.parts[0], '--runtime', 'containerd', '--address', peers.containerd!.address, '--namespace', namespace, '--platform', 'linux/amd64'])
    refused(t, load, pattern, 'load')
    t.is(load.code, 4, 'load: exit 4 (bad bundle)')
    t.is((await ctrImages(peers, namespace)).size, 0, 'nothing imported')
    const prefix = `${run}-${fault}`
    refused(t, await runCli(['push', copy.parts[0], `${peers.registries.open.host}/${prefix}`, '--no-progress']), pattern, 'push')
    t.deepEqual(await pushedDigests(peers, whole, prefix), (await bundleIndex(whole)).map(() => undefined), 'nothing pushed')
    const serve = (await t.throwsAsync(startCli([copy.parts[0], '--listen', '127.0.0.1:0']))) as Error & {code?: number; stderr?: string}
    t.is(serve?.code, 1, 'serve refuses to start')
    t.regex(serve?.stderr ?? '', pattern, 'serve names the part')
    await rm(copy.dir, {recursive: true})
  })
}

// Keep the unsplit bundle's sha256 honest: the parts end to end are the bundle byte for byte.
peerTest('the parts end to end are the whole bundle, byte for byte', ['registries'], async (t, peers) => {
  const {whole, split} = await bundle(peers)
  const joined = Buffer.concat(await Promise.all(split.parts.map((p) => readFile(p))))
  t.is(sha(joined), sha(await readFile(whole)))
})
