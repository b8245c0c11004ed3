/** The shared name rules (push writes these names, serve answers them) and the served-mirrors description for config. */
import test from 'ava'
import {isRepositoryPath, mapRepository, normalizePrefix, parseMapRule, targetRepositories} from '../../src/registry/names.js'
import {describeServedMirrors} from '../../src/serve/served-names.js'
import {parseRoute, parseRange} from '../../src/serve/routes.js'

const k8s = (repository: string) => ({registry: 'registry.k8s.io', repository})
const hub = (repository: string) => ({registry: 'docker.io', repository})

test('default rule keeps the upstream path under the prefix', (t) => {
  const table: Array<[ReturnType<typeof k8s>, string | undefined, string]> = [
    [k8s('pause'), 'k8s', 'k8s/pause'],
    [k8s('coredns/coredns'), 'k8s', 'k8s/coredns/coredns'],
    [hub('library/busybox'), 'k8s', 'k8s/library/busybox'],
    [k8s('pause'), undefined, 'pause'],
    [k8s('pause'), '/team/k8s/', 'team/k8s/pause'],
    [hub('library/busybox'), '', 'library/busybox'],
  ]
  for (const [source, prefix, expected] of table) t.is(mapRepository(source, {prefix}), expected, `${source.repository} under ${prefix}`)
})

test('flatten keeps the last component; maps rewrite exact names and path prefixes', (t) => {
  t.is(mapRepository(k8s('coredns/coredns'), {prefix: 'k8s', flatten: true}), 'k8s/coredns')
  t.is(mapRepository(hub('library/busybox'), {flatten: true}), 'busybox')
  const maps = [parseMapRule('registry.k8s.io/coredns/coredns=dns/coredns'), parseMapRule('docker.io/library=hub')]
  t.is(mapRepository(k8s('coredns/coredns'), {prefix: 'k8s', maps}), 'k8s/dns/coredns')
  t.is(mapRepository(hub('library/busybox'), {prefix: 'k8s', maps}), 'k8s/hub/busybox')
  t.is(mapRepository(k8s('pause'), {prefix: 'k8s', maps}), 'k8s/pause')
  // a path prefix matches at a / boundary only
  t.is(mapRepository(hub('library2/x'), {maps}), 'library2/x')
})

test('kubeadm CoreDNS alias: coredns/coredns is also placed at <prefix>/coredns unless disabled', (t) => {
  t.deepEqual(targetRepositories(k8s('coredns/coredns'), {prefix: 'k8s'}), ['k8s/coredns/coredns', 'k8s/coredns'])
  t.deepEqual(targetRepositories(k8s('coredns/coredns'), {}), ['coredns/coredns', 'coredns'])
  t.deepEqual(targetRepositories(k8s('coredns/coredns'), {prefix: 'k8s', corednsAlias: false}), ['k8s/coredns/coredns'])
  t.deepEqual(targetRepositories(k8s('coredns/coredns'), {prefix: 'k8s', flatten: true}), ['k8s/coredns'])
  t.deepEqual(targetRepositories(k8s('coredns'), {prefix: 'k8s'}), ['k8s/coredns'])
})

test('invalid prefixes and map rules are refused', (t) => {
  for (const bad of ['K8s', 'a b', 'a//b', '-x', 'x/../y']) t.throws(() => normalizePrefix(bad), {message: /invalid repository prefix/}, bad)
  for (const bad of ['nothing', '=x', 'a=', 'a=B']) t.throws(() => parseMapRule(bad), {message: /invalid name map/}, bad)
  t.true(isRepositoryPath('a/b-c/d.e__f'))
  t.false(isRepositoryPath('a/'))
})

test('served mirrors: one per upstream, containerd server URLs, override_path only with a prefix', (t) => {
  const images = [k8s('pause'), k8s('coredns/coredns'), hub('library/busybox')]
  const plain = describeServedMirrors(images, {url: 'http://10.0.0.5:5000/'})
  t.deepEqual(
    plain.map((m) => [m.upstream, m.server, m.host, m.overridePath]),
    [
      ['docker.io', 'https://registry-1.docker.io', 'http://10.0.0.5:5000', false],
      ['registry.k8s.io', 'https://registry.k8s.io', 'http://10.0.0.5:5000', false],
    ],
  )
  t.deepEqual(plain[1].repositories, ['coredns', 'coredns/coredns', 'pause'])
  const prefixed = describeServedMirrors(images, {url: 'https://mirror:5000', prefix: 'k8s'})
  t.is(prefixed[1].host, 'https://mirror:5000/v2/k8s')
  t.true(prefixed[1].overridePath)
  t.deepEqual(prefixed[0].repositories, ['k8s/library/busybox'])
})

test('routes: digests with an encoded colon are accepted; ns is kept', (t) => {
  const digest = `sha256:${'a'.repeat(64)}`
  t.deepEqual(parseRoute('GET', `/v2/coredns/coredns/manifests/${digest.replace(':', '%3A')}?ns=registry.k8s.io`), {kind: 'manifest', name: 'coredns/coredns', digest, ns: 'registry.k8s.io'})
  t.deepEqual(parseRoute('HEAD', `/v2/library/busybox/blobs/${digest}`), {kind: 'blob', name: 'library/busybox', digest})
  t.deepEqual(parseRoute('GET', '/v2/x/tags/list?n=5&last=a'), {kind: 'tags', name: 'x', n: 5, last: 'a'})
})

test('ranges: RFC forms, clipping, several ranges ignored, bad ones unsatisfiable', (t) => {
  t.deepEqual(parseRange('bytes=0-9', 100), {start: 0, end: 9})
  t.deepEqual(parseRange('bytes=90-200', 100), {start: 90, end: 99})
  t.deepEqual(parseRange('bytes=-10', 100), {start: 90, end: 99})
  t.is(parseRange(undefined, 100), undefined)
  t.is(parseRange('bytes=0-1,5-6', 100), undefined)
  for (const bad of ['bytes=100-', 'bytes=5-1', 'bytes=-0', 'bytes=', 'lines=1-2']) t.is(parseRange(bad, 100), 'unsatisfiable', bad)
  t.is(parseRange('bytes=0-', 0), 'unsatisfiable')
})
