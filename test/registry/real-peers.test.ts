/**
 * The registry client against the real peers (CNCF distribution open / htpasswd / token auth, skopeo),
 * started by the test harness (test/harness). Every test image is pulled through `--mirror`-style
 * mirrors, so canonical names (registry.k8s.io/…, docker.io/…) are kept while bytes come from loopback.
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {promisify} from 'node:util'
import {KubeferryError} from '../../src/oci/errors.js'
import {sha256Digest, type Digest} from '../../src/oci/digest.js'
import {normalizePlatform, parsePlatform, formatPlatform} from '../../src/oci/platform.js'
import {defaultCredentialProvider, staticCredentialProvider, anonymousCredentials, type CredentialProvider} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {parseReference, type Reference} from '../../src/oci/reference.js'
import {resolveImage} from '../../src/registry/resolve.js'
import {peerTest, skopeoCreds, type Peers, type RegistryPeer} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'

const run = promisify(execFile)
type PeerKind = 'open' | 'htpasswd' | 'token'
const kinds: PeerKind[] = ['open', 'htpasswd', 'token']

/** Mirrors for every upstream the test images use, pointing at one peer. */
function mirrorsFor(peers: Peers, peer: RegistryPeer): Record<string, string[]> {
  const upstreams = new Set(peers.images.map((i) => parseReference(i.name).registry))
  return Object.fromEntries([...upstreams].map((u) => [u, [peer.url]]))
}

function credentialsFor(peer: RegistryPeer): CredentialProvider {
  return peer.username ? staticCredentialProvider({[peer.host]: {username: peer.username, password: peer.password ?? ''}}) : anonymousCredentials
}

function clientFor(peers: Peers, kind: PeerKind, logs?: string[]): RegistryClient {
  const peer = peers.registries[kind]
  return new RegistryClient({mirrors: mirrorsFor(peers, peer), credentials: credentialsFor(peer), retry: {attempts: 3, baseDelayMs: 50}, log: (l, m) => logs?.push(`${l} ${m}`)})
}

async function digestOf(stream: Readable): Promise<{digest: Digest; size: number}> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of stream) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return {digest: `sha256:${hash.digest('hex')}`, size}
}

for (const kind of kinds) {
  peerTest(`resolve gives skopeo's digest for every test image (${kind} registry, through a mirror)`, ['registries', 'skopeo'], async (t, peers) => {
    const peer = peers.registries[kind]
    const client = clientFor(peers, kind)
    t.teardown(() => client.close())
    t.true(peers.images.length >= 8)
    for (const image of peers.images) {
      const resolved = await resolveImage(client, parseReference(image.name))
      t.is(resolved.reference, image.name)
      const {stdout} = await run(peers.tools.skopeo, ['inspect', '--raw', '--tls-verify=false', ...skopeoCreds(peer), `docker://${peer.host}/${image.repository}:${image.tag}`], {encoding: 'buffer', maxBuffer: 16 << 20})
      t.is(resolved.digest, sha256Digest(stdout), image.name)
      t.is(resolved.digest, image.digest as Digest)
      t.is(resolved.mediaType, image.mediaType)
      t.is(resolved.size, stdout.length)
      t.deepEqual(resolved.platforms, image.platforms.map((p) => formatPlatform(parsePlatform(p.platform))))
    }
  })

  peerTest(`every blob of every platform downloads verified (${kind} registry)`, ['registries'], async (t, peers) => {
    const client = clientFor(peers, kind)
    t.teardown(() => client.close())
    let blobs = 0
    for (const image of peers.images) {
      const ref = parseReference(image.name)
      const index = await client.getManifest(ref)
      t.is(index.kind, 'index')
      for (const platform of image.platforms) {
        const child = await client.getManifestByDigest(ref, platform.digest as Digest)
        t.is(child.kind, 'manifest')
        if (child.kind !== 'manifest') continue
        t.is(child.raw.mediaType, platform.manifestMediaType)
        for (const desc of [child.manifest.config, ...child.manifest.layers]) {
          const got = await digestOf(await client.openBlob(ref, desc))
          t.deepEqual(got, {digest: desc.digest, size: desc.size})
          blobs++
        }
      }
    }
    t.log(`${blobs} blobs verified`)
    t.true(blobs >= peers.images.length * 4)
  })
}

peerTest('platform selection and HEAD on the real registry (arm64 ≡ arm64/v8)', ['registries'], async (t, peers) => {
  const client = clientFor(peers, 'open')
  t.teardown(() => client.close())
  const image = peers.images.find((i) => i.platforms.some((p) => normalizePlatform(parsePlatform(p.platform)).architecture === 'arm64'))!
  const ref = parseReference(image.name)
  const arm = await resolveImage(client, ref, {platforms: ['linux/arm64']})
  t.deepEqual(arm.platforms, ['linux/arm64'])
  const head = await client.headManifest(ref)
  t.deepEqual(head, {digest: image.digest as Digest, mediaType: image.mediaType, size: image.size})
  t.is(await client.headManifest({...ref, tag: 'no-such-tag'}), undefined)
  const missing = await t.throwsAsync(resolveImage(client, {...ref, tag: 'no-such-tag'}), {instanceOf: KubeferryError})
  t.is(missing?.code, 'NOT_FOUND')
  t.regex(missing?.message ?? '', /not found in mirror .*tag missing/)
  const tags = await client.listTags(parseReference('registry.k8s.io/pause'))
  for (const tag of peers.images.filter((i) => i.name.startsWith('registry.k8s.io/pause:')).map((i) => i.tag)) t.true(tags.includes(tag))
})

peerTest('token registry: identity token from config.json, short-lived tokens renewed, stats prove caching', ['registries'], async (t, peers) => {
  const peer = peers.registries.token
  const dir = await mkdtemp(join(tmpdir(), 'kf-real-'))
  t.teardown(() => rm(dir, {recursive: true, force: true}))
  await writeFile(join(dir, 'config.json'), JSON.stringify({auths: {[peer.host]: {identitytoken: peer.identityToken}}}))
  const mirrors = mirrorsFor(peers, peer)
  const viaIdentity = new RegistryClient({mirrors, credentials: defaultCredentialProvider({env: {...process.env, DOCKER_CONFIG: dir}}), retry: {attempts: 2}})
  t.teardown(() => viaIdentity.close())
  const image = peers.images[0]
  t.is((await viaIdentity.getManifest(parseReference(image.name))).raw.digest, image.digest as Digest)

  const stats = async () => ((await (await fetch(peer.statsUrl)).json()) as {byUser: Record<string, number>}).byUser[peer.shortLived.username] ?? 0
  const short = new RegistryClient({mirrors, credentials: staticCredentialProvider({[peer.host]: {username: peer.shortLived.username, password: peer.shortLived.password}}), retry: {attempts: 2}})
  t.teardown(() => short.close())
  const before = await stats()
  const ref = parseReference(image.name)
  await short.getManifest(ref)
  await short.getManifest(ref)
  t.is((await stats()) - before, 1, 'one token for two requests of the same scope')
  await new Promise((r) => setTimeout(r, peer.shortLived.expiresIn * 1000 + 200))
  t.is((await short.getManifest(ref)).raw.digest, image.digest as Digest)
  t.is((await stats()) - before, 2, 'expired token replaced')
})

peerTest('htpasswd registry: fake credential helper on PATH is used; wrong password is UNAUTHORIZED without leaking it', ['registries'], async (t, peers) => {
  const peer = peers.registries.htpasswd
  const dir = await mkdtemp(join(tmpdir(), 'kf-real-'))
  t.teardown(() => rm(dir, {recursive: true, force: true}))
  await mkdir(join(dir, 'bin'))
  const helper = join(dir, 'bin', 'docker-credential-fake')
  await writeFile(helper, `#!/bin/sh\nread -r host || true\n[ "$host" = "${peer.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\nprintf '{"ServerURL":"%s","Username":"${peer.username}","Secret":"${peer.password}"}' "$host"\n`)
  await chmod(helper, 0o755)
  await writeFile(join(dir, 'config.json'), JSON.stringify({credsStore: 'fake'}))
  const env = {...process.env, DOCKER_CONFIG: dir, PATH: `${join(dir, 'bin')}:${process.env.PATH}`}
  const mirrors = mirrorsFor(peers, peer)
  const logs: string[] = []
  const good = new RegistryClient({mirrors, credentials: defaultCredentialProvider({env, log: (l, m) => logs.push(m)}), log: (l, m) => logs.push(m)})
  t.teardown(() => good.close())
  const image = peers.images[1]
  t.is((await good.getManifest(parseReference(image.name))).raw.digest, image.digest as Digest)

  const wrong = 'Not-The-Password-913'
  const bad = new RegistryClient({mirrors, credentials: staticCredentialProvider({[peer.host]: {username: peer.username!, password: wrong}}), log: (l, m) => logs.push(m)})
  t.teardown(() => bad.close())
  const error = await t.throwsAsync(bad.getManifest(parseReference(image.name)), {instanceOf: KubeferryError})
  t.is(error?.code, 'UNAUTHORIZED')
  const all = [error?.message, error?.hint, ...logs].join('\n')
  for (const secret of [wrong, peer.password!, Buffer.from(`${peer.username}:${wrong}`).toString('base64')]) t.false(all.includes(secret))
})

peerTest('push primitives on the token registry: mount, upload, manifest; skopeo reads the result', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.token
  const client = new RegistryClient({credentials: credentialsFor(peer), retry: {attempts: 3, baseDelayMs: 50}})
  t.teardown(() => client.close())
  const source = peers.images[0]
  const platform = source.platforms[0]
  const target: Reference = parseReference(`${peer.host}/kf-client-test/pushed-${process.pid}:v1`)
  const from = parseReference(`${peer.host}/${source.repository}`)
  t.true(await client.mountBlob(target, platform.config as Digest, source.repository))
  t.true(await client.blobExists(target, platform.config as Digest))
  for (const layer of platform.layers) {
    if (await client.blobExists(target, layer.digest as Digest)) continue
    await client.uploadBlob(target, {digest: layer.digest as Digest, size: layer.size}, () => client.openBlob(from, {digest: layer.digest as Digest, size: layer.size}))
  }
  const fresh = Buffer.from(`kubeferry upload ${process.pid} ${Date.now()}`)
  t.false(await client.blobExists(target, sha256Digest(fresh)))
  await client.uploadBlob(target, {digest: sha256Digest(fresh), size: fresh.length}, async () => Readable.from([fresh]))
  t.true(await client.blobExists(target, sha256Digest(fresh)))
  const manifest = await client.getManifestByDigest(from, platform.digest as Digest)
  t.is(await client.putManifest(target, 'v1', manifest.raw), manifest.raw.digest)
  const {stdout} = await run(peers.tools.skopeo, ['inspect', '--raw', '--tls-verify=false', ...skopeoCreds(peer), `docker://${target.registry}/${target.repository}:v1`], {encoding: 'buffer'})
  t.is(sha256Digest(stdout), manifest.raw.digest)
})

peerTest('the built CLI: resolve through --mirror and --username/--password-stdin matches skopeo', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.htpasswd
  const image = peers.images.find((i) => i.name.startsWith('docker.io/'))!
  const {code, stdout, stderr} = await runCli(['resolve', familiarName(image.name), '--json', '--mirror', `docker.io=${peer.url}`, '--username', peer.username!, '--password-stdin'], {stdin: `${peer.password}\n`})
  t.is(code, 0, stderr)
  const [result] = JSON.parse(stdout) as Array<{reference: string; digest: string}>
  t.is(result.reference, image.name)
  const raw = await run(peers.tools.skopeo, ['inspect', '--raw', '--tls-verify=false', ...skopeoCreds(peer), `docker://${peer.host}/${image.repository}:${image.tag}`], {encoding: 'buffer'})
  t.is(result.digest, sha256Digest(raw.stdout))
})

/** `docker.io/library/busybox:1.36` → `busybox:1.36` (what an operator types). */
function familiarName(name: string): string {
  return name.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '')
}
