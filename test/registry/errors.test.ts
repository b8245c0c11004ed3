/**
 * Registry errors as data: the distribution spec's error bodies parsed into RegistryError fields, and the decisions
 * that depend on an error (retry an upload, fall back from a refused sparse index, prefer a mirror's answer) read
 * those fields. Several tests give a message in another wording than kubeferry's own: they fail if a decision goes
 * back to matching message text.
 */
import test from 'ava'
import {Readable} from 'node:stream'
import {sha256Digest} from '../../src/oci/digest.js'
import {KubeferryError} from '../../src/oci/errors.js'
import {anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {parseReference} from '../../src/oci/reference.js'
import {onPullEndpoints} from '../../src/registry/endpoints.js'
import {ERROR_BODY_LIMIT, errorPhrase, isTransientRegistryError, parseErrorBody, readErrorBody, RegistryError, statusError} from '../../src/registry/errors.js'
import {upstreamEndpoint} from '../../src/registry/mirrors.js'
import {isRefusedIndex, refusalReason} from '../../src/registry/push/manifests.js'
import type {TransportResponse} from '../../src/registry/transport.js'
import {json, startServer} from './fake-server.js'

function response(status: number, body: string | Buffer[], url = 'https://registry.test/v2/k8s/pause/manifests/3.10', method = 'PUT'): TransportResponse & {consumed: () => number} {
  const chunks = typeof body === 'string' ? [Buffer.from(body)] : body
  let consumed = 0
  const stream = Readable.from(
    (function* () {
      for (const c of chunks) {
        consumed += c.length
        yield c
      }
    })(),
  )
  return {status, headers: {}, body: stream as unknown as TransportResponse['body'], url: new URL(url), method, consumed: () => consumed}
}

const fields = (status: number, codes: string[] = []) => ({status, errors: codes.map((code) => ({code})), request: {method: 'PUT', url: 'https://r.test/v2/a/manifests/1'}})

test('parseErrorBody: one error with code, message and detail', (t) => {
  t.deepEqual(parseErrorBody('{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:abc"}]}'), [
    {code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: 'sha256:abc'},
  ])
})

test('parseErrorBody: several errors keep their order; structured detail is kept as sent', (t) => {
  const got = parseErrorBody(JSON.stringify({errors: [{code: 'DENIED', message: 'no'}, {code: 'BLOB_UNKNOWN', detail: {digest: 'sha256:1'}}, {code: 'NAME_UNKNOWN'}]}))
  t.deepEqual(got.map((e) => e.code), ['DENIED', 'BLOB_UNKNOWN', 'NAME_UNKNOWN'])
  t.deepEqual(got[1].detail, {digest: 'sha256:1'})
  t.is(got[1].message, undefined)
})

test('parseErrorBody: none (empty list, no list, empty body, not an object)', (t) => {
  for (const body of ['{"errors":[]}', '{}', '', 'null', '[]', '{"errors":"MANIFEST_INVALID"}']) t.deepEqual(parseErrorBody(body), [], body)
})

test('parseErrorBody: not JSON (an HTML page from a proxy) gives no errors', (t) => {
  t.deepEqual(parseErrorBody('<html><body><h1>502 Bad Gateway</h1> MANIFEST_BLOB_UNKNOWN</body></html>'), [])
})

test('readErrorBody: a huge body is read only up to the cap, drained to its end, and says nothing', async (t) => {
  // Valid JSON, but 1 MiB: only ERROR_BODY_LIMIT bytes are kept, so it cannot be parsed and gives no errors.
  const big = JSON.stringify({errors: [{code: 'MANIFEST_INVALID', message: 'x'.repeat(1024 * 1024)}]})
  const parts = [Buffer.from(big.slice(0, 4096)), ...Array.from({length: Math.ceil((big.length - 4096) / 65536)}, (_, i) => Buffer.from(big.slice(4096 + i * 65536, 4096 + (i + 1) * 65536)))]
  const res = response(400, parts)
  t.deepEqual(await readErrorBody(res), [])
  t.is(res.consumed(), big.length, 'the rest of the body is drained (the connection stays usable)')
  // A body just under the cap is parsed.
  const fits = JSON.stringify({errors: [{code: 'MANIFEST_INVALID', message: 'y'.repeat(ERROR_BODY_LIMIT - 200)}]})
  t.deepEqual((await readErrorBody(response(400, fits))).map((e) => e.code), ['MANIFEST_INVALID'])
})

test('statusError: a RegistryError with status, codes and the request without credentials or query; the message as before', async (t) => {
  const ep = upstreamEndpoint('registry.test')
  const res = response(400, '{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:abc"}]}', 'https://user:secret@registry.test/v2/k8s/pause/blobs/uploads/u1?_state=SIGNED&digest=sha256:1')
  const error = await statusError(ep, res, 'manifest k8s/pause:3.10')
  t.true(error instanceof RegistryError)
  t.true(error instanceof KubeferryError)
  t.is(error.code, 'REGISTRY_ERROR')
  t.is(error.status, 400)
  t.deepEqual(error.errors, [{code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: 'sha256:abc'}])
  t.deepEqual(error.request, {method: 'PUT', url: 'https://registry.test/v2/k8s/pause/blobs/uploads/u1?…'})
  t.is(error.message, 'registry registry.test answered HTTP 400 for manifest k8s/pause:3.10 (MANIFEST_BLOB_UNKNOWN: blob unknown to registry)')
  t.is(error.hint, 'the registry refused the request')
  t.notRegex(JSON.stringify({...error, message: error.message}), /secret|SIGNED/)
})

test('statusError: the ErrorCode still follows the status (401, 403, 404, 429, 5xx)', async (t) => {
  const ep = upstreamEndpoint('registry.test')
  const cases: Array<[number, KubeferryError['code']]> = [[401, 'UNAUTHORIZED'], [403, 'DENIED'], [404, 'NOT_FOUND'], [429, 'REGISTRY_ERROR'], [503, 'REGISTRY_ERROR']]
  for (const [status, code] of cases) {
    const error = await statusError(ep, response(status, '{"errors":[{"code":"X"}]}', undefined, 'GET'), 'image a')
    t.is(error.code, code, String(status))
    t.is(error.status, status)
    t.deepEqual(error.errors, [{code: 'X'}])
    t.is(error.request.method, 'GET')
  }
})

test('errorPhrase: the first error as CODE: message, capped; nothing without errors', (t) => {
  t.is(errorPhrase([{code: 'A', message: 'first'}, {code: 'B', message: 'second'}]), 'A: first')
  t.is(errorPhrase([{code: '', message: 'only a message'}]), 'only a message')
  t.is(errorPhrase([]), '')
  t.is(errorPhrase([{code: 'A', message: 'm'.repeat(500)}]).length, 200)
})

test('upload retry decision reads the status: 408, 429 and 5xx are transient whatever the message says', (t) => {
  for (const status of [408, 429, 500, 502, 503, 504]) t.true(isTransientRegistryError(new RegistryError('REGISTRY_ERROR', 'the registry is busy', fields(status))), String(status))
  for (const status of [400, 401, 403, 404, 405, 413]) t.false(isTransientRegistryError(new RegistryError('REGISTRY_ERROR', 'answered HTTP 503, rate-limit', fields(status))), String(status))
  // A message alone proves nothing: a non-registry error that reads like a 503 is not retried as one.
  t.false(isTransientRegistryError(new KubeferryError('REGISTRY_ERROR', 'registry r answered HTTP 503 for upload; kept rate-limiting')))
})

test('sparse-index fallback decision reads the status and codes, never the message', (t) => {
  // MANIFEST_BLOB_UNKNOWN in another wording (and second in the list), on a status other than 400.
  t.true(isRefusedIndex(new RegistryError('REGISTRY_ERROR', 'the registry did not take the index', {...fields(404), errors: [{code: 'UNKNOWN'}, {code: 'MANIFEST_BLOB_UNKNOWN', message: 'referenced manifest not found'}]})))
  for (const code of ['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'MANIFEST_INVALID', 'BLOB_UNKNOWN']) t.true(isRefusedIndex(new RegistryError('REGISTRY_ERROR', 'no', fields(422, [code]))), code)
  t.true(isRefusedIndex(new RegistryError('REGISTRY_ERROR', 'bad request', fields(400))), 'a bare 400')
  t.false(isRefusedIndex(new RegistryError('DENIED', 'denied', fields(403, ['DENIED']))))
  t.false(isRefusedIndex(new RegistryError('REGISTRY_ERROR', 'busy', fields(503, ['UNAVAILABLE']))))
  // The old message text, but not a registry's answer (no status, no codes): no fallback.
  t.false(isRefusedIndex(new KubeferryError('REGISTRY_ERROR', 'registry r answered HTTP 400 for manifest m (MANIFEST_BLOB_UNKNOWN: blob unknown to registry)')))
})

test('refusalReason: the first code the registry sent, else "refused"', (t) => {
  t.is(refusalReason(new RegistryError('REGISTRY_ERROR', 'x', fields(400, ['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN']))), 'MANIFEST_BLOB_UNKNOWN')
  t.is(refusalReason(new RegistryError('REGISTRY_ERROR', 'x', {...fields(400), errors: [{code: '', message: 'no code'}]})), 'refused')
  t.is(refusalReason(new RegistryError('REGISTRY_ERROR', 'x', fields(400))), 'refused')
})

test('mirror fallback keeps the registry error as data (status, codes) and names the other endpoints in the hint', async (t) => {
  const ref = parseReference('registry.test/k8s/pause:3.10')
  const mirrors = {'registry.test': ['http://mirror.test:5000']}
  const error = await t.throwsAsync(
    onPullEndpoints(ref, mirrors, () => {}, async (ep) => {
      if (ep.mirror) throw new RegistryError('NOT_FOUND', 'not on the mirror', fields(404, ['MANIFEST_UNKNOWN']), {hint: 'check the name'})
      throw new KubeferryError('NETWORK', 'cannot reach registry registry.test')
    }),
  )
  t.true(error instanceof RegistryError)
  const e = error as RegistryError
  t.is(e.status, 404)
  t.true(e.hasCode('MANIFEST_UNKNOWN'))
  t.is(e.message, 'not on the mirror')
  t.regex(e.hint ?? '', /^check the name; also tried registry\.test: unreachable$/)
})

test('uploadBlob through a registry: a 503 in any wording is retried, a 400 DIGEST_INVALID is not (and keeps its code)', async (t) => {
  const blob = Buffer.from('some layer bytes')
  const digest = sha256Digest(blob)
  let puts = 0
  let answer: 'busy-once' | 'invalid' = 'busy-once'
  const server = await startServer((req, res) => {
    if (req.method === 'POST') {
      res.writeHead(202, {location: `/v2/lib/app/blobs/uploads/u${server.requests.length}`, 'content-length': '0'})
      return res.end()
    }
    if (req.method === 'PUT') {
      puts++
      if (answer === 'invalid') return json(res, 400, {errors: [{code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content'}]})
      if (puts === 1) return json(res, 503, {errors: [{code: 'UNAVAILABLE', message: 'please come back later'}]})
      res.writeHead(201, {'docker-content-digest': digest, 'content-length': '0'})
      return res.end()
    }
    json(res, 404, {})
  })
  t.teardown(() => server.close())
  const client = new RegistryClient({credentials: anonymousCredentials, retry: {attempts: 3, baseDelayMs: 5, maxDelayMs: 10}})
  t.teardown(() => client.close())
  const repo = parseReference(`${server.host}/lib/app`)
  await client.uploadBlob(repo, {digest, size: blob.length}, async () => Readable.from([blob]))
  t.is(puts, 2, 'the 503 was retried')

  answer = 'invalid'
  puts = 0
  const error = await t.throwsAsync(client.uploadBlob(repo, {digest, size: blob.length}, async () => Readable.from([blob])))
  t.is(puts, 1, 'a 400 is not retried')
  t.true(error instanceof RegistryError)
  t.is((error as RegistryError).status, 400)
  t.true((error as RegistryError).hasCode('DIGEST_INVALID'))
  t.is((error as RegistryError).request.method, 'PUT')
  t.regex(error!.message, /answered HTTP 400 for upload of blob sha256:[0-9a-f]+ to .*lib\/app \(DIGEST_INVALID: provided digest did not match uploaded content\)$/)
})
