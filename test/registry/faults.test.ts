import test from 'ava'
import {Readable} from 'node:stream'
import {KubeferryError} from '../../src/oci/errors.js'
import {sha256Digest} from '../../src/oci/digest.js'
import {MediaType} from '../../src/oci/media-types.js'
import {staticCredentialProvider, anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {abandonBody} from '../../src/registry/transport.js'
import {request} from 'undici'
import {parseReference} from '../../src/oci/reference.js'
import {deterministicBytes, json, startServer} from './fake-server.js'

const fastRetry = {attempts: 4, baseDelayMs: 5, maxDelayMs: 20}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function manifestBytes(): Buffer {
  const config = Buffer.from('{"os":"linux","architecture":"amd64"}')
  return Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciManifest, config: {mediaType: MediaType.OciConfig, digest: sha256Digest(config), size: config.length}, layers: []}))
}

test('a connection reset mid-blob resumes with Range and the bytes verify', async (t) => {
  const blob = deterministicBytes(1_000_000, 7)
  const digest = sha256Digest(blob)
  let gets = 0
  const server = await startServer((req, res) => {
    gets++
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''))
    if (!range) {
      res.writeHead(200, {'content-length': String(blob.length)})
      res.write(blob.subarray(0, 300_000), () => setTimeout(() => req.socket.destroy(), 20))
      return
    }
    const start = Number(range[1])
    res.writeHead(206, {'content-length': String(blob.length - start), 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`})
    res.end(blob.subarray(start))
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  let progress = 0
  const stream = await client.openBlob(parseReference(`${server.host}/lib/blob`), {digest, size: blob.length}, {onProgress: (n) => (progress += n)})
  const got = await drain(stream)
  t.true(got.equals(blob))
  t.is(progress, blob.length)
  t.is(gets, 2)
  const resumed = server.requests.find((r) => r.headers.range)
  t.truthy(resumed)
  const offset = Number(/bytes=(\d+)-/.exec(String(resumed?.headers.range))?.[1])
  t.true(offset >= 300_000 && offset < blob.length, `resumed at ${offset}`)
})

test('a server that ignores Range on resume is re-read from the start without duplicating bytes', async (t) => {
  const blob = deterministicBytes(500_000, 9)
  let first = true
  const server = await startServer((req, res) => {
    res.writeHead(200, {'content-length': String(blob.length)})
    if (first) {
      first = false
      res.write(blob.subarray(0, 200_000), () => setTimeout(() => req.socket.destroy(), 20))
    } else res.end(blob)
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  let progress = 0
  const got = await drain(await client.openBlob(parseReference(`${server.host}/lib/blob`), {digest: sha256Digest(blob), size: blob.length}, {onProgress: (n) => (progress += n)}))
  t.true(got.equals(blob))
  t.is(progress, blob.length)
})

test('aborting the signal destroys the blob stream', async (t) => {
  const blob = deterministicBytes(100_000, 17)
  const server = await startServer((_req, res) => {
    res.writeHead(200, {'content-length': String(blob.length)})
    res.write(blob.subarray(0, 10_000)) // then hang
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  const controller = new AbortController()
  const stream = await client.openBlob(parseReference(`${server.host}/lib/blob`), {digest: sha256Digest(blob), size: blob.length}, {signal: controller.signal})
  setTimeout(() => controller.abort(), 100)
  const error = await t.throwsAsync(drain(stream))
  t.regex(error?.message ?? '', /cancelled/)
})

test('429 with Retry-After waits that long and then succeeds', async (t) => {
  const manifest = manifestBytes()
  let calls = 0
  const server = await startServer((_req, res) => {
    calls++
    if (calls === 1) return json(res, 429, {errors: [{code: 'TOOMANYREQUESTS', message: 'slow down'}]}, {'retry-after': '1'})
    res.writeHead(200, {'content-type': MediaType.OciManifest, 'docker-content-digest': sha256Digest(manifest)})
    res.end(manifest)
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  const started = Date.now()
  const got = await client.getManifest(parseReference(`${server.host}/lib/app:1`))
  const waited = Date.now() - started
  t.is(got.raw.digest, sha256Digest(manifest))
  t.is(calls, 2)
  t.true(waited >= 950, `waited only ${waited} ms`)
})

test('persistent 503 gives up after the bounded number of attempts', async (t) => {
  const server = await startServer((_req, res) => json(res, 503, {}))
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  const error = await t.throwsAsync(client.getManifest(parseReference(`${server.host}/lib/app:1`)), {instanceOf: KubeferryError})
  t.is(error?.code, 'REGISTRY_ERROR')
  t.regex(error?.message ?? '', /HTTP 503/)
  t.is(server.requests.length, fastRetry.attempts)
})

test('a corrupted byte is refused with DIGEST_MISMATCH', async (t) => {
  const blob = deterministicBytes(200_000, 3)
  const digest = sha256Digest(blob)
  const bad = Buffer.from(blob)
  bad[123_456] ^= 0x01
  const server = await startServer((_req, res) => {
    res.writeHead(200, {'content-length': String(bad.length)})
    res.end(bad)
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  const stream = await client.openBlob(parseReference(`${server.host}/lib/blob`), {digest, size: blob.length})
  const error = await t.throwsAsync(drain(stream))
  t.is((error as KubeferryError).code, 'DIGEST_MISMATCH')
})

test('a manifest whose bytes differ from the requested digest or Docker-Content-Digest is refused', async (t) => {
  const manifest = manifestBytes()
  const other = sha256Digest('something else')
  const server = await startServer((_req, res) => {
    res.writeHead(200, {'content-type': MediaType.OciManifest, 'docker-content-digest': other})
    res.end(manifest)
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  const byTag = await t.throwsAsync(client.getManifest(parseReference(`${server.host}/lib/app:1`)), {instanceOf: KubeferryError})
  t.is(byTag?.code, 'DIGEST_MISMATCH')
  const byDigest = await t.throwsAsync(client.getManifest(parseReference(`${server.host}/lib/app@${other}`)), {instanceOf: KubeferryError})
  t.is(byDigest?.code, 'DIGEST_MISMATCH')
})

test('schema1 manifests are refused with a clear message', async (t) => {
  const server = await startServer((_req, res) => {
    res.writeHead(200, {'content-type': MediaType.DockerSchema1Signed})
    res.end(JSON.stringify({schemaVersion: 1, name: 'lib/old', tag: '1', fsLayers: []}))
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  const error = await t.throwsAsync(client.getManifest(parseReference(`${server.host}/lib/old:1`)), {instanceOf: KubeferryError})
  t.is(error?.code, 'UNSUPPORTED_MEDIA_TYPE')
  t.regex(error?.message ?? '', /schema 1/)
  t.true(String(server.requests[0].headers.accept).includes(MediaType.OciIndex))
})

test('a cross-host redirect carries no Authorization, the registry itself gets it', async (t) => {
  const blob = deterministicBytes(50_000, 5)
  const storage = await startServer((_req, res) => {
    res.writeHead(200, {'content-length': String(blob.length)})
    res.end(blob)
  })
  t.teardown(() => storage.close())
  const registry = await startServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret-pass').toString('base64')}`) {
      return json(res, 401, {errors: [{code: 'UNAUTHORIZED'}]}, {'www-authenticate': 'Basic realm="fake"'})
    }
    res.writeHead(307, {location: `${storage.url}/bucket/blob?X-Signature=abc`})
    res.end()
  })
  t.teardown(() => registry.close())
  const client = new RegistryClient({credentials: staticCredentialProvider({[registry.host]: {username: 'alice', password: 's3cret-pass'}}), retry: fastRetry})
  t.teardown(() => client.close())
  const got = await drain(await client.openBlob(parseReference(`${registry.host}/lib/blob`), {digest: sha256Digest(blob), size: blob.length}))
  t.true(got.equals(blob))
  t.true(registry.requests.some((r) => r.headers.authorization?.startsWith('Basic ')))
  t.is(storage.requests.length, 1)
  t.is(storage.requests[0].headers.authorization, undefined)
})

/** A registry that wants Bearer tokens from its own token endpoint; tokens are checked for age. */
async function tokenRegistry(options: {lifetimeS: number; users: Record<string, string>; identity?: string}) {
  const issued = new Map<string, number>()
  const tokenRequests: Array<{method: string; query: URLSearchParams; form?: URLSearchParams; basicUser?: string}> = []
  let counter = 0
  const manifest = manifestBytes()
  const server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/token') {
      const form = req.method === 'POST' ? new URLSearchParams(req.body.toString('utf8')) : undefined
      const basic = /^Basic (.*)$/.exec(String(req.headers.authorization ?? ''))
      const [user, pass] = basic ? Buffer.from(basic[1], 'base64').toString().split(':') : []
      tokenRequests.push({method: req.method ?? '', query: url.searchParams, form, basicUser: user})
      const okIdentity = form?.get('grant_type') === 'refresh_token' && form.get('refresh_token') === options.identity
      const okBasic = user !== undefined && options.users[user] === pass
      if (!okIdentity && !okBasic) return json(res, 401, {errors: [{code: 'UNAUTHORIZED'}]})
      const token = `tok-${++counter}-${Math.random().toString(36).slice(2)}`
      issued.set(token, Date.now())
      return json(res, 200, {access_token: token, expires_in: options.lifetimeS})
    }
    const challenge = `Bearer realm="${server.url}/token",service="fake-registry",scope="repository:lib/app:pull"`
    const bearer = /^Bearer (.*)$/.exec(String(req.headers.authorization ?? ''))
    const at = bearer ? issued.get(bearer[1]) : undefined
    if (at === undefined) return json(res, 401, {errors: [{code: 'UNAUTHORIZED'}]}, {'www-authenticate': challenge})
    if (Date.now() - at > options.lifetimeS * 1000) return json(res, 401, {errors: [{code: 'UNAUTHORIZED', message: 'token expired'}]}, {'www-authenticate': `${challenge},error="invalid_token"`})
    res.writeHead(200, {'content-type': MediaType.OciManifest})
    res.end(manifest)
  })
  return {server, tokenRequests, issued, revoke: () => issued.clear()}
}

test('token flow: challenge → token with Basic credentials → retry; one token cached per scope', async (t) => {
  const reg = await tokenRegistry({lifetimeS: 300, users: {bob: 'hunter2-pass'}})
  t.teardown(() => reg.server.close())
  const client = new RegistryClient({credentials: staticCredentialProvider({[reg.server.host]: {username: 'bob', password: 'hunter2-pass'}}), retry: fastRetry})
  t.teardown(() => client.close())
  const ref = parseReference(`${reg.server.host}/lib/app:1`)
  await client.getManifest(ref)
  await client.getManifest(ref)
  t.is(reg.tokenRequests.length, 1)
  const tr = reg.tokenRequests[0]
  t.is(tr.method, 'GET')
  t.is(tr.basicUser, 'bob')
  t.is(tr.query.get('service'), 'fake-registry')
  t.deepEqual(tr.query.getAll('scope'), ['repository:lib/app:pull'])
  // The second manifest GET went straight out with the cached token (no second 401).
  t.is(reg.server.requests.filter((r) => !r.url.startsWith('/token')).length, 3)
})

test('an expired token is refreshed before use, a revoked one after the 401', async (t) => {
  const reg = await tokenRegistry({lifetimeS: 2, users: {bob: 'pw-123456'}})
  t.teardown(() => reg.server.close())
  const client = new RegistryClient({credentials: staticCredentialProvider({[reg.server.host]: {username: 'bob', password: 'pw-123456'}}), retry: fastRetry})
  t.teardown(() => client.close())
  const ref = parseReference(`${reg.server.host}/lib/app:1`)
  const registryCalls = () => reg.server.requests.filter((r) => !r.url.startsWith('/token')).length
  await client.getManifest(ref)
  t.is(reg.tokenRequests.length, 1)
  t.is(registryCalls(), 2) // anonymous 401, then with the token
  // 2 s lifetime is renewed a quarter early: after 1.6 s a fresh token is fetched up front (no 401 first).
  await new Promise((r) => setTimeout(r, 1600))
  await client.getManifest(ref)
  t.is(reg.tokenRequests.length, 2)
  t.is(registryCalls(), 3)
  reg.revoke()
  await client.getManifest(ref)
  t.is(reg.tokenRequests.length, 3)
})

test('identity tokens are exchanged with POST grant_type=refresh_token', async (t) => {
  const reg = await tokenRegistry({lifetimeS: 300, users: {}, identity: 'refresh-abc-123'})
  t.teardown(() => reg.server.close())
  const client = new RegistryClient({credentials: staticCredentialProvider({[reg.server.host]: {identityToken: 'refresh-abc-123'}}), retry: fastRetry})
  t.teardown(() => client.close())
  await client.getManifest(parseReference(`${reg.server.host}/lib/app:1`))
  t.is(reg.tokenRequests[0].method, 'POST')
  t.is(reg.tokenRequests[0].form?.get('grant_type'), 'refresh_token')
  t.is(reg.tokenRequests[0].form?.get('service'), 'fake-registry')
})

test('wrong credentials give UNAUTHORIZED with a hint, and no secret in messages or logs', async (t) => {
  const reg = await tokenRegistry({lifetimeS: 300, users: {bob: 'right-password'}})
  t.teardown(() => reg.server.close())
  const logs: string[] = []
  const secret = 'wrong-Secret-Value-42'
  const client = new RegistryClient({credentials: staticCredentialProvider({[reg.server.host]: {username: 'bob', password: secret}}), retry: fastRetry, log: (l, m) => logs.push(`${l} ${m}`)})
  t.teardown(() => client.close())
  const error = await t.throwsAsync(client.getManifest(parseReference(`${reg.server.host}/lib/app:1`)), {instanceOf: KubeferryError})
  t.is(error?.code, 'UNAUTHORIZED')
  t.regex(error?.hint ?? '', /--password-stdin|docker login/)
  const everything = [error?.message, error?.hint, JSON.stringify(error?.toJSON()), ...logs].join('\n')
  t.true(logs.length > 0)
  for (const s of [secret, Buffer.from(`bob:${secret}`).toString('base64')]) t.false(everything.includes(s), `leaked ${s}`)
})

test('tags are listed across Link pages', async (t) => {
  const server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const last = url.searchParams.get('last')
    if (!last) return json(res, 200, {name: 'lib/app', tags: ['a', 'b']}, {link: '</v2/lib/app/tags/list?last=b&n=2>; rel="next"'})
    if (last === 'b') return json(res, 200, {name: 'lib/app', tags: ['c', 'd']}, {link: `<${server.url}/v2/lib/app/tags/list?last=d&n=2>; rel="next"`})
    return json(res, 200, {name: 'lib/app', tags: ['e']})
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  t.deepEqual(await client.listTags(parseReference(`${server.host}/lib/app`)), ['a', 'b', 'c', 'd', 'e'])
})

test('mirrors are tried first with the canonical name kept; a mirror miss falls back to the next endpoint', async (t) => {
  const manifest = manifestBytes()
  const serve = (res: import('node:http').ServerResponse) => {
    res.writeHead(200, {'content-type': MediaType.OciManifest})
    res.end(manifest)
  }
  const upstream = await startServer((_req, res) => serve(res))
  const emptyMirror = await startServer((_req, res) => json(res, 404, {errors: [{code: 'MANIFEST_UNKNOWN'}]}))
  const goodMirror = await startServer((req, res) => {
    if (req.url?.startsWith('/v2/k8s/lib/')) serve(res)
    else json(res, 404, {})
  })
  t.teardown(() => Promise.all([upstream.close(), emptyMirror.close(), goodMirror.close()]).then(() => {}))
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry, mirrors: {[upstream.host]: [emptyMirror.url, `${goodMirror.url}/k8s`]}})
  t.teardown(() => client.close())
  const ref = parseReference(`${upstream.host}/lib/app:1`)
  const got = await client.getManifest(ref)
  t.is(got.raw.digest, sha256Digest(manifest))
  t.is(emptyMirror.requests.length, 1)
  t.is(goodMirror.requests[0].url, '/v2/k8s/lib/app/manifests/1')
  t.is(upstream.requests.length, 0)
  t.is(await client.headManifest(parseReference(`${upstream.host}/lib/missing:1`)).then((m) => m?.digest), sha256Digest(manifest))
})

test('an unreachable upstream does not hide the mirror\'s "not found"', async (t) => {
  const mirror = await startServer((_req, res) => json(res, 404, {errors: [{code: 'MANIFEST_UNKNOWN', message: 'manifest unknown'}]}))
  t.teardown(() => mirror.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry, mirrors: {'kubeferry-upstream.invalid': [mirror.url]}})
  t.teardown(() => client.close())
  const ref = parseReference('kubeferry-upstream.invalid/pause:9.99')
  const error = await t.throwsAsync(client.getManifest(ref), {instanceOf: KubeferryError})
  t.is(error?.code, 'NOT_FOUND')
  t.regex(error?.message ?? '', /kubeferry-upstream\.invalid\/pause:9\.99 not found in mirror/)
  t.is(mirror.requests[0].url, '/v2/pause/manifests/9.99')
})

test('uploads: monolithic PUT; a registry refusing it gets PATCH + PUT; a broken attempt reopens the stream', async (t) => {
  const blob = deterministicBytes(100_000, 11)
  const digest = sha256Digest(blob)
  const refusePut = true
  let breakFirstPatch = true
  const server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'POST') {
      res.writeHead(202, {location: `/v2/lib/app/blobs/uploads/u${server.requests.length}?_state=s`, 'content-length': '0'})
      return res.end()
    }
    if (req.method === 'PATCH') {
      if (breakFirstPatch) {
        breakFirstPatch = false
        req.socket.destroy()
        return
      }
      t.true(req.body.equals(blob))
      res.writeHead(202, {location: `${url.pathname}?_state=after-patch`, 'content-length': '0'})
      return res.end()
    }
    if (req.method === 'PUT') {
      if (req.body.length > 0 && refusePut) return json(res, 405, {errors: [{code: 'UNSUPPORTED'}]})
      t.is(url.searchParams.get('digest'), digest)
      t.is(url.searchParams.get('_state'), 'after-patch')
      res.writeHead(201, {'docker-content-digest': digest, 'content-length': '0'})
      return res.end()
    }
    json(res, 400, {})
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  let opened = 0
  await client.uploadBlob(parseReference(`${server.host}/lib/app`), {digest, size: blob.length}, async () => {
    opened++
    return Readable.from([blob.subarray(0, 50_000), blob.subarray(50_000)])
  })
  t.is(opened, 3)
  // monolithic PUT refused → chunked; first PATCH connection dies → whole upload again from POST
  t.deepEqual(server.requests.filter((r) => r.method !== 'GET').map((r) => r.method), ['POST', 'PUT', 'POST', 'PATCH', 'POST', 'PATCH', 'PUT'])
})

test('a stalled transfer times out (stallTimeoutMs) and resumes', async (t) => {
  const blob = deterministicBytes(300_000, 13)
  const server = await startServer((req, res) => {
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''))
    if (!range) {
      res.writeHead(200, {'content-length': String(blob.length)})
      res.write(blob.subarray(0, 100_000)) // …and then nothing, connection kept open
      return
    }
    const start = Number(range[1])
    res.writeHead(206, {'content-length': String(blob.length - start), 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`})
    res.end(blob.subarray(start))
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry, stallTimeoutMs: 300})
  t.teardown(() => client.close())
  const got = await drain(await client.openBlob(parseReference(`${server.host}/lib/blob`), {digest: sha256Digest(blob), size: blob.length}))
  t.true(got.equals(blob))
  t.is(server.requests.length, 2)
})

test('abandonBody: a received response body we do not read is closed without an unhandled error (a bare destroy() raises one)', async (t) => {
  // undici reports a body destroyed before its end as an 'error' event (RequestAbortedError); with nobody listening,
  // Node.js ends the process with it. The blob download's stop and readLimited's refusals use abandonBody.
  // A small answer, all of it already received and none of it read (a refused status, a blob whose download stopped).
  const server = await startServer((_req, res) => {
    res.writeHead(403, {'content-length': '20'})
    res.end(deterministicBytes(20, 1))
  })
  t.teardown(() => server.close())
  const settle = () => new Promise((resolve) => setTimeout(resolve, 50))
  // The hazard, made visible with a listener: destroying it emits an 'error' event (unhandled, it ends the process).
  const bare = await request(`${server.url}/v2/x/blobs/y`)
  const errors: string[] = []
  bare.body.on('error', (error: Error) => errors.push(error.name))
  bare.body.destroy()
  await settle()
  t.deepEqual(errors, ['AbortError'])
  // abandonBody takes that event itself: no listener of ours, and no unhandled error (ava would fail the file).
  const abandoned = await request(`${server.url}/v2/x/blobs/y`)
  abandonBody(abandoned)
  t.true(abandoned.body.listenerCount('error') > 0)
  await settle()
  t.true(abandoned.body.destroyed)
})

test('a registry that sends more bytes than the blob has: SIZE_MISMATCH, the rest of the answer dropped (abandonBody)', async (t) => {
  const blob = deterministicBytes(1000, 3)
  const server = await startServer((_req, res) => {
    const sent = deterministicBytes(2_000_000, 3)
    res.writeHead(200, {'content-length': String(sent.length)})
    res.end(sent)
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: fastRetry})
  t.teardown(() => client.close())
  for (let i = 0; i < 5; i++) {
    const stream = await client.openBlob(parseReference(`${server.host}/lib/blob`), {digest: sha256Digest(blob), size: blob.length})
    const error = await t.throwsAsync(drain(stream))
    t.is((error as KubeferryError).code, 'SIZE_MISMATCH')
  }
  await new Promise((resolve) => setTimeout(resolve, 100)) // an unhandled error from the dropped bodies would fail the file
})
