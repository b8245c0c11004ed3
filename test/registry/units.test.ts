import test from 'ava'
import {KubeferryError} from '../../src/oci/errors.js'
import {parseChallenges, pickChallenge} from '../../src/registry/auth/challenge.js'
import {nextLink} from '../../src/registry/client.js'
import {parseMirror, pullEndpoints} from '../../src/registry/mirrors.js'
import {backoffDelay, isRetryableStatus, parseRetryAfter, retryPolicy} from '../../src/registry/retry.js'
import {InsecurePolicy} from '../../src/registry/tls.js'
import {parseMirrorFlags} from '../../src/cli/registry-flags.js'

test('WWW-Authenticate: Bearer with quoted params, several challenges, escapes', (t) => {
  const [c] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/pause:pull,push"')
  t.deepEqual(c, {scheme: 'bearer', params: {realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/pause:pull,push'}})
  const two = parseChallenges('Basic realm="a, b", Bearer realm="https://x/t",error="invalid_token"')
  t.is(two.length, 2)
  t.is(two[0].params.realm, 'a, b')
  t.is(pickChallenge(two)?.scheme, 'bearer')
  t.is(parseChallenges('Basic realm="say \\"hi\\""')[0].params.realm, 'say "hi"')
  t.is(parseChallenges('bearer realm=https://x/t, service=s')[0].params.service, 's')
  t.deepEqual(parseChallenges(undefined), [])
})

test('Retry-After: seconds, HTTP date, garbage; backoff stays within bounds', (t) => {
  t.is(parseRetryAfter('3'), 3000)
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')
  t.is(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', now), 5000)
  t.is(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now), 0)
  t.is(parseRetryAfter('soon'), undefined)
  t.is(parseRetryAfter(undefined), undefined)
  const p = retryPolicy({baseDelayMs: 100, maxDelayMs: 1000})
  for (let attempt = 1; attempt < 10; attempt++) {
    const d = backoffDelay(p, attempt)
    const window = Math.min(1000, 100 * 2 ** (attempt - 1))
    t.true(d >= window / 2 && d <= window, `attempt ${attempt}: ${d}`)
  }
  t.is(backoffDelay(p, 1, 7000), 7000)
  t.is(backoffDelay(p, 1, 3_600_000), 60_000)
  t.true(isRetryableStatus(429) && isRetryableStatus(408) && isRetryableStatus(503))
  t.false(isRetryableStatus(404) || isRetryableStatus(401) || isRetryableStatus(501))
})

test('Link next: relative and absolute', (t) => {
  const base = new URL('https://r.io/v2/a/tags/list')
  t.is(nextLink('</v2/a/tags/list?last=x&n=2>; rel="next"', base)?.href, 'https://r.io/v2/a/tags/list?last=x&n=2')
  t.is(nextLink('<https://o.io/p?q=1>; rel=next', base)?.href, 'https://o.io/p?q=1')
  t.is(nextLink('</x>; rel="prev"', base), undefined)
  t.is(nextLink(undefined, base), undefined)
})

test('mirrors: scheme, prefix, order, validation', (t) => {
  t.like(parseMirror('registry.k8s.io', 'http://127.0.0.1:5000'), {host: '127.0.0.1:5000', scheme: 'http', prefix: '', mirror: true})
  t.like(parseMirror('registry.k8s.io', 'mirror.corp:5000/k8s/'), {host: 'mirror.corp:5000', scheme: undefined, prefix: 'k8s'})
  t.throws(() => parseMirror('r', 'ftp://x'), {instanceOf: KubeferryError})
  t.throws(() => parseMirror('r', 'https://u:p@x'), {message: /must not contain credentials/})
  t.deepEqual(pullEndpoints('docker.io', {'docker.io': ['http://a:1', 'http://b:2']}).map((e) => e.host), ['a:1', 'b:2', 'registry-1.docker.io'])
  t.deepEqual(parseMirrorFlags(['registry.k8s.io=http://a:1', 'index.docker.io=http://b', 'registry.k8s.io=http://c']), {'registry.k8s.io': ['http://a:1', 'http://c'], 'docker.io': ['http://b']})
  t.throws(() => parseMirrorFlags(['http://a:1']), {message: /invalid --mirror/})
})

test('insecure policy: only named hosts and loopback', (t) => {
  const p = new InsecurePolicy(['reg.corp:5000', 'other.corp'])
  t.true(p.allows('reg.corp:5000'))
  t.false(p.allows('reg.corp'))
  t.true(p.allows('other.corp:443'))
  t.true(p.allows('127.0.0.1:5000') && p.allows('localhost') && p.allows('[::1]:5000'))
  t.false(p.allows('registry.k8s.io') || p.allows('128.0.0.1:5000'))
})
