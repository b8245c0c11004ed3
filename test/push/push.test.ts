/**
 * `kubeferry push` against the real distribution peers (open, htpasswd, token): digests seen by skopeo through the
 * new names equal the bundle's, kubeferry's own client re-pulls and verifies every blob, a rerun transfers nothing.
 */
import {createHash} from 'node:crypto'
import test from 'ava'
import {peerTest, loadPeers, skopeoCreds, type RegistryPeer} from '../harness/peers.js'
import {RegistryClient} from '../../src/registry/client.js'
import {staticCredentialProvider} from '../../src/registry/auth/credentials.js'
import type {PushReport} from '../../src/registry/push.js'
import {bundleIndex, createBundle, randomName, run} from './helpers.js'
import {firstRunOnly, runCli} from '../helpers/cli.js'

let bundle: Promise<string> | undefined
function twoPlatformBundle(): Promise<string> {
  bundle ??= createBundle(loadPeers()!.registries.open.host)
  return bundle
}

/** Where push puts `name` under `dest` with the default rules. */
function targetOf(dest: string, name: string): string {
  const slash = name.indexOf('/')
  return `${dest}/${name.slice(slash + 1)}`
}

function pushArgs(peer: RegistryPeer, bundlePath: string, dest: string, extra: string[] = []): {args: string[]; input: string} {
  const args = ['push', bundlePath, dest, ...extra]
  if (peer.username) args.push('--username', peer.username, '--password-stdin')
  return {args, input: peer.password ?? ''}
}

async function skopeoRawDigest(peer: RegistryPeer, ref: string): Promise<string> {
  const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...skopeoCreds(peer), `docker://${ref}`])
  if (r.code !== 0) throw new Error(`skopeo inspect ${ref}: ${r.stderr}`)
  return `sha256:${createHash('sha256').update(r.stdout).digest('hex')}`
}

/** Re-pull every manifest and blob of `ref` with kubeferry's client; each blob stream verifies its digest and size. */
async function repullAll(client: RegistryClient, registry: string, repository: string, tag: string): Promise<{manifests: number; blobs: number}> {
  const top = await client.getManifest({registry, repository, tag})
  let manifests = 1
  let blobs = 0
  const children = top.kind === 'index' ? top.index.manifests : []
  const leaves = top.kind === 'manifest' ? [top] : await Promise.all(children.map((c) => client.getManifestByDigest({registry, repository}, c.digest)))
  manifests += top.kind === 'index' ? leaves.length : 0
  for (const leaf of leaves) {
    if (leaf.kind !== 'manifest') throw new Error('nested index')
    for (const blob of [leaf.manifest.config, ...leaf.manifest.layers]) {
      const stream = await client.openBlob({registry, repository}, {digest: blob.digest, size: blob.size})
      for await (const _ of stream) {
        // drain: the verifier errors the stream on a digest or size mismatch
      }
      blobs++
    }
  }
  return {manifests, blobs}
}

for (const kind of ['open', 'htpasswd', 'token'] as const) {
  peerTest(`push a 2-platform bundle to the ${kind} registry: skopeo sees the bundle's digests, every blob re-pulls verified, a rerun transfers nothing`, ['registries', 'skopeo'], async (t, peers) => {
    const peer = peers.registries[kind]
    const path = await twoPlatformBundle()
    const dest = `${peer.host}/${randomName(`push-${kind}`)}/k8s`
    const first = pushArgs(peer, path, dest, ['--json'])
    const r1 = await runCli(first.args, {stdin: first.input})
    t.is(r1.code, 0, r1.stderr)
    const report = JSON.parse(r1.stdout) as PushReport
    t.true(report.blobs.uploaded > 0)
    if (peer.password) {
      t.false(r1.stdout.includes(peer.password) || r1.stderr.includes(peer.password), 'the password must never be printed')
    }

    const images = await bundleIndex(path)
    t.is(images.length, 8)
    for (const image of images) {
      const digest = await skopeoRawDigest(peer, targetOf(dest, image.name))
      t.is(digest, image.digest, `${image.name} through ${targetOf(dest, image.name)}`)
    }
    // kubeadm's name for CoreDNS with a custom imageRepository.
    const coredns = images.find((i) => i.name.includes('/coredns/coredns:'))!
    t.is(await skopeoRawDigest(peer, `${dest}/coredns:v1.11.3`), coredns.digest)

    const client = new RegistryClient({credentials: peer.username ? staticCredentialProvider({[peer.host]: {username: peer.username, password: peer.password!}}) : undefined})
    try {
      let blobs = 0
      for (const image of images) {
        const target = targetOf(dest, image.name)
        const [repoPath, tag] = [target.slice(peer.host.length + 1, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)]
        blobs += (await repullAll(client, peer.host, repoPath, tag)).blobs
      }
      t.true(blobs >= images.length * 2 * 2, `re-pulled ${blobs} blobs`)
    } finally {
      await client.close()
    }

    const second = pushArgs(peer, path, dest, ['--json'])
    const r2 = await runCli(second.args, {stdin: second.input})
    t.is(r2.code, 0, r2.stderr)
    const again = JSON.parse(r2.stdout) as PushReport
    t.is(again.blobs.uploaded, 0, 'a second push uploads no blob')
    t.is(again.blobs.mounted, 0)
    t.is(again.manifests.pushed, 0)
    t.true(again.images.every((i) => i.targets.every((x) => x.status === 'present')))
    // The < 1 s figure is measured by bench/push (quiet machine); here only a loose bound, the load of a test run varies.
    t.log(`rerun on a complete registry: ${again.durationMs} ms`)
    t.true(again.durationMs < 5000, `rerun on a complete registry took ${again.durationMs} ms`)
  })
}

peerTest('a sparse bundle (one platform) gets a filtered index on distribution by default; --platform-policy sparse fails clearly; filtered is deterministic', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.open
  const path = await createBundle(peer.host, ['linux/amd64'])
  const images = await bundleIndex(path)
  const pause = images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!

  const strict = await runCli(['push', path, `${peer.host}/${randomName('sparse')}`, '--platform-policy', 'sparse'])
  t.not(strict.code, 0)
  t.regex(strict.stderr, /MANIFEST_BLOB_UNKNOWN/)
  t.regex(strict.stderr, /incomplete/)
  t.notRegex(strict.stderr, /\n\s+at /, 'no stack trace')

  const destA = `${peer.host}/${randomName('auto')}`
  const auto = await runCli(['push', path, destA, '--json'])
  t.is(auto.code, 0, auto.stderr)
  const report = JSON.parse(auto.stdout) as PushReport
  const pauseTarget = report.images.find((i) => i.source === pause.name)!.targets[0]
  t.true(pauseTarget.filtered)
  t.is(pauseTarget.upstreamDigest as string, pause.digest)
  t.not(pauseTarget.digest, pause.digest, 'a filtered index has its own digest')
  t.is(await skopeoRawDigest(peer, `${destA}/pause:3.10`), pauseTarget.digest)
  // The platform manifest keeps its upstream digest.
  const filtered = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${destA}/pause:3.10`])).stdout) as {manifests: Array<{digest: string; platform: {architecture: string}}>}
  t.deepEqual(filtered.manifests.map((m) => m.platform.architecture), ['amd64'])
  const upstream = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${peer.host}/pause:3.10`])).stdout) as {manifests: Array<{digest: string; platform: {architecture: string}}>}
  t.is(filtered.manifests[0].digest, upstream.manifests.find((m) => m.platform.architecture === 'amd64')!.digest)

  const destF = `${peer.host}/${randomName('filtered')}`
  const forced = await runCli(['push', path, destF, '--platform-policy', 'filtered', '--json'])
  t.is(forced.code, 0, forced.stderr)
  const forcedPause = (JSON.parse(forced.stdout) as PushReport).images.find((i) => i.source === pause.name)!.targets[0]
  t.is(forcedPause.digest, pauseTarget.digest, 'the filtered index is the same on every run')

  // A rerun accepts the filtered digest as "already there".
  const rerun = await runCli(['push', path, destA, '--json'])
  t.is(rerun.code, 0, rerun.stderr)
  t.is((JSON.parse(rerun.stdout) as PushReport).blobs.uploaded, 0)
})

peerTest('a tag that exists with another digest is refused before anything is pushed, and replaced with --overwrite', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.open
  const path = await twoPlatformBundle()
  const images = await bundleIndex(path)
  const dest = `${peer.host}/${randomName('conflict')}`
  // Someone else's image already sits at one of the destination tags.
  const cp = await run('skopeo', ['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${peer.host}/kube-proxy:v1.31.6`, `docker://${dest}/kube-apiserver:v1.31.6`])
  t.is(cp.code, 0, cp.stderr)
  const before = await skopeoRawDigest(peer, `${dest}/kube-apiserver:v1.31.6`)

  const refused = await runCli(['push', path, dest])
  t.is(refused.code, 1)
  t.regex(refused.stderr, /kube-apiserver:v1\.31\.6 already exists with digest/)
  t.regex(refused.stderr, /--overwrite/)
  t.is(await skopeoRawDigest(peer, `${dest}/kube-apiserver:v1.31.6`), before)
  const pauseLookup = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}/pause:3.10`])
  t.not(pauseLookup.code, 0, 'nothing else was pushed')

  const dry = await runCli(['push', path, dest, '--dry-run'])
  t.is(dry.code, 1)
  t.regex(dry.stdout, /conflict\s+registry\.k8s\.io\/kube-apiserver/)

  const overwritten = await runCli(['push', path, dest, '--overwrite', '--json'])
  t.is(overwritten.code, 0, overwritten.stderr)
  const report = JSON.parse(overwritten.stdout) as PushReport
  const api = report.images.find((i) => i.source === 'registry.k8s.io/kube-apiserver:v1.31.6')!.targets[0]
  t.is(api.status, 'overwritten')
  t.is(api.previousDigest as string | undefined, before)
  t.is(await skopeoRawDigest(peer, `${dest}/kube-apiserver:v1.31.6`), images.find((i) => i.name.endsWith('kube-apiserver:v1.31.6'))!.digest)
})

peerTest('--dry-run lists what would be pushed and writes nothing', ['registries', 'skopeo'], async (t, peers) => {
  const peer = peers.registries.open
  const path = await twoPlatformBundle()
  const dest = `${peer.host}/${randomName('dry')}`
  const r = await runCli(['push', path, dest, '--dry-run'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /would-push\s+registry\.k8s\.io\/pause:3\.10 → .*\/pause:3\.10/)
  t.regex(r.stdout, /would-push\s+registry\.k8s\.io\/coredns\/coredns:v1\.11\.3 → .*\/coredns:v1\.11\.3/)
  t.regex(r.stdout, /dry run: \d+ blob\(s\) to upload/)
  const lookup = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}/pause:3.10`])
  t.not(lookup.code, 0)
})

if (firstRunOnly('the wording of an error line')) peerTest('wrong password: one clear line, non-zero exit, no secret, no stack', ['registries'], async (t, peers) => {
  const path = await twoPlatformBundle()
  for (const kind of ['htpasswd', 'token'] as const) {
    const peer = peers.registries[kind]
    const wrong = 'definitely-not-the-password'
    const r = await runCli(['push', path, `${peer.host}/${randomName('badpw')}`, '--username', peer.username!, '--password-stdin'], {stdin: wrong})
    t.is(r.code, 1, kind)
    t.regex(r.stderr, new RegExp(`error: .*refused user "${peer.username!}".*wrong user name or password`), kind)
    t.regex(r.stderr, /hint: check the password of /, kind)
    t.false(r.stderr.includes(wrong) || r.stdout.includes(wrong))
    t.notRegex(r.stderr, /\n\s+at /)
  }
})

if (firstRunOnly('argument parsing')) test('invalid destinations are refused with a clear line', async (t) => {
  const dir = '/nonexistent-bundle.tar'
  for (const [dest, why] of [
    ['127.0.0.1:5000/K8S', /invalid repository prefix/],
    ['127.0.0.1:5000/k8s//x', /empty path component/],
    ['k8s/pause', /does not look like a registry host/],
    ['127.0.0.1:5000/k8s:v1', /invalid repository prefix/],
    ['docker.io/me', /Docker Hub/],
  ] as const) {
    const r = await runCli(['push', dir, dest])
    t.regex(r.stderr, /^error: invalid registry/m, `${dest}: ${r.stderr}`)
    t.is(r.code, 1, dest)
    t.regex(r.stderr, why, dest)
  }
})
