/** Table-driven tests of reference parsing: docker's normalisation rules (distribution/reference ParseNormalizedNamed). */
import test from 'ava'
import {KubeferryError} from '../../src/oci/errors.js'
import {apiHost, familiarReference, formatReference, parseReference, referenceTarget, repositoryName} from '../../src/oci/reference.js'

const D = `sha256:${'0123456789abcdef'.repeat(4)}`

const valid: Array<[input: string, canonical: string, familiar: string]> = [
  ['pause', 'docker.io/library/pause:latest', 'pause:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['rancher/pause:3.6', 'docker.io/rancher/pause:3.6', 'rancher/pause:3.6'],
  ['docker.io/nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  ['docker.io/library/nginx:1.27', 'docker.io/library/nginx:1.27', 'nginx:1.27'],
  ['index.docker.io/nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  ['index.docker.io/library/nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  // registry-1.docker.io is Docker Hub's API host, but docker does not rewrite it as a name.
  ['registry-1.docker.io/library/nginx', 'registry-1.docker.io/library/nginx:latest', 'registry-1.docker.io/library/nginx:latest'],
  ['registry.k8s.io/pause:3.10', 'registry.k8s.io/pause:3.10', 'registry.k8s.io/pause:3.10'],
  ['registry.k8s.io/coredns/coredns:v1.11.3', 'registry.k8s.io/coredns/coredns:v1.11.3', 'registry.k8s.io/coredns/coredns:v1.11.3'],
  ['k8s.gcr.io/kube-apiserver-amd64:v1.11.0', 'k8s.gcr.io/kube-apiserver-amd64:v1.11.0', 'k8s.gcr.io/kube-apiserver-amd64:v1.11.0'],
  ['localhost/foo', 'localhost/foo:latest', 'localhost/foo:latest'],
  ['localhost:5000/foo/bar:tag', 'localhost:5000/foo/bar:tag', 'localhost:5000/foo/bar:tag'],
  ['127.0.0.1:5000/pause:3.10', '127.0.0.1:5000/pause:3.10', '127.0.0.1:5000/pause:3.10'],
  ['[::1]:5000/pause:3.10', '[::1]:5000/pause:3.10', '[::1]:5000/pause:3.10'],
  ['Registry.Example.com/app:1', 'Registry.Example.com/app:1', 'Registry.Example.com/app:1'],
  ['foo_bar/baz__qux/a-b.c', 'docker.io/foo_bar/baz__qux/a-b.c:latest', 'foo_bar/baz__qux/a-b.c:latest'],
  ['a---b/c', 'docker.io/a---b/c:latest', 'a---b/c:latest'],
  ['my.reg:443/team/app:V1_2.3-rc', 'my.reg:443/team/app:V1_2.3-rc', 'my.reg:443/team/app:V1_2.3-rc'],
  [`pause@${D}`, `docker.io/library/pause@${D}`, `pause@${D}`],
  [`registry.k8s.io/pause:3.10@${D}`, `registry.k8s.io/pause:3.10@${D}`, `registry.k8s.io/pause:3.10@${D}`],
  ['  registry.k8s.io/pause:3.10  ', 'registry.k8s.io/pause:3.10', 'registry.k8s.io/pause:3.10'],
  [`x:${'t'.repeat(128)}`, `docker.io/library/x:${'t'.repeat(128)}`, `x:${'t'.repeat(128)}`],
]

for (const [input, canonical, familiar] of valid) {
  test(`parses ${JSON.stringify(input)}`, (t) => {
    const ref = parseReference(input)
    t.is(formatReference(ref), canonical)
    t.is(familiarReference(ref), familiar)
    // Canonical form is a fixed point.
    t.deepEqual(parseReference(formatReference(ref)), ref)
  })
}

const invalid: Array<[input: string, reason: RegExp]> = [
  ['', /empty/],
  ['   ', /empty/],
  ['a b', /whitespace/],
  ['UPPER', /lowercase/],
  ['docker.io/Library/nginx', /lowercase/],
  ['pause:', /invalid tag/],
  ['pause:-x', /invalid tag/],
  ['pause:.x', /invalid tag/],
  [`x:${'t'.repeat(129)}`, /invalid tag/],
  ['pause@sha256:abc', /64 lowercase hex/],
  [`pause@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
  [`pause@sha512:${'a'.repeat(128)}`, /only sha256/],
  ['a//b', /path component/],
  ['a/b/', /path component/],
  ['-a/b', /path component/],
  ['a/_b', /path component/],
  ['a/b_', /path component/],
  ['a/b...c', /path component/],
  [':tag', /missing repository/],
  ['reg.io:/x', /registry host/],
  ['reg.io:port/x', /registry host/],
  ['-reg.io/x', /registry host/],
  ['bad::ref', /invalid/],
  ['0123456789abcdef'.repeat(4), /64-character hexadecimal/],
  [`r.io/${'a'.repeat(256)}`, /longer than 255/],
]

for (const [input, reason] of invalid) {
  test(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, (t) => {
    const error = t.throws(() => parseReference(input), {instanceOf: KubeferryError})
    t.is(error?.code, 'INVALID_REFERENCE')
    t.regex(error?.message ?? '', reason)
    t.truthy(error?.hint)
  })
}

test('helpers: defaultTag, target, repository name, API host', (t) => {
  t.is(parseReference('pause', {defaultTag: false}).tag, undefined)
  t.is(referenceTarget(parseReference('pause:3.10')), '3.10')
  t.is(referenceTarget(parseReference(`pause:3.10@${D}`)), D)
  t.is(repositoryName(parseReference('coredns/coredns:v1')), 'docker.io/coredns/coredns')
  t.is(apiHost('docker.io'), 'registry-1.docker.io')
  t.is(apiHost('registry.k8s.io'), 'registry.k8s.io')
})
