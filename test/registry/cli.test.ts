/** The built CLI (`kubeferry resolve …`, see test/helpers/cli.ts) on bad input: one clear line on stderr, non-zero exit, no stack. */
import test from 'ava'
import {sha256Digest} from '../../src/oci/digest.js'
import {MediaType} from '../../src/oci/media-types.js'
import {runCli} from '../helpers/cli.js'
import {json, startServer} from './fake-server.js'

/** The CLI with an empty HOME: no docker or containers credentials of the machine take part. */
const run = (args: string[], options: {stdin?: string; env?: Record<string, string>} = {}) => runCli(args, {...options, privateHome: true})

/** One "error:" line, then at most its "  hint:" line; `pattern` is matched against both (as one line). */
function assertOneErrorLine(t: import('ava').ExecutionContext, stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split('\n')
  t.true(lines.length === 1 || (lines.length === 2 && lines[1].startsWith('  hint: ')), stderr)
  t.regex(lines[0], /^error: /)
  t.regex(lines.join(' '), pattern)
  t.notRegex(stderr, /\n\s+at /)
}

const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{mediaType: MediaType.OciManifest, digest: `sha256:${'b'.repeat(64)}`, size: 10, platform: {os: 'linux', architecture: 'arm64', variant: 'v8'}}, {mediaType: MediaType.OciManifest, digest: `sha256:${'c'.repeat(64)}`, size: 10, platform: {os: 'linux', architecture: 'amd64'}}]}))

/** Like distribution: known tag "1", unknown tags 404 MANIFEST_UNKNOWN; optional Basic auth. */
async function registry(auth?: {user: string; pass: string}) {
  return startServer((req, res) => {
    if (auth && req.headers.authorization !== `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString('base64')}`) {
      return json(res, 401, {errors: [{code: 'UNAUTHORIZED', message: 'authentication required'}]}, {'www-authenticate': 'Basic realm="Registry Realm"'})
    }
    if (req.url === '/v2/lib/app/manifests/1') {
      res.writeHead(200, {'content-type': MediaType.OciIndex, 'docker-content-digest': sha256Digest(manifest)})
      return res.end(manifest)
    }
    json(res, 404, {errors: [{code: 'MANIFEST_UNKNOWN', message: 'manifest unknown'}]})
  })
}

test('malformed reference', async (t) => {
  const r = await run(['resolve', 'Registry.Example/UPPER::x'])
  t.not(r.code, 0)
  assertOneErrorLine(t, r.stderr, /invalid image reference/)
})

test('unknown host names the registry and the mirror option', async (t) => {
  const r = await run(['resolve', 'kubeferry-nohost.invalid/pause:3.10'])
  t.not(r.code, 0)
  assertOneErrorLine(t, r.stderr, /kubeferry-nohost\.invalid.*unknown host.*--mirror/)
})

test('missing tag, and the good reference beside it still resolves', async (t) => {
  const server = await registry()
  t.teardown(() => server.close())
  const r = await run(['resolve', `${server.host}/lib/app:nope`, `${server.host}/lib/app:1`])
  t.is(r.code, 1)
  assertOneErrorLine(t, r.stderr, /lib\/app:nope: image .* not found in registry .*tag missing/)
  t.regex(r.stdout, new RegExp(sha256Digest(manifest)))
  t.regex(r.stdout, /platforms: +linux\/arm64, linux\/amd64/)
})

test('--json gives an array with results and errors, --platform filters', async (t) => {
  const server = await registry()
  t.teardown(() => server.close())
  const r = await run(['resolve', `${server.host}/lib/app:1`, `${server.host}/lib/app:nope`, '--platform', 'linux/arm64', '--json'])
  t.is(r.code, 1)
  const out = JSON.parse(r.stdout) as Array<Record<string, unknown>>
  t.is(out.length, 2)
  t.like(out[0], {reference: `${server.host}/lib/app:1`, digest: sha256Digest(manifest), mediaType: MediaType.OciIndex, size: manifest.length, platforms: ['linux/arm64']})
  t.like(out[1], {reference: `${server.host}/lib/app:nope`, error: {code: 'NOT_FOUND'}})
})

test('wrong password: says which user the registry refused (not "requires authentication"), exit non-zero, the password never printed', async (t) => {
  const server = await registry({user: 'dave', pass: 'correct-horse'})
  t.teardown(() => server.close())
  const bad = await run(['resolve', `${server.host}/lib/app:1`, '--username', 'dave', '--password-stdin', '--debug'], {stdin: 'Wr0ng-Battery-Staple\n'})
  t.not(bad.code, 0)
  t.regex(bad.stderr, new RegExp(`^error: .*registry ${server.host.replace(/\./g, '\\.')} refused user "dave" .*wrong user name or password`, 'm'))
  t.regex(bad.stderr, /^ {2}hint: check the password of dave for .*(--password-stdin|docker login)/m)
  t.notRegex(bad.stderr, /\n\s+at /)
  for (const secret of ['Wr0ng-Battery-Staple', Buffer.from('dave:Wr0ng-Battery-Staple').toString('base64')]) {
    t.false(bad.stderr.includes(secret) || bad.stdout.includes(secret))
  }
  const good = await run(['resolve', `${server.host}/lib/app:1`, '--username', 'dave', '--password-stdin'], {stdin: 'correct-horse\n'})
  t.is(good.code, 0, good.stderr)
})

test('bad flags are one line too', async (t) => {
  const r = await run(['resolve', 'x', '--mirror', 'not-a-pair'])
  t.not(r.code, 0)
  t.regex(r.stderr, /^error: invalid --mirror "not-a-pair"/)
  t.notRegex(r.stderr, /\n\s+at /)
})

// Loading undici sets a V8 flag (--liftoff-only, src/registry/undici-agent.ts): an unknown or misspelt flag makes V8
// print "Error: unrecognized flag" on stderr, which this catches, at start-up and once a request was made.
test('start-up prints nothing but the version, a request nothing on stderr: no V8 flag error', async (t) => {
  const result = await run(['--version'])
  t.is(result.code, 0)
  t.regex(result.stdout, /^kubeferry\/\d+\.\d+\.\d+ /)
  t.is(result.stderr, '')
  const server = await registry()
  t.teardown(() => server.close())
  const resolved = await run(['resolve', `${server.host}/lib/app:1`])
  t.is(resolved.code, 0, resolved.stderr)
  t.is(resolved.stderr, '')
})

test('--debug (or KUBEFERRY_DEBUG=1) prints each HTTP exchange on a timeline: seconds since start, status, milliseconds', async (t) => {
  const server = await registry()
  t.teardown(() => server.close())
  for (const [args, env] of [[['--debug'], {}], [[], {KUBEFERRY_DEBUG: '1'}]] as const) {
    const r = await run(['resolve', `${server.host}/lib/app:1`, ...args], {env})
    t.is(r.code, 0, r.stderr)
    t.regex(r.stderr, new RegExp(`^debug: \\[\\d+\\.\\d{3}s\\] GET http://${server.host.replace(/\./g, '\\.')}/v2/lib/app/manifests/1 -> 200 \\(\\d+ ms\\)$`, 'm'), `${args.join(' ')} ${JSON.stringify(env)}`)
  }
  const quiet = await run(['resolve', `${server.host}/lib/app:1`])
  t.notRegex(quiet.stderr, /debug:/)
})
