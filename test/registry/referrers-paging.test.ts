/**
 * The referrers API paged (`Link: <…>; rel="next"`, as tags/list) and bounded, with an in-process registry (the real
 * registry, distribution 2.8, has no referrers API; serve's answer is in test/serve/artifacts.test.ts): pages are
 * followed (relative and absolute links, each digest once), and a hostile registry — links that loop, pages without
 * end, lists without end (API or tag schema), a page that breaks off — ends with what was read and a warning naming
 * the registry and the bound, or an error, never a hang.
 */
import test from 'ava'
import type {ServerResponse} from 'node:http'
import {RegistryClient} from '../../src/registry/client.js'
import {addReferrer, findReferrers, REFERRER_LIMITS} from '../../src/registry/referrers.js'
import {KubeferryError} from '../../src/oci/errors.js'
import type {Digest} from '../../src/oci/digest.js'
import type {Descriptor} from '../../src/oci/types.js'
import {startServer, type FakeServer} from './fake-server.js'

const subject = `sha256:${'a'.repeat(64)}` as Digest
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const INDEX = 'application/vnd.oci.image.index.v1+json'
const referrer = (n: number): Descriptor => ({mediaType: MANIFEST, digest: `sha256:${n.toString(16).padStart(64, '0')}` as Digest, size: 100 + n, artifactType: 'application/spdx+json'})
const page = (from: number, count: number) => Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: INDEX, manifests: Array.from({length: count}, (_, i) => referrer(from + i))}))
const api = `/v2/pause/referrers/${subject}`

function send(res: ServerResponse, status: number, body: Buffer | string = '', headers: Record<string, string> = {}): void {
  res.writeHead(status, {'content-type': status === 200 ? INDEX : 'application/json', ...headers})
  res.end(body)
}

/** A registry whose referrers API answers `pages(n)` for `?page=n` (n = 1 without the query). */
async function registry(pages: (n: number, base: string) => {body: Buffer | string; status?: number; link?: string}): Promise<FakeServer> {
  let base = ''
  const server = await startServer((req, res) => {
    if (req.url === '/v2/') return send(res, 200, '{}', {'content-type': 'application/json'})
    const url = new URL(req.url ?? '', 'http://x')
    if (url.pathname === api) {
      const p = pages(Number(url.searchParams.get('page') ?? '1'), base)
      return send(res, p.status ?? 200, p.body, p.link ? {link: p.link} : {})
    }
    return send(res, 404, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
  })
  base = server.url
  return server
}

async function lookup(server: FakeServer): Promise<{found: Descriptor[]; warnings: string[]}> {
  const client = new RegistryClient({retry: {attempts: 1}})
  const warnings: string[] = []
  try {
    return {found: await findReferrers(client, {registry: server.host, repository: 'pause'}, subject, (m) => warnings.push(m)), warnings}
  } finally {
    await client.close()
  }
}

test('pages are followed through relative and absolute next links; each digest once; the tag schema is not asked', async (t) => {
  const server = await registry((n, base) => {
    if (n === 1) return {body: page(0, 3), link: `<${api}?page=2>; rel="next"`}
    if (n === 2) return {body: page(2, 3), link: `<${base}${api}?page=3>; rel="next"`} // referrer 2 again: kept once
    return {body: page(5, 1)}
  })
  try {
    const {found, warnings} = await lookup(server)
    t.deepEqual(found.map((d) => d.digest), [0, 1, 2, 3, 4, 5].map((n) => referrer(n).digest))
    t.deepEqual(warnings, [])
    t.is(server.requests.filter((r) => r.url.startsWith(api)).length, 3)
    t.false(server.requests.some((r) => r.url.includes('/manifests/')), 'no tag schema lookup')
  } finally {
    await server.close()
  }
})

test('a next link leading back to a page already read: stops there with what was read, and says so', async (t) => {
  const server = await registry((n) => ({body: page(n * 10, 2), link: n === 3 ? `<${api}>; rel="next"` : `<${api}?page=${n + 1}>; rel="next"`}))
  try {
    const {found, warnings} = await lookup(server)
    t.is(found.length, 6)
    t.is(server.requests.filter((r) => r.url.startsWith(api)).length, 3, 'page 1 is not read twice')
    t.is(warnings.length, 1)
    t.regex(warnings[0], new RegExp(`referrers of ${server.host}/pause@${subject} from ${server.host}: its next-page link leads back to a page already read \\(/v2/pause/referrers/sha256:a{64}\\); stopped there with 6 referrers`))
  } finally {
    await server.close()
  }
})

test(`pages without end: at most ${REFERRER_LIMITS.pages} are read, the rest refused with a warning`, async (t) => {
  const server = await registry((n) => ({body: page(n, 1), link: `<${api}?page=${n + 1}>; rel="next"`}))
  try {
    const {found, warnings} = await lookup(server)
    t.is(server.requests.filter((r) => r.url.startsWith(api)).length, REFERRER_LIMITS.pages)
    t.is(found.length, REFERRER_LIMITS.pages)
    t.is(warnings.length, 1)
    t.regex(warnings[0], new RegExp(`goes on past ${REFERRER_LIMITS.pages} pages; kept the ${REFERRER_LIMITS.pages} referrers of those .*check the registry`))
  } finally {
    await server.close()
  }
})

test(`a list without end: at most ${REFERRER_LIMITS.descriptors} referrers are kept, no further page is read`, async (t) => {
  const per = 600
  const server = await registry((n) => ({body: page(n * per, per), link: `<${api}?page=${n + 1}>; rel="next"`}))
  try {
    const {found, warnings} = await lookup(server)
    t.is(found.length, REFERRER_LIMITS.descriptors)
    t.deepEqual(found.at(-1), referrer(per + REFERRER_LIMITS.descriptors - 1))
    t.is(server.requests.filter((r) => r.url.startsWith(api)).length, 2)
    t.regex(warnings.join('\n'), new RegExp(`more than ${REFERRER_LIMITS.descriptors} referrers listed; kept the first ${REFERRER_LIMITS.descriptors}`))
  } finally {
    await server.close()
  }
})

test('a page that breaks off (404 on page 2) is an error naming the page, not "no referrers"', async (t) => {
  const server = await registry((n) => (n === 1 ? {body: page(0, 2), link: `<${api}?page=2>; rel="next"`} : {status: 404, body: '{"errors":[{"code":"NAME_UNKNOWN"}]}'}))
  try {
    const error = await t.throwsAsync(lookup(server))
    t.true(error instanceof KubeferryError)
    t.is((error as KubeferryError).code, 'REGISTRY_ERROR')
    t.regex(error!.message, /\(page 2\)/)
    t.regex((error as KubeferryError).hint ?? '', /--no-signatures/)
    t.false(server.requests.some((r) => r.url.includes('/manifests/')), 'no fallback to the tag schema')
  } finally {
    await server.close()
  }
})

test('the referrers tag schema (no API): its index is read, bounded the same way', async (t) => {
  const big = page(0, REFERRER_LIMITS.descriptors + 200)
  const server = await startServer((req, res) => {
    if (req.url === '/v2/') return send(res, 200, '{}', {'content-type': 'application/json'})
    if (req.url === api) return send(res, 404, '{"errors":[{"code":"NOT_FOUND"}]}')
    if (req.url === `/v2/pause/manifests/sha256-${'a'.repeat(64)}`) return send(res, 200, req.method === 'HEAD' ? '' : big, {'content-type': INDEX, 'content-length': String(big.length)})
    return send(res, 404)
  })
  try {
    const {found, warnings} = await lookup(server)
    t.is(found.length, REFERRER_LIMITS.descriptors)
    t.regex(warnings.join('\n'), new RegExp(`referrers tag sha256-a{64} of ${server.host}/pause: more than ${REFERRER_LIMITS.descriptors} referrers listed`))
  } finally {
    await server.close()
  }
})

test('push asks a paged referrers API for its first page only (whether the API is there)', async (t) => {
  const server = await registry((n) => ({body: page(n, 1), link: `<${api}?page=${n + 1}>; rel="next"`}))
  const client = new RegistryClient({retry: {attempts: 1}})
  try {
    t.is(await addReferrer(client, {registry: server.host, repository: 'pause'}, subject, referrer(9)), 'api')
    t.is(server.requests.filter((r) => r.url.startsWith(api)).length, 1)
  } finally {
    await client.close()
    await server.close()
  }
})
