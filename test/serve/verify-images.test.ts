/**
 * `serve --verify-images` (issue 19 d4, serve's share): the publishers' cosign signatures carried in each bundle are
 * held to the image policy (the same flags and check as load and push: cli/image-verify-flags.ts, trust/), and a
 * bundle with a refused image is not served — refused before the port opens and before the bundle's long verification.
 * Fixtures signed by the test harness in cosign's format in the real registry (test/images/cosign.ts): a good
 * signature, a tampered payload, an unsigned image.
 */
import {randomBytes} from 'node:crypto'
import {createServer} from 'node:net'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {Digest} from '../../src/oci/digest.js'
import {loadPeers, missingPeer, peerTest} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {pushSignature} from '../images/cosign.js'
import {pushImageSet, seedClient} from '../images/seed.js'
import {seedSignedImages, type SignedSet} from '../images/signed.js'
import {genKey} from '../trust/keys.js'

const prefix = `kf-serve-imgsig-${randomBytes(3).toString('hex')}`
let work = ''
let set: SignedSet | undefined
let keyPub = ''
let wrongPub = ''
let good = '' // the signed image only
let mixed = '' // signed, unsigned
let tampered = '' // a signature whose payload was altered after signing
let tamperedRef = ''
let setupError: string | undefined

/** A port nothing listens on now (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kf-serve-imgsig-'))
  try {
    const registry = peers.registries.open
    set = await seedSignedImages(peers, registry, prefix, ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3'], 1)
    const variant = peers.images.find((i) => i.name === 'registry.k8s.io/pause:3.9')!
    await pushImageSet({images: [variant], blobPath: (digest) => join(peers.imageDir, 'blobs', 'sha256', digest.slice(7))}, registry, {prefix})
    const client = seedClient(registry)
    try {
      await pushSignature(client, {registry: registry.host, repository: `${prefix}/pause`}, variant.digest as Digest, [set.signers.key], {tamper: true})
    } finally {
      await client.close()
    }
    tamperedRef = `${registry.host}/${prefix}/pause:3.9`
    keyPub = join(work, 'cosign.pub')
    await writeFile(keyPub, set.signers.key.publicPem)
    wrongPub = (await genKey(work, 'wrong', 'p256')).pub
    good = join(work, 'good.tar')
    mixed = join(work, 'mixed.tar')
    tampered = join(work, 'tampered.tar')
    for (const [output, refs] of [[good, [set.signed[0].reference]], [mixed, [set.signed[0].reference, ...set.unsigned]], [tampered, [tamperedRef]]] as const) {
      const r = await runCli(['create', '-o', output, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', ...refs.flatMap((ref) => ['--image', ref])])
      if (r.code !== 0) throw new Error(`create ${output}: ${r.stderr}`)
    }
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const serve = async (bundles: string[], ...extra: string[]) => {
  const port = await freePort()
  const r = await runCli(['serve', ...bundles, '--listen', `127.0.0.1:${port}`, ...extra], {timeoutMs: 8_000})
  return {...r, port}
}

peerTest('a bundle with an unsigned image: refused (exit 1) before the port opens and before the long verification, naming the image', ['registries'], async (t) => {
  if (setupError) return t.fail(setupError)
  const r = await serve([mixed], '--verify-images', '--cosign-key', keyPub)
  t.is(r.code, 1, r.stderr)
  t.true(r.stderr.includes(`1 image(s) refused by the image signature policy: ${set!.unsigned[0]}@sha256:`), r.stderr)
  t.regex(r.stderr, /no signature carried.*nothing was served/)
  t.regex(r.stderr, new RegExp(`${set!.signed[0].reference.replace(/[.]/g, '\\.')}: verified`), 'the signed one is said verified')
  t.true(r.stderr.includes(`${mixed}: images: 1 verified, 0 not checked, 1 refused`), `the total, as verify --images words it: ${r.stderr}`)
  t.notRegex(r.stdout + r.stderr, /serving|listening|verified 1 bundle/, 'neither listening nor verifying the bundle')
})

peerTest('a tampered signature and a wrong key are refused, each saying why; several bundles: the bad one stops serve', ['registries'], async (t) => {
  if (setupError) return t.fail(setupError)
  const bad = await serve([good, tampered], '--verify-images', '--cosign-key', keyPub)
  t.is(bad.code, 1)
  t.true(bad.stderr.includes(`${tamperedRef}@sha256:`), bad.stderr)
  t.regex(bad.stderr, /the payload was altered after signing \(tampered\)/)
  t.notRegex(bad.stdout, /serving/)
  const wrong = await serve([good], '--verify-images', '--cosign-key', wrongPub)
  t.is(wrong.code, 1)
  t.true(wrong.stderr.includes(`does not verify with ${wrongPub}`), wrong.stderr)
  const policy = join(work, 'policy.json')
  await writeFile(policy, JSON.stringify({images: [{match: `${set!.signed[0].reference.split('/')[0]}/**`, keys: [wrongPub]}]}))
  const byPolicy = await serve([good], '--verify-images', '--image-policy', policy)
  t.is(byPolicy.code, 1, byPolicy.stderr)
})

peerTest('the good bundle is served, each image said verified and the total counted; --json reports the counts in the listening event', ['registries'], async (t) => {
  if (setupError) return t.fail(setupError)
  const r = await serve([good], '--verify-images', '--cosign-key', keyPub)
  t.regex(r.stdout, /serving 1 images/, r.stderr)
  t.true(r.stderr.includes(`${good}: ${set!.signed[0].reference}: verified (${keyPub})`), r.stderr)
  t.true(r.stderr.includes(`${good}: images: 1 verified, 0 not checked, 0 refused`), `the total line: ${r.stderr}`)
  const json = await serve([good], '--verify-images', '--cosign-key', keyPub, '--json')
  const listening = JSON.parse(json.stdout.trim().split('\n')[0]) as {event: string; imageSignatures?: unknown}
  t.is(listening.event, 'listening', json.stderr)
  t.deepEqual(listening.imageSignatures, {verified: 1, notChecked: 0, refused: 0})
  // without the switch nothing is checked: the mixed bundle is served as before
  const plain = await serve([mixed])
  t.regex(plain.stdout, /serving 2 images/, plain.stderr)
})

peerTest('--cosign-key or --image-policy without --verify-images is a usage error (exit 2); an unreadable key is named', ['registries'], async (t) => {
  if (setupError) return t.fail(setupError)
  const usage = await serve([good], '--cosign-key', keyPub)
  t.is(usage.code, 2)
  t.regex(usage.stderr, /--cosign-key and --image-policy are for --verify-images/)
  const missing = await serve([good], '--verify-images', '--cosign-key', join(work, 'nope.pub'))
  t.is(missing.code, 1)
  t.regex(missing.stderr, /cannot read key .*nope\.pub/)
})
