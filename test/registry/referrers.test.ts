/**
 * Artifact lookups (registry/referrers.ts) under faults, with in-process servers (the real registry's behaviour is in
 * test/bundle/artifacts.test.ts and test/serve/artifacts.test.ts): the first endpoint that answers decides (a mirror's
 * 404 is final, an unreachable mirror passes the question on), a refusal is an error naming the registry, the
 * referrers API's "not here" statuses fall back to the tag schema, a broken referrers list is refused.
 */
import {createHash} from 'node:crypto'
import test from 'ava'
import {RegistryClient} from '../../src/registry/client.js'
import {findReferrers, findTagged} from '../../src/registry/referrers.js'
import {KubeferryError} from '../../src/oci/errors.js'
import type {Digest} from '../../src/oci/digest.js'
import {startServer, type FakeServer} from './fake-server.js'

const subject = `sha256:${'a'.repeat(64)}` as Digest
const tag = `sha256-${'a'.repeat(64)}.sig`
const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'b'.repeat(64)}`, size: 2}, layers: []}))
const digestOf = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`
const referrer = {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 10, artifactType: 'application/spdx+json'}

function answer(res: import('node:http').ServerResponse, status: number, body: Buffer | string = '', type = 'application/json'): void {
  res.statusCode = status
  res.setHeader('content-type', type)
  if (status === 200 && Buffer.isBuffer(body)) res.setHeader('docker-content-digest', digestOf(body))
  res.end(body)
}

const client = (mirrors: Record<string, string[]> = {}) => new RegistryClient({mirrors, retry: {attempts: 1}})
const v2 = (res: import('node:http').ServerResponse) => answer(res, 200, '{}')

async function withServers(fn: (a: FakeServer, b: FakeServer) => Promise<void>, a: Parameters<typeof startServer>[0], b: Parameters<typeof startServer>[0]): Promise<void> {
  const [first, second] = await Promise.all([startServer(a), startServer(b)])
  try {
    await fn(first, second)
  } finally {
    await Promise.all([first.close(), second.close()])
  }
}

test('a mirror without the tag is final: the registry is not asked', async (t) => {
  await withServers(
    async (mirror, upstream) => {
      const c = client({[upstream.host]: [mirror.url]})
      t.is(await findTagged(c, {registry: upstream.host, repository: 'pause'}, tag), undefined)
      await c.close()
      t.true(mirror.requests.some((r) => r.method === 'HEAD' && r.url.endsWith(`/manifests/${tag}`)))
      t.false(mirror.requests.some((r) => r.method === 'GET' && r.url.includes('/manifests/')), 'HEAD only: no manifest GET (Docker Hub counts those as pulls)')
      t.false(upstream.requests.some((r) => r.url.includes('/manifests/')), 'upstream never asked')
    },
    (req, res) => (req.url === '/v2/' ? v2(res) : answer(res, 404, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')),
    (req, res) => (req.url === '/v2/' ? v2(res) : answer(res, 200, manifest, 'application/vnd.oci.image.manifest.v1+json')),
  )
})

test('an unreachable mirror passes the question on to the registry', async (t) => {
  await withServers(
    async (upstream, dead) => {
      const deadUrl = dead.url
      await dead.close()
      const c = client({[upstream.host]: [deadUrl]})
      const raw = await findTagged(c, {registry: upstream.host, repository: 'pause'}, tag)
      await c.close()
      t.is(raw?.digest, digestOf(manifest))
    },
    (req, res) => (req.url === '/v2/' ? v2(res) : answer(res, 200, manifest, 'application/vnd.oci.image.manifest.v1+json')),
    (_req, res) => answer(res, 500),
  )
})

test('a refusal (403) is an error naming the registry, not "no signature"', async (t) => {
  await withServers(
    async (registry) => {
      const c = client()
      const error = await t.throwsAsync(findTagged(c, {registry: registry.host, repository: 'pause'}, tag))
      await c.close()
      t.true(error instanceof KubeferryError)
      t.is((error as KubeferryError).code, 'DENIED')
      t.true(error!.message.includes(registry.host))
    },
    (req, res) => (req.url === '/v2/' ? v2(res) : answer(res, 403, '{"errors":[{"code":"DENIED"}]}')),
    (_req, res) => answer(res, 500),
  )
})

for (const status of [400, 404, 405, 501]) {
  test(`referrers API answering ${status}: the referrers tag schema is read instead`, async (t) => {
    const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [referrer]}))
    await withServers(
      async (registry) => {
        const c = client()
        t.deepEqual(await findReferrers(c, {registry: registry.host, repository: 'pause'}, subject), [referrer])
        await c.close()
        t.true(registry.requests.some((r) => r.url === `/v2/pause/referrers/${subject}`))
      },
      (req, res) => {
        if (req.url === '/v2/') return v2(res)
        if (req.url?.includes('/referrers/')) return answer(res, status)
        if (req.url === `/v2/pause/manifests/sha256-${'a'.repeat(64)}`) return answer(res, 200, index, 'application/vnd.oci.image.index.v1+json')
        return answer(res, 404)
      },
      (_req, res) => answer(res, 500),
    )
  })
}

test('referrers API: its list is used (no tag schema lookup); a broken list is refused with a hint', async (t) => {
  let body = JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [referrer]})
  await withServers(
    async (registry) => {
      const c = client()
      t.deepEqual(await findReferrers(c, {registry: registry.host, repository: 'pause'}, subject), [referrer])
      t.false(registry.requests.some((r) => r.url.includes('/manifests/')))
      body = '{"manifests": [{"digest": "md5:x", "size": 1}]}'
      const error = await t.throwsAsync(findReferrers(c, {registry: registry.host, repository: 'pause'}, subject))
      t.regex(error!.message, /invalid digest/)
      t.regex((error as KubeferryError).hint ?? '', /--no-signatures/)
      await c.close()
    },
    (req, res) => (req.url === '/v2/' ? v2(res) : req.url?.includes('/referrers/') ? answer(res, 200, body, 'application/vnd.oci.image.index.v1+json') : answer(res, 404)),
    (_req, res) => answer(res, 500),
  )
})
