/**
 * create's artifact lookups with the lookup index (registry/artifact-index.ts), against the real registry
 * (distribution 2.8: no referrers API) behind a logging proxy: the artifacts found are exactly those found by asking
 * tag by tag, from one tag list per repository, no HEAD per absent tag, and one referrers API question for the
 * endpoint. A tag list that is refused, paged or too long is not used, nor is a mirror's (a pull-through cache lists
 * what it holds): the tags are asked one by one, with the same result. The fault cases (a registry with the
 * referrers API, a failing first answer) use in-process servers.
 */
import {randomBytes} from 'node:crypto'
import test from 'ava'
import {carryArtifacts} from '../../src/bundle/artifacts.js'
import {planBundle} from '../../src/bundle/plan.js'
import type {Digest} from '../../src/oci/digest.js'
import {anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {LIST_BYTES} from '../../src/registry/artifact-index.js'
import {registrySource, type RegistrySource} from '../../src/registry/source.js'
import type {Reference} from '../../src/oci/reference.js'
import {peerTest} from '../harness/peers.js'
import {startFaultProxy, type LoggedRequest, type Rule} from '../faults/proxy.js'
import {seedSignedImages} from '../images/signed.js'
import {startServer, type FakeServer, type Handler} from './fake-server.js'

const tagList = /\/tags\/list$/

/**
 * Plan the images and carry their artifacts; what was found and what the proxy saw. `mirrors`: the proxy as a mirror
 * of the references' registry; else the references name the proxy itself.
 */
async function lookUp(refs: string[], lookupIndex: boolean, log: LoggedRequest[], mirrors: Record<string, string[]> = {}) {
  log.length = 0
  const client = new RegistryClient({mirrors, credentials: anonymousCredentials})
  try {
    const source = registrySource(client, {lookupIndex})
    const plan = await planBundle(source, refs.map((reference) => ({reference})), {platforms: ['linux/amd64', 'linux/arm64'], onReference: (ref) => source.expectArtifactLookups(ref)})
    await carryArtifacts(source, plan, {concurrency: 8})
    return {images: plan.images, blobs: plan.blobs.map((b) => b.digest), requests: [...log]}
  } finally {
    await client.close()
  }
}

const heads = (requests: LoggedRequest[]) => requests.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/sha256-'))
const lists = (requests: LoggedRequest[]) => requests.filter((r) => r.method === 'GET' && tagList.test(r.path))
const referrersApi = (requests: LoggedRequest[]) => requests.filter((r) => r.path.includes('/referrers/'))

peerTest('the lookup index finds exactly what asking tag by tag finds, from one tag list per repository and no HEAD per tag', ['registries'], async (t, peers) => {
  const registry = peers.registries.open
  const prefix = `kf-index-${randomBytes(4).toString('hex')}`
  const set = await seedSignedImages(peers, registry, prefix, ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3'], 1)
  const proxy = await startFaultProxy(registry.url)
  const refs = [set.signed[0].reference, ...set.unsigned].map((r) => r.replace(registry.host, proxy.host)) // the registry, reached directly
  try {
    const plain = await lookUp(refs, false, proxy.log)
    t.true(plain.images[0].artifacts!.length >= 4, 'the signed image has its signature, attestation, SBOM and referrer')
    t.is(lists(plain.requests).length, 0)
    const subjects = plain.images.reduce((n, i) => n + 1 + i.platforms.length, 0)
    t.is(heads(plain.requests).length, 4 * subjects, 'one by one: .sig, .att, .sbom and the referrers tag for each subject')

    const indexed = await lookUp(refs, true, proxy.log)
    t.deepEqual(indexed.images, plain.images, 'the same artifacts, in the same order')
    t.deepEqual(indexed.blobs, plain.blobs)
    t.is(lists(indexed.requests).length, 2, 'one tag list per repository')
    t.deepEqual(heads(indexed.requests), [], 'no HEAD: the lists answer for every tag')
    t.is(referrersApi(indexed.requests).length, 1, 'the endpoint said once that it has no referrers API')

    // Through a mirror: no list (a pull-through cache lists what it holds); every tag asked, the same artifacts.
    const mirrored = await lookUp([set.signed[0].reference, ...set.unsigned], true, proxy.log, {[registry.host]: [proxy.url]})
    t.deepEqual(mirrored.images.map((i) => i.artifacts), plain.images.map((i) => i.artifacts))
    t.is(lists(mirrored.requests).length, 0, 'no tag list read through a mirror')
    t.is(heads(mirrored.requests).length, 4 * subjects)

    // A list that cannot be used is dropped: the tags are asked one by one, with the same result.
    const unusable: Array<[string, Rule]> = [
      ['refused', {path: tagList, fault: {kind: 'status', status: 403, body: '{"errors":[{"code":"DENIED"}]}'}}],
      ['paged', {path: tagList, fault: {kind: 'status', status: 200, headers: {link: '</v2/x/tags/list?last=a>; rel="next"'}, body: '{"tags":[]}'}}],
      ['too long', {path: tagList, fault: {kind: 'status', status: 200, body: JSON.stringify({tags: Array.from({length: LIST_BYTES / 20}, (_, i) => `v0.0.${i}-long-tag-name-padding`)})}}],
    ]
    for (const [name, rule] of unusable) {
      proxy.setRules([rule])
      const fallback = await lookUp(refs, true, proxy.log)
      t.deepEqual(fallback.images, plain.images, `${name}: the same artifacts`)
      t.is(lists(fallback.requests).length, 2, `${name}: the lists were asked for`)
      t.is(heads(fallback.requests).length, 3 * subjects + subjects, `${name}: then every tag one by one`)
    }
  } finally {
    await proxy.close()
  }
})

const subject = `sha256:${'a'.repeat(64)}` as Digest
const other = `sha256:${'b'.repeat(64)}` as Digest

/** An in-process registry with `handler`, and a lookup-indexed source over it asking about its `pause` (no retries). */
async function withFakeRegistry(handler: Handler, fn: (source: RegistrySource, repo: Reference, server: FakeServer) => Promise<void>): Promise<void> {
  const server = await startServer(handler)
  const client = new RegistryClient({credentials: anonymousCredentials, retry: {attempts: 1}})
  try {
    await fn(registrySource(client, {lookupIndex: true}), {registry: server.host, repository: 'pause'}, server)
  } finally {
    await client.close()
    await server.close()
  }
}

test('a registry with the referrers API is asked for each subject; the first question goes alone', async (t) => {
  let inFlight = 0
  let most = 0
  const handler: Handler = async (req, res) => {
    if (req.url === '/v2/') return res.end('{}')
    if (req.url?.includes('/referrers/')) {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 20))
      inFlight--
      res.setHeader('content-type', 'application/vnd.oci.image.index.v1+json')
      return res.end(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: []}))
    }
    res.statusCode = 404
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
  }
  await withFakeRegistry(handler, async (source, repo, server) => {
    const answers = await Promise.all([subject, other, subject].map((d) => source.referrers(repo, d)))
    t.deepEqual(answers, [[], [], []])
    t.is(server.requests.filter((r) => r.url.includes('/referrers/')).length, 3, 'each subject asked: the API is there')
    t.is(server.requests.filter((r) => r.url.includes('/manifests/sha256-')).length, 0, 'no referrers tag: the API answered')
    t.is(most, 2, 'the first question alone, then the others together')
  })
})

test('a first referrers question that fails is not taken as the answer: the next question asks again', async (t) => {
  let calls = 0
  const handler: Handler = (req, res) => {
    if (req.url === '/v2/') return res.end('{}')
    if (req.url?.includes('/referrers/') && calls++ === 0) {
      res.statusCode = 500
      return res.end('{"errors":[{"code":"UNKNOWN"}]}')
    }
    res.statusCode = 404
    res.end('{"errors":[{"code":"NOT_FOUND"}]}')
  }
  await withFakeRegistry(handler, async (source, repo, server) => {
    await t.throwsAsync(source.referrers(repo, subject)) // 500: no answer (retries are off here)
    t.deepEqual(await source.referrers(repo, other), [], 'asked again: 404, no API; the referrers tag is absent')
    t.is(server.requests.filter((r) => r.url.includes('/referrers/')).length, 2)
    t.deepEqual(await source.referrers(repo, subject), [])
    t.is(server.requests.filter((r) => r.url.includes('/referrers/')).length, 2, 'known now: no API on this endpoint')
  })
})
