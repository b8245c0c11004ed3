/**
 * `create` carries the publishers' artifacts (issue 19 d3) from the real registry (distribution 2.8, no referrers
 * API): cosign's .sig/.att/.sbom tags and an OCI 1.1 referrer under the tag schema, for the index and a platform
 * manifest (fixtures: test/images/signed.ts). bundle.json records exactly what was pushed, the blobs are in the tar,
 * verify passes, install.sh lists them; index.json and manifest.json are those of the same bundle made with
 * --no-signatures, and the real loaders (ctr import, docker load, skopeo oci-archive:) see the same images either way.
 * The bundle with artifacts also carries a Sigstore trusted root (create --trusted-root: one more blob bundle.json
 * names), so the loaders are shown unaffected by it too.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {seedSignedImages, type SignedSet} from '../images/signed.js'
import {makeKeylessAuthority} from '../images/keyless.js'
import {exec, makeStore} from '../podman/store.js'
import {which} from '../../src/runtime/exec.js'

const prefix = `kf-artifacts-${randomBytes(4).toString('hex')}`
let work = ''
let set: SignedSet | undefined
let withArtifacts = ''
let without = ''
let setupError: string | undefined

const extract = (bundle: string, entry: string): string => execFileSync('tar', ['-xOf', bundle, entry], {encoding: 'utf8'})
const metadata = (bundle: string): BundleMetadata => JSON.parse(extract(bundle, 'kubeferry/bundle.json')) as BundleMetadata
const listing = (bundle: string): string[] => execFileSync('tar', ['-tf', bundle], {encoding: 'utf8'}).trim().split('\n')

async function create(output: string, refs: string[], ...extra: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  return runCli(['create', '-o', output, '--cache-dir', join(work, 'cache'), '--json', '--no-progress', '--platform', 'linux/amd64', '--platform', 'linux/arm64', ...refs.flatMap((r) => ['--image', r]), ...extra], {env: {SOURCE_DATE_EPOCH: '1700000000'}})
}

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kubeferry-artifacts-test-'))
  try {
    set = await seedSignedImages(peers, peers.registries.open, prefix, ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3'], 1)
    const refs = [set.signed[0].reference, ...set.unsigned]
    withArtifacts = join(work, 'with.tar')
    without = join(work, 'without.tar')
    const root = join(work, 'trusted_root.json')
    await writeFile(root, JSON.stringify((await makeKeylessAuthority()).trustedRoot))
    for (const [output, extra] of [[withArtifacts, ['--trusted-root', root]], [without, ['--no-signatures']]] as const) {
      const r = await create(output, refs, ...extra)
      if (r.code !== 0) throw new Error(`create ${extra.join(' ')} failed (${r.code}): ${r.stderr}`)
    }
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

function ready(t: {fail: (m: string) => void}): SignedSet | undefined {
  if (!set || setupError) t.fail(`setup failed: ${setupError ?? 'unknown'}`)
  return setupError ? undefined : set
}

peerTest('create records every pushed signature, attestation, SBOM and referrer per image, with its blobs in the tar', ['registries'], async (t) => {
  const s = ready(t)
  if (!s) return
  const meta = metadata(withArtifacts)
  const [signed] = s.signed
  const image = meta.images.find((i) => i.name === signed.reference)!
  const got = (image.artifacts ?? []).map((a) => ({kind: a.kind, subject: a.subject, tag: a.kind === 'referrer' ? undefined : a.tag, digest: a.digest, size: a.size}))
  const want = signed.artifacts.map((a) => ({kind: a.kind, subject: a.subject, tag: a.kind === 'referrer' ? undefined : a.tag, digest: a.digest, size: a.size}))
  // order: the image's digest first (sig, att, sbom, referrers), then the platform's
  t.deepEqual(got, want)
  t.is(image.artifacts!.find((a) => a.kind === 'referrer')!.artifactType, 'application/spdx+json')
  t.is(meta.images.find((i) => i.name === s.unsigned[0])!.artifacts, undefined, 'an unsigned image records no artifacts')
  const entries = new Set(listing(withArtifacts))
  for (const a of signed.artifacts) for (const digest of [a.digest, ...a.blobs]) t.true(entries.has(`blobs/sha256/${digest.slice(7)}`), `${a.kind} blob ${digest}`)
  const extra = listing(withArtifacts).length - listing(without).length
  t.true(extra > 0)
  t.is(meta.blobs.count, metadata(without).blobs.count + extra, 'bundle.json counts the artifact blobs')
  // install.sh's entry list knows them
  const script = extract(withArtifacts, 'kubeferry/install.sh')
  for (const a of signed.artifacts) t.true(script.includes(`blobs/sha256/${a.digest.slice(7)}`), `install.sh lists ${a.kind}`)
  // and the trusted root: a blob bundle.json names, listed like the others
  t.true(entries.has(`blobs/sha256/${meta.trustedRoot!.digest.slice(7)}`))
  t.true(script.includes(`blobs/sha256/${meta.trustedRoot!.digest.slice(7)}`))
  t.is(metadata(without).trustedRoot, undefined)
})

peerTest('index.json and manifest.json are those of the --no-signatures bundle; verify passes', ['registries'], async (t) => {
  if (!ready(t)) return
  t.is(extract(withArtifacts, 'index.json'), extract(without, 'index.json'))
  t.is(extract(withArtifacts, 'manifest.json'), extract(without, 'manifest.json'))
  t.is(extract(withArtifacts, 'kubeferry/docker/linux-arm64.tar'), extract(without, 'kubeferry/docker/linux-arm64.tar'))
  const r = await runCli(['verify', withArtifacts, '--json'])
  t.is(r.code, 0, r.stdout + r.stderr)
  t.true((JSON.parse(r.stdout) as {ok: boolean}).ok)
})

peerTest('--require-signed-images refuses before writing, naming the unsigned image; passes when all are signed', ['registries'], async (t) => {
  const s = ready(t)
  if (!s) return
  const output = join(work, 'refused.tar')
  const r = await create(output, [s.signed[0].reference, ...s.unsigned], '--require-signed-images')
  t.not(r.code, 0)
  t.regex(r.stderr, new RegExp(`no signature.*${s.unsigned[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  t.notRegex(r.stderr, new RegExp(`${s.signed[0].reference.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@`), 'the signed image is not named')
  t.false(existsSync(output))
  t.false(existsSync(`${output}.partial`))
  const ok = await create(join(work, 'signed-only.tar'), [s.signed[0].reference], '--require-signed-images')
  t.is(ok.code, 0, ok.stderr)
})

function ctrImages(peers: Peers, namespace: string, bundle: string): string[] {
  const ctr = (...args: string[]) => execFileSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  try {
    ctr('images', 'import', '--platform', 'linux/amd64', bundle)
    return ctr('images', 'ls').trim().split('\n').slice(1).map((l) => l.split(/\s+/)).map((c) => `${c[0]} ${c[2]}`).sort()
  } finally {
    const names = spawnSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'ls', '-q'], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean)
    if (names.length) spawnSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'rm', ...names])
  }
}

peerTest('ctr import: the same images, names and digests with and without the artifacts', ['registries', 'containerd'], async (t, peers) => {
  const s = ready(t)
  if (!s) return
  const withRows = ctrImages(peers, `kf-art-with-${process.pid}`, withArtifacts)
  const withoutRows = ctrImages(peers, `kf-art-without-${process.pid}`, without)
  t.is(withRows.length, 2, withRows.join('\n'))
  t.deepEqual(withRows, withoutRows)
  t.true(withRows.some((row) => row === `${s.signed[0].reference} ${s.signed[0].image.digest}`))
})

peerTest('docker load: the same images and IDs with and without the artifacts', ['registries', 'dockerd'], async (t, peers) => {
  const s = ready(t)
  if (!s) return
  const docker = (...args: string[]) => execFileSync('/usr/bin/docker', ['-H', peers.dockerd!.host, ...args], {encoding: 'utf8'})
  const ours = (): string[] =>
    docker('images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}').trim().split('\n').filter((l) => l.includes(`/${prefix}/`)).sort()
  const loaded = (bundle: string): string[] => {
    try {
      docker('load', '-i', bundle)
      return ours()
    } finally {
      const names = ours().map((l) => l.split(' ')[0])
      if (names.length) spawnSync('/usr/bin/docker', ['-H', peers.dockerd!.host, 'rmi', '-f', ...names])
    }
  }
  const withRows = loaded(withArtifacts)
  t.is(withRows.length, 2, withRows.join('\n'))
  t.deepEqual(withRows, loaded(without))
})

peerTest('skopeo reads the same manifest from oci-archive: with and without the artifacts', ['registries', 'skopeo'], async (t) => {
  const s = ready(t)
  if (!s) return
  const raw = (bundle: string): string => execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${bundle}:${s.signed[0].reference}`], {encoding: 'utf8'})
  t.is(raw(withArtifacts), raw(without))
  t.is(JSON.parse(raw(withArtifacts)).manifests.length, s.signed[0].image.platforms.length)
})

peerTest('inspect shows per image what is carried and who signed (key; the keyless certificate\'s identity), text and --json', ['registries'], async (t) => {
  const s = ready(t)
  if (!s) return
  const json = await runCli(['inspect', withArtifacts, '--json'])
  t.is(json.code, 0, json.stderr)
  const info = JSON.parse(json.stdout) as {images: Array<{name: string; artifacts?: Array<{kind: string; about: string; signedBy?: string[]; predicateTypes?: string[]; artifactType?: string}>}>}
  const signed = info.images.find((i) => i.name === s.signed[0].reference)!
  t.deepEqual(signed.artifacts!.map((a) => `${a.kind} ${a.about}`), ['signature image', 'attestation image', 'sbom image', 'referrer image', `signature ${s.signed[0].image.platforms[0].platform.replace('/v8', '')}`])
  t.deepEqual(signed.artifacts![0].signedBy, ['key', s.signers.keyless.identity])
  t.deepEqual(signed.artifacts![4].signedBy, ['key'])
  t.deepEqual(signed.artifacts![1].predicateTypes, ['https://slsa.dev/provenance/v0.2'])
  t.is(signed.artifacts![3].artifactType, 'application/spdx+json')
  t.is(info.images.find((i) => i.name === s.unsigned[0])!.artifacts, undefined)
  const text = await runCli(['inspect', withArtifacts])
  t.is(text.code, 0, text.stderr)
  t.regex(text.stdout, new RegExp(`signature \\(image\\) by key, ${s.signers.keyless.identity!.replace(/\./g, '\\.')}`))
  t.regex(text.stdout, /SBOM \(image\)/)
  t.regex(text.stdout, /referrer application\/spdx\+json \(image\)/)
  const plain = await runCli(['inspect', without])
  t.notRegex(plain.stdout, /signatures, attestations/)
})

peerTest('verify names a missing artifact blob, and a missing trusted root', ['registries'], async (t) => {
  const s = ready(t)
  if (!s) return
  const broken = join(work, 'broken.tar')
  execFileSync('cp', [withArtifacts, broken])
  const sig = s.signed[0].artifacts.find((a) => a.kind === 'attestation')!
  const layer = sig.blobs[sig.blobs.length - 1]
  execFileSync('tar', ['--delete', '-f', broken, `blobs/sha256/${layer.slice(7)}`])
  const r = await runCli(['verify', broken, '--json'])
  t.not(r.code, 0)
  const problems = (JSON.parse(r.stdout) as {problems: Array<{kind: string; message: string}>}).problems
  t.true(problems.some((p) => p.kind === 'MISSING' && p.message.includes('attestation') && p.message.includes(layer)), JSON.stringify(problems))
  // and the carried trusted root
  const noRoot = join(work, 'no-root.tar')
  execFileSync('cp', [withArtifacts, noRoot])
  const root = metadata(withArtifacts).trustedRoot!.digest
  execFileSync('tar', ['--delete', '-f', noRoot, `blobs/sha256/${root.slice(7)}`])
  const r2 = await runCli(['verify', noRoot, '--json'])
  t.not(r2.code, 0)
  const problems2 = (JSON.parse(r2.stdout) as {problems: Array<{kind: string; message: string}>}).problems
  t.true(problems2.some((p) => p.kind === 'MISSING' && p.message === `the trusted root ${root} that bundle.json names is missing`), JSON.stringify(problems2))
})

peerTest('install.sh (dash) and kubeferry load import a bundle with artifacts as the one without: same names and digests', ['registries', 'containerd'], async (t, peers) => {
  if (!ready(t)) return
  const address = peers.containerd!.address
  const imported = async (bundle: string, how: 'install.sh' | 'load', namespace: string): Promise<string[]> => {
    const ctr = (...args: string[]) => spawnSync('ctr', ['--address', address, '-n', namespace, ...args], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean)
    try {
      const r = how === 'load'
        ? await runCli(['load', bundle, '--runtime', 'containerd', '--address', address, '--namespace', namespace])
        : spawnSync('dash', [bundle.replace(/\.tar$/, '.install.sh'), bundle, '--runtime', 'containerd', '--address', address, '--namespace', namespace], {encoding: 'utf8'})
      t.is(how === 'load' ? (r as {code: number}).code : (r as {status: number}).status, 0, `${how}: ${r.stderr}`)
      return ctr('images', 'ls').slice(1).map((l) => l.split(/\s+/)).map((c) => `${c[0]} ${c[2]}`).sort()
    } finally {
      const names = ctr('images', 'ls', '-q')
      if (names.length) ctr('images', 'rm', ...names)
    }
  }
  for (const how of ['install.sh', 'load'] as const) {
    const withRows = await imported(withArtifacts, how, `kf-art-${how === 'load' ? 'ld' : 'sh'}-w-${process.pid}`)
    t.is(withRows.length, 4, withRows.join('\n')) // each image by tag and by repo@digest
    t.deepEqual(withRows, await imported(without, how, `kf-art-${how === 'load' ? 'ld' : 'sh'}-wo-${process.pid}`), how)
  }
})

peerTest('podman load (docker-archive and OCI paths) and skopeo copy to containers-storage: the same images with and without the artifacts', ['registries', 'skopeo'], async (t, peers) => {
  const s = ready(t)
  if (!s) return
  if (!which('podman')) {
    t.log('SKIPPED: podman is not installed')
    t.pass()
    return
  }
  const rows = async (bundle: string, how: 'load' | 'skopeo'): Promise<string[]> => {
    const store = await makeStore(work, `podman-${how}`)
    if (how === 'load') {
      const r = await store.podman('load', '-i', bundle)
      t.is(r.code, 0, r.stderr)
    } else {
      const r = await exec(peers.tools.skopeo, ['copy', '--quiet', `oci-archive:${bundle}:${s.signed[0].reference}`, store.destination(s.signed[0].reference)], store.env())
      t.is(r.code, 0, r.stderr)
    }
    return (await store.images()).map((i) => `${(i.Names ?? []).join(',')} ${i.Id} ${i.Digest}`).sort()
  }
  // two images: podman 4.3 takes the docker-archive path; one image: the OCI path
  const one = join(work, 'one.tar')
  const oneWithout = join(work, 'one-without.tar')
  for (const [output, extra] of [[one, []], [oneWithout, ['--no-signatures']]] as const) t.is((await create(output, [s.signed[0].reference], ...extra)).code, 0)
  for (const [a, b, how] of [[withArtifacts, without, 'load'], [one, oneWithout, 'load'], [one, oneWithout, 'skopeo']] as const) {
    const got = await rows(a, how)
    t.true(got.length > 0, `${how} ${a}`)
    t.deepEqual(got, await rows(b, how), `${how} ${a}`)
  }
})

test('--require-signed-images with --no-signatures is a usage error (exit 2), before anything is asked', async (t) => {
  const r = await runCli(['create', '-o', join(tmpdir(), `kf-never-${process.pid}.tar`), '--image', 'registry.invalid/x:1', '--require-signed-images', '--no-signatures'])
  t.is(r.code, 2)
  t.regex(r.stderr, /--require-signed-images needs the signatures that --no-signatures leaves out/)
})
