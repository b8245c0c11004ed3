/** Destination parsing and the push name plan (rules themselves are shared with serve: src/serve/names.ts). */
import test from 'ava'
import {isKubeferryError} from '../../src/oci/errors.js'
import {nameRulesFrom, parseDestination, planNames, targetRepositories} from '../../src/registry/rename.js'

test('parseDestination: host[:port] then an optional prefix', (t) => {
  t.deepEqual(parseDestination('registry.corp:5000/k8s'), {registry: 'registry.corp:5000', prefix: 'k8s'})
  t.deepEqual(parseDestination('https://Registry.Corp/team/k8s/'.replace(/\/$/, '')), {registry: 'registry.corp', prefix: 'team/k8s'})
  t.deepEqual(parseDestination('localhost:5000'), {registry: 'localhost:5000', prefix: ''})
  t.deepEqual(parseDestination('127.0.0.1:5000/a_b/c-d'), {registry: '127.0.0.1:5000', prefix: 'a_b/c-d'})
  for (const bad of ['', 'k8s/pause', 'registry.corp/K8s', 'registry.corp//k8s', 'registry.corp/k8s/', 'registry.corp/-k8s', 'registry.corp/k8s:1', 'docker.io/me', 'reg istry.corp/x', 'registry.corp:port/x']) {
    const error = t.throws(() => parseDestination(bad), undefined, bad)
    t.true(isKubeferryError(error), bad)
    t.regex(error!.message, /^invalid registry/, bad)
  }
})

test('default rules keep the upstream path under the prefix; CoreDNS gets kubeadm\'s alias', (t) => {
  const rules = nameRulesFrom(parseDestination('r.corp/k8s'), {})
  t.deepEqual(targetRepositories({registry: 'registry.k8s.io', repository: 'pause'}, rules), ['k8s/pause'])
  t.deepEqual(targetRepositories({registry: 'docker.io', repository: 'library/busybox'}, rules), ['k8s/library/busybox'])
  t.deepEqual(targetRepositories({registry: 'registry.k8s.io', repository: 'coredns/coredns'}, rules), ['k8s/coredns/coredns', 'k8s/coredns'])
  const noAlias = nameRulesFrom(parseDestination('r.corp/k8s'), {'no-coredns-alias': true})
  t.deepEqual(targetRepositories({registry: 'registry.k8s.io', repository: 'coredns/coredns'}, noAlias), ['k8s/coredns/coredns'])
  const flat = nameRulesFrom(parseDestination('r.corp/k8s'), {flatten: true})
  t.deepEqual(targetRepositories({registry: 'registry.k8s.io', repository: 'coredns/coredns'}, flat), ['k8s/coredns'])
  const mapped = nameRulesFrom(parseDestination('r.corp'), {map: ['busybox=tools/busybox', 'quay.io/org=third/org']})
  t.deepEqual(targetRepositories({registry: 'docker.io', repository: 'library/busybox'}, mapped), ['tools/busybox'])
  t.deepEqual(targetRepositories({registry: 'quay.io', repository: 'org/app'}, mapped), ['third/org/app'])
})

test('planNames refuses two images landing on the same name and tag', (t) => {
  const images = [
    {registry: 'docker.io', repository: 'a/app', tag: 'v1', name: 'docker.io/a/app:v1', digest: 'sha256:1'},
    {registry: 'quay.io', repository: 'b/app', tag: 'v1', name: 'quay.io/b/app:v1', digest: 'sha256:2'},
  ]
  t.notThrows(() => planNames(images, nameRulesFrom(parseDestination('r.corp'), {})))
  const error = t.throws(() => planNames(images, nameRulesFrom(parseDestination('r.corp'), {flatten: true})))
  t.regex(error!.message, /docker\.io\/a\/app:v1 and quay\.io\/b\/app:v1 would both be pushed as app:v1/)
  // The same digest under two names is fine (nothing is lost).
  t.notThrows(() => planNames([images[0], {...images[1], digest: 'sha256:1'}], nameRulesFrom(parseDestination('r.corp'), {flatten: true})))
})
