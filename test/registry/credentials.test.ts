import test from 'ava'
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {defaultCredentialProvider} from '../../src/registry/auth/credentials.js'
import {MediaType} from '../../src/oci/media-types.js'
import {RegistryClient} from '../../src/registry/client.js'
import {parseReference} from '../../src/oci/reference.js'
import {startServer} from './fake-server.js'

/** A temp DOCKER_CONFIG dir with `config` and fake helpers on a private PATH entry. */
async function setup(config: unknown, extraFiles: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'kf-creds-'))
  const bin = join(dir, 'bin')
  const asked = join(dir, 'asked.log')
  await writeFile(join(dir, 'config.json'), JSON.stringify(config))
  const {mkdir} = await import('node:fs/promises')
  await mkdir(bin)
  // docker-credential-fake: answers for the host in $FAKE_HOST, records every host it was asked about.
  await writeFile(
    join(bin, 'docker-credential-fake'),
    `#!/bin/sh
[ "$1" = get ] || exit 2
read -r host || true
echo "$host" >> "${asked}"
if [ "$host" = "$FAKE_HOST" ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$host" "$FAKE_USER" "$FAKE_SECRET"
else
  echo "credentials not found in native keychain"
  exit 1
fi
`,
  )
  await writeFile(join(bin, 'docker-credential-broken'), '#!/bin/sh\necho "segfault, secret=never-show-me" >&2\nexit 3\n')
  await chmod(join(bin, 'docker-credential-fake'), 0o755)
  await chmod(join(bin, 'docker-credential-broken'), 0o755)
  for (const [name, text] of Object.entries(extraFiles)) await writeFile(join(dir, name), text)
  const env = {PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: dir, HOME: dir, FAKE_USER: 'carol', FAKE_SECRET: 'helper-Secret-77'}
  return {dir, env, asked: () => readFile(asked, 'utf8').catch(() => ''), cleanup: () => rm(dir, {recursive: true, force: true})}
}

/** A registry that wants Basic carol:helper-Secret-77 (or nothing when open). */
async function basicRegistry(open = false) {
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciManifest, config: {mediaType: MediaType.OciConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2}, layers: []}))
  return startServer((req, res) => {
    if (!open && req.headers.authorization !== `Basic ${Buffer.from('carol:helper-Secret-77').toString('base64')}`) {
      res.writeHead(401, {'www-authenticate': 'Basic realm="x"', 'content-type': 'application/json'})
      return res.end('{"errors":[{"code":"UNAUTHORIZED"}]}')
    }
    res.writeHead(200, {'content-type': MediaType.OciManifest})
    res.end(manifest)
  })
}

test('credsStore: the docker-credential-fake helper on PATH is asked for the host and its credentials are used', async (t) => {
  const server = await basicRegistry()
  const s = await setup({credsStore: 'fake'})
  t.teardown(async () => {
    await server.close()
    await s.cleanup()
  })
  const logs: string[] = []
  const log = (l: string, m: string) => logs.push(`${l} ${m}`)
  const client = new RegistryClient({credentials: defaultCredentialProvider({env: {...s.env, FAKE_HOST: server.host}, log}), retry: {attempts: 1}, log})
  t.teardown(() => client.close())
  const got = await client.getManifest(parseReference(`${server.host}/lib/app:1`))
  t.is(got.kind, 'manifest')
  t.is((await s.asked()).trim(), server.host)
  t.false(logs.join('\n').includes('helper-Secret-77'))
})

test('credHelpers for the host beats credsStore', async (t) => {
  const server = await basicRegistry()
  const s = await setup({credsStore: 'broken', credHelpers: {'127.0.0.1': 'nope'}})
  await writeFile(join(s.dir, 'config.json'), JSON.stringify({credsStore: 'broken', credHelpers: {[server.host]: 'fake'}}))
  t.teardown(async () => {
    await server.close()
    await s.cleanup()
  })
  const warnings: string[] = []
  const provider = defaultCredentialProvider({env: {...s.env, FAKE_HOST: server.host}, log: (l, m) => l === 'warn' && warnings.push(m)})
  t.deepEqual(await provider.get(server.host), {username: 'carol', password: 'helper-Secret-77'})
  t.deepEqual(warnings, [])
})

test('a missing helper warns and the pull goes on anonymously', async (t) => {
  // Like Docker Hub for public images: a Bearer challenge whose token service also serves anonymous users.
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciManifest, config: {mediaType: MediaType.OciConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2}, layers: []}))
  const server = await startServer((req, res) => {
    if (req.url?.startsWith('/token')) {
      res.writeHead(200, {'content-type': 'application/json'})
      return res.end(JSON.stringify({token: req.headers.authorization ? 'with-creds' : 'anonymous'}))
    }
    if (req.headers.authorization !== 'Bearer anonymous') {
      res.writeHead(401, {'www-authenticate': `Bearer realm="${server.url}/token",service="s"`})
      return res.end()
    }
    res.writeHead(200, {'content-type': MediaType.OciManifest})
    res.end(manifest)
  })
  const s = await setup({credsStore: 'nonexistent'})
  t.teardown(async () => {
    await server.close()
    await s.cleanup()
  })
  const warnings: string[] = []
  const log = (l: string, m: string) => l === 'warn' && warnings.push(m)
  const client = new RegistryClient({credentials: defaultCredentialProvider({env: s.env, log}), retry: {attempts: 1}, log})
  t.teardown(() => client.close())
  t.is((await client.getManifest(parseReference(`${server.host}/lib/app:1`))).kind, 'manifest')
  t.is(warnings.length, 1)
  t.regex(warnings[0], /docker-credential-nonexistent is not installed.*anonymously/)
})

test('a failing helper warns (without echoing its output) and yields no credentials', async (t) => {
  const s = await setup({credsStore: 'broken'})
  t.teardown(() => s.cleanup())
  const warnings: string[] = []
  const provider = defaultCredentialProvider({env: s.env, log: (l, m) => l === 'warn' && warnings.push(m)})
  t.is(await provider.get('registry.example.com'), undefined)
  t.is(warnings.length, 1)
  t.regex(warnings[0], /docker-credential-broken exited with status 3/)
  t.false(warnings[0].includes('never-show-me'))
})

test('a helper answering Username <token> gives an identity token', async (t) => {
  const s = await setup({credHelpers: {'reg.example.com:5000': 'fake'}})
  t.teardown(() => s.cleanup())
  const provider = defaultCredentialProvider({env: {...s.env, FAKE_HOST: 'reg.example.com:5000', FAKE_USER: '<token>', FAKE_SECRET: 'idtok'}})
  t.deepEqual(await provider.get('reg.example.com:5000'), {identityToken: 'idtok'})
})

test('auths entries: base64 auth, identitytoken, Docker Hub URL keys', async (t) => {
  const s = await setup({
    auths: {
      'https://index.docker.io/v1/': {auth: Buffer.from('hubuser:hubpass').toString('base64')},
      'https://reg.example.com': {auth: Buffer.from('u:p:with:colons').toString('base64')},
      'id.example.com': {identitytoken: 'refresh-xyz'},
    },
  })
  t.teardown(() => s.cleanup())
  const provider = defaultCredentialProvider({env: s.env})
  t.deepEqual(await provider.get('registry-1.docker.io'), {username: 'hubuser', password: 'hubpass'})
  t.deepEqual(await provider.get('docker.io'), {username: 'hubuser', password: 'hubpass'})
  t.deepEqual(await provider.get('reg.example.com'), {username: 'u', password: 'p:with:colons'})
  t.deepEqual(await provider.get('id.example.com'), {identityToken: 'refresh-xyz'})
  t.is(await provider.get('other.example.com'), undefined)
})

test('containers auth.json (REGISTRY_AUTH_FILE) is read after docker config; explicit flags win', async (t) => {
  const s = await setup({auths: {}}, {'auth.json': JSON.stringify({auths: {'quay.example.com': {auth: Buffer.from('pod:man').toString('base64')}}})})
  t.teardown(() => s.cleanup())
  const env = {...s.env, REGISTRY_AUTH_FILE: join(s.dir, 'auth.json')}
  t.deepEqual(await defaultCredentialProvider({env}).get('quay.example.com'), {username: 'pod', password: 'man'})
  const explicit = defaultCredentialProvider({env, explicit: {registry: 'quay.example.com', username: 'flag', password: 'fromstdin'}})
  t.deepEqual(await explicit.get('quay.example.com'), {username: 'flag', password: 'fromstdin'})
  t.is(await explicit.get('elsewhere.example.com'), undefined)
})

test('a malformed config.json is a warning, not a failure', async (t) => {
  const s = await setup({})
  await writeFile(join(s.dir, 'config.json'), '{not json')
  t.teardown(() => s.cleanup())
  const warnings: string[] = []
  t.is(await defaultCredentialProvider({env: s.env, log: (l, m) => l === 'warn' && warnings.push(m)}).get('x.example.com'), undefined)
  t.regex(warnings.join(), /not valid JSON/)
})
