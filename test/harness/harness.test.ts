/** Tests of the test harness itself: the image builder, the pushed images in the three real registries, auth, peers. */
import test from 'ava'
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {createGunzip} from 'node:zlib'
import {request} from 'undici'
import {allBlobDigests, buildImageSet, hostPlatformString} from '../images/builder.js'
import {KUBEADM_V1_31_6} from '../images/catalog.js'
import {peerTest, skopeoCreds, type Peers, type RegistryPeer, type TestImage} from './peers.js'
import {countTap, summaryLine} from './tap.js'
import {mapLimit} from '../../src/util/async.js'

const execFileP = promisify(execFile)

async function sha256File(path: string, gunzip = false): Promise<string> {
  const hash = createHash('sha256')
  const sink = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) hash.update(chunk)
  }
  if (gunzip) await pipeline(createReadStream(path), createGunzip(), sink)
  else await pipeline(createReadStream(path), sink)
  return `sha256:${hash.digest('hex')}`
}

async function tempDir(t: {teardown(fn: () => Promise<void>): void}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-harness-test-'))
  t.teardown(async () => rm(dir, {recursive: true, force: true}))
  return dir
}

/** `skopeo inspect --raw … | sha256sum` */
async function skopeoDigest(peer: RegistryPeer, ref: string): Promise<string> {
  const {stdout} = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', ...skopeoCreds(peer), `docker://${peer.host}/${ref}`], {encoding: 'buffer', maxBuffer: 16 << 20})
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`
}


test('the builder is deterministic: two builds give the same digests and bytes', async (t) => {
  const dir = await tempDir(t)
  const a = await buildImageSet({dir: join(dir, 'a')})
  const b = await buildImageSet({dir: join(dir, 'b')})
  t.deepEqual(a.images, b.images)
  // and in another process (through the CLI), so nothing per-process (time, randomness) leaks in
  const cli = fileURLToPath(new URL('../images/cli.js', import.meta.url))
  const {stdout} = await execFileP(process.execPath, [cli, 'build', '--dir', join(dir, 'c')], {maxBuffer: 16 << 20})
  t.deepEqual(JSON.parse(stdout), a.images)
  t.is(await readFile(join(dir, 'a', 'index.json'), 'utf8'), await readFile(join(dir, 'b', 'index.json'), 'utf8'))
  for (const digest of allBlobDigests(a.images)) {
    t.is(await sha256File(a.blobPath(digest)), digest, `blob ${digest} is stored under its digest`)
  }
})

test('the builder makes the kubeadm v1.31.6 set, runtime pauses and a docker.io image, in both media types, 2 platforms, shared base layer', async (t) => {
  const dir = await tempDir(t)
  const set = await buildImageSet({dir})
  const names = set.images.map((i) => i.name)
  for (const name of [...KUBEADM_V1_31_6, 'registry.k8s.io/pause:3.6', 'registry.k8s.io/pause:3.8', 'registry.k8s.io/pause:3.9', 'docker.io/library/busybox:1.36']) {
    t.true(names.includes(name), name)
  }
  const byName = new Map(set.images.map((i) => [i.name, i]))
  t.is(byName.get('docker.io/library/busybox:1.36')!.repository, 'library/busybox')
  t.is(byName.get('registry.k8s.io/coredns/coredns:v1.11.3')!.repository, 'coredns/coredns')
  const mediaTypes = new Set(set.images.map((i) => i.mediaType))
  t.deepEqual([...mediaTypes].sort(), ['application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.index.v1+json'])

  for (const image of set.images) {
    t.deepEqual(image.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64/v8'])
    const index = JSON.parse(await readFile(set.blobPath(image.digest), 'utf8')) as {mediaType: string; manifests: {digest: string; platform: {architecture: string}}[]}
    t.is(index.mediaType, image.mediaType)
    t.deepEqual(index.manifests.map((m) => m.digest), image.platforms.map((p) => p.digest))
    for (const p of image.platforms) {
      const manifest = JSON.parse(await readFile(set.blobPath(p.digest), 'utf8')) as {config: {digest: string}; layers: {digest: string}[]}
      t.is(manifest.config.digest, p.config)
      const config = JSON.parse(await readFile(set.blobPath(p.config), 'utf8')) as {architecture: string; os: string; rootfs: {diff_ids: string[]}}
      t.is(`${config.os}/${config.architecture}`, p.platform.split('/').slice(0, 2).join('/'))
      // diff_ids are the sha256 of the uncompressed layers
      t.deepEqual(config.rootfs.diff_ids, await Promise.all(manifest.layers.map((l) => sha256File(set.blobPath(l.digest), true))))
    }
  }
  // base layer shared by every image of a platform; last layer unique per image
  for (const index of [0, 1]) {
    t.is(new Set(set.images.map((i) => i.platforms[index].layers[0].digest)).size, 1)
    const own = set.images.map((i) => i.platforms[index].layers.at(-1)!.digest)
    t.is(new Set(own).size, own.length)
  }
  // the host's pause images are runnable (static busybox inside), the other platform synthetic
  const pause = byName.get('registry.k8s.io/pause:3.10')!
  const host = pause.platforms.find((p) => p.platform === hostPlatformString())
  t.truthy(host)
  t.true(host!.runnable)
  t.is(pause.platforms.filter((p) => p.runnable).length, 1)
  const config = JSON.parse(await readFile(set.blobPath(host!.config), 'utf8')) as {config: {Entrypoint: string[]}}
  t.deepEqual(config.config.Entrypoint, ['/bin/busybox', 'sleep', 'infinity'])
})

test('the builder: layer size is a parameter, many-images mode and `only` filter work', async (t) => {
  const dir = await tempDir(t)
  const big = await buildImageSet({dir: join(dir, 'big'), only: ['registry.k8s.io/etcd:3.5.15-0'], layerSize: 3 << 20, gzipLevel: 1})
  t.is(big.images.length, 1)
  const layer = big.images[0].platforms[0].layers.at(-1)!
  t.true(layer.size > 3 << 20, `random content does not compress: ${layer.size}`)
  const many = await buildImageSet({dir: join(dir, 'many'), images: [], many: 25, platforms: ['linux/amd64']})
  t.is(many.images.length, 25)
  t.is(new Set(many.images.map((i) => i.digest)).size, 25)
  t.is(many.images[0].name, 'registry.k8s.io/kubeferry-many/image-0001:v1')
})

test('TAP counting of ava output', (t) => {
  const out = ['TAP version 13', 'ok 1 - a › passes', 'not ok 2 - a › fails', '  ---', '    name: AssertionError', '  ...', 'ok 3 - a › later # SKIP', 'not ok 4 - a › todo # TODO', '#   ok 9 - a log line', '', '1..4'].join('\n')
  const counts = countTap(out)
  t.deepEqual(counts, {passed: 1, failed: 1, skipped: 1, todo: 1})
  t.is(summaryLine(counts), 'tests: 1 passed, 1 failed, 1 skipped, 1 todo')
  t.is(summaryLine({passed: 3, failed: 0, skipped: 0, todo: 0}), 'tests: 3 passed, 0 failed')
})

for (const kind of ['open', 'htpasswd', 'token'] as const) {
  peerTest(`every test image in the ${kind} registry has the digest the builder recorded (skopeo inspect --raw | sha256)`, ['registries', 'skopeo'], async (t, peers) => {
    const peer = peers.registries[kind]
    t.true(peers.images.length >= 11)
    await mapLimit(peers.images, 6, async (image: TestImage) => {
      t.is(await skopeoDigest(peer, `${image.repository}:${image.tag}`), image.digest, `${kind}: ${image.name}`)
    })
    // platform manifests by digest, for one image of each media type
    for (const image of [peers.images[0], peers.images[1]]) {
      for (const p of image.platforms) t.is(await skopeoDigest(peer, `${image.repository}@${p.digest}`), p.digest)
    }
  })
}

async function status(url: string, headers: Record<string, string> = {}): Promise<{code: number; challenge?: string; body: string}> {
  const res = await request(url, {headers})
  const body = await res.body.text()
  const challenge = res.headers['www-authenticate']
  return {code: res.statusCode, challenge: typeof challenge === 'string' ? challenge : undefined, body}
}

const basic = (user: string, password: string): Record<string, string> => ({authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')})

async function token(peers: Peers, scope: string, auth: Record<string, string>): Promise<{code: number; token?: string; expires_in?: number}> {
  const {realm, service} = peers.registries.token
  const res = await request(`${realm}?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, {headers: auth})
  const body = (await res.body.json()) as {token?: string; expires_in?: number}
  return {code: res.statusCode, ...body}
}

peerTest('the htpasswd registry refuses anonymous and wrong-password access, accepts its user', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.htpasswd
  const url = `${peer.url}/v2/pause/manifests/3.10`
  const anonymous = await status(url)
  t.is(anonymous.code, 401)
  t.regex(anonymous.challenge ?? '', /^Basic /)
  t.is((await status(url, basic(peer.username!, 'wrong-password'))).code, 401)
  t.is((await status(url, {...basic(peer.username!, peer.password!), accept: 'application/vnd.oci.image.index.v1+json'})).code, 200)
  const err = await t.throwsAsync(skopeoDigest({...peer, username: undefined}, 'pause:3.10'))
  t.regex(String((err as {stderr?: string}).stderr ?? err?.message), /unauthorized|authentication required/i)
})

peerTest('the token registry: anonymous gets no access (real 401), a wrong password is refused, the user token works', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.token
  const url = `${peer.url}/v2/pause/manifests/3.10`
  const accept = {accept: 'application/vnd.oci.image.index.v1+json'}
  const anonymous = await status(url, accept)
  t.is(anonymous.code, 401)
  t.regex(anonymous.challenge ?? '', /^Bearer realm="[^"]+",service="kubeferry-test-registry",scope="repository:pause:pull"/)
  // an anonymous token carries no access: the registry still says 401
  const anon = await token(peers, 'repository:pause:pull', {})
  t.is(anon.code, 200)
  const refused = await status(url, {...accept, authorization: `Bearer ${anon.token}`})
  t.is(refused.code, 401)
  t.regex(refused.challenge ?? '', /insufficient_scope/)
  t.is((await token(peers, 'repository:pause:pull', basic(peer.username!, 'wrong'))).code, 401)
  const good = await token(peers, 'repository:pause:pull', basic(peer.username!, peer.password!))
  t.is(good.code, 200)
  t.is((await status(url, {...accept, authorization: `Bearer ${good.token}`})).code, 200)
  // the JWT carries the certificate chain (x5c) that distribution verifies against rootcertbundle
  const header = JSON.parse(Buffer.from(good.token!.split('.')[0], 'base64url').toString()) as {alg: string; x5c: string[]}
  t.is(header.alg, 'RS256')
  t.is(header.x5c.length, 1)
  await t.throwsAsync(skopeoDigest({...peer, username: undefined}, 'pause:3.10'))
})

peerTest('the token registry: identity (refresh) token exchange and short-lived tokens that really expire', ['registries'], async (t, peers) => {
  const peer = peers.registries.token
  const url = `${peer.url}/v2/pause/manifests/3.10`
  const accept = {accept: 'application/vnd.oci.image.index.v1+json'}
  const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: peer.identityToken, service: peer.service, scope: 'repository:pause:pull', client_id: 'kubeferry-test'})
  const res = await request(peer.realm, {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: form.toString()})
  const body = (await res.body.json()) as {access_token: string}
  t.is(res.statusCode, 200)
  t.is((await status(url, {...accept, authorization: `Bearer ${body.access_token}`})).code, 200)

  const short = peer.shortLived
  const issued = await token(peers, 'repository:pause:pull', basic(short.username, short.password))
  t.is(issued.expires_in, short.expiresIn)
  t.is((await status(url, {...accept, authorization: `Bearer ${issued.token}`})).code, 200)
  await new Promise((resolve) => setTimeout(resolve, (short.expiresIn + 1.5) * 1000))
  t.is((await status(url, {...accept, authorization: `Bearer ${issued.token}`})).code, 401, 'the registry refuses the expired token')
  const stats = (await (await request(peer.statsUrl)).body.json()) as {byUser: Record<string, number>}
  t.true((stats.byUser[short.username] ?? 0) >= 1)
})

peerTest('containerd peer: ctr pulls a test image from the open registry with the recorded digest', ['registries', 'containerd'], async (t, peers) => {
  const {address, snapshotter} = peers.containerd!
  const image = peers.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  const ref = `${peers.registries.open.host}/${image.repository}:${image.tag}`
  const ns = 'kubeferry-harness-test'
  await execFileP('ctr', ['--address', address, '-n', ns, 'images', 'pull', '--plain-http', '--snapshotter', snapshotter, ref])
  const {stdout} = await execFileP('ctr', ['--address', address, '-n', ns, 'images', 'ls'])
  t.regex(stdout, new RegExp(`${ref.replaceAll('.', '\\.')}\\s+\\S+\\s+${image.digest}`))
  await execFileP('ctr', ['--address', address, '-n', ns, 'images', 'rm', '--sync', ref])
})

peerTest('dockerd peer: /usr/bin/docker pulls busybox from the open registry and runs it', ['registries', 'dockerd'], async (t, peers) => {
  const docker = (args: string[]) => execFileP('/usr/bin/docker', ['-H', peers.dockerd!.host, ...args], {env: {PATH: process.env.PATH, HOME: peers.runDir}})
  const image = peers.images.find((i) => i.name === 'docker.io/library/busybox:1.36')!
  const ref = `${peers.registries.open.host}/${image.repository}:${image.tag}`
  await docker(['pull', '-q', ref])
  const {stdout} = await docker(['image', 'inspect', ref, '--format', '{{json .RepoDigests}}'])
  t.true(stdout.includes(image.digest), stdout)
  const run = await docker(['run', '--rm', '--network', 'none', ref, '/bin/busybox', 'echo', 'hello from the test busybox'])
  t.is(run.stdout.trim(), 'hello from the test busybox')
  await docker(['rmi', ref])
})

for (const kind of ['htpasswd', 'token'] as const) {
  peerTest(`skopeo pushes to and pulls from the ${kind} registry with --creds, digests kept`, ['registries', 'skopeo'], async (t, peers) => {
    const peer = peers.registries[kind]
    const creds = `${peer.username}:${peer.password}`
    // (skopeo 1.9's oci: transport does not find ref names with two slashes, e.g. coredns/coredns: use kube-proxy)
    const image = peers.images.find((i) => i.name === 'registry.k8s.io/kube-proxy:v1.31.6')!
    const target = `docker://${peer.host}/kubeferry-harness-test/kube-proxy:copied`
    await execFileP('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${peers.imageDir}:${image.name}`, target])
    t.is(await skopeoDigest(peer, 'kubeferry-harness-test/kube-proxy:copied'), image.digest)
    const dir = await tempDir(t)
    await execFileP('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, target, `dir:${join(dir, 'pulled')}`])
    const host = image.platforms.find((p) => p.platform === hostPlatformString())!
    for (const layer of host.layers) t.is(await sha256File(join(dir, 'pulled', layer.digest.slice(7))), layer.digest)
    const wrong = await t.throwsAsync(execFileP('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `${peer.username}:not-the-password`, target, `dir:${join(dir, 'refused')}`]))
    t.regex(String((wrong as {stderr?: string}).stderr), /unauthorized|authentication required|401/i)
  })
}
