import test from 'ava'
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {KubeferryError} from '../../src/oci/errors.js'
import {MediaType} from '../../src/oci/media-types.js'
import {anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {parseReference} from '../../src/oci/reference.js'

const dir = mkdtempSync(join(tmpdir(), 'kf-tls-'))
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {stdio: 'ignore'})
const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciManifest, config: {mediaType: MediaType.OciConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2}, layers: []}))
const server = createServer({key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem'))}, (_req, res) => {
  res.writeHead(200, {'content-type': MediaType.OciManifest})
  res.end(manifest)
})
let host = ''
test.before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`
})
test.after.always(() => {
  server.closeAllConnections()
  server.close()
  rmSync(dir, {recursive: true, force: true})
})

test('TLS is verified by default, even on loopback: a self-signed registry is refused with a hint', async (t) => {
  const client = new RegistryClient({credentials: anonymousCredentials, retry: {attempts: 1}})
  t.teardown(() => client.close())
  const error = await t.throwsAsync(client.getManifest(parseReference(`${host}/lib/app:1`)), {instanceOf: KubeferryError})
  t.is(error?.code, 'TLS')
  t.regex(error?.message ?? '', /TLS verification failed for 127\.0\.0\.1:\d+ \(DEPTH_ZERO_SELF_SIGNED_CERT\)/)
  t.regex(error?.hint ?? '', /--ca-file.*--insecure-registry/)
})

test('--ca-file makes the registry trusted', async (t) => {
  const client = new RegistryClient({credentials: anonymousCredentials, caFile: join(dir, 'cert.pem'), retry: {attempts: 1}})
  t.teardown(() => client.close())
  t.is((await client.getManifest(parseReference(`${host}/lib/app:1`))).kind, 'manifest')
})

test('--insecure-registry for that host skips verification', async (t) => {
  const client = new RegistryClient({credentials: anonymousCredentials, insecureRegistries: [host], retry: {attempts: 1}})
  t.teardown(() => client.close())
  t.is((await client.getManifest(parseReference(`${host}/lib/app:1`))).kind, 'manifest')
})

test('an unreadable --ca-file is a clear error', (t) => {
  const error = t.throws(() => new RegistryClient({caFile: join(dir, 'missing.pem')}), {instanceOf: KubeferryError})
  t.regex(error?.message ?? '', /cannot read --ca-file .*missing\.pem: ENOENT/)
  const notPem = t.throws(() => new RegistryClient({caFile: join(dir, 'key.pem')}), {instanceOf: KubeferryError})
  t.regex(notPem?.message ?? '', /holds no PEM certificate/)
})
