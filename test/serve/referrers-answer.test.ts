/**
 * serve's referrers API answer for large lists (serve/artifacts.ts): one page holding every referrer recorded for the
 * subject, each once and in the order recorded, filtered by artifactType when asked; the bundle bounds the list (create
 * keeps at most REFERRER_LIMITS.descriptors per digest), so serve sends no Link header and a client reads it in one
 * page within its own bounds.
 */
import test from 'ava'
import {addReferrer, referrersAnswer, type HasReferrers} from '../../src/serve/artifacts.js'
import {REFERRER_LIMITS} from '../../src/registry/referrers.js'
import type {Digest} from '../../src/oci/digest.js'

const subject = `sha256:${'a'.repeat(64)}` as Digest
const desc = (n: number, artifactType = n % 2 ? 'application/spdx+json' : 'application/vnd.dev.cosign.artifact.sig.v1+json') => ({mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${n.toString(16).padStart(64, '0')}` as Digest, size: n + 1, artifactType})

test('a list as long as create may carry: every referrer once, in order, filter applied, no Link header, within a client page', (t) => {
  const repo: HasReferrers = {}
  for (let n = 0; n < REFERRER_LIMITS.descriptors; n++) addReferrer(repo, subject, desc(n))
  for (let n = 0; n < 50; n++) addReferrer(repo, subject, desc(n)) // the same referrer from a second bundle: once
  const all = referrersAnswer(repo, subject)
  const manifests = (all.body as {manifests: Array<{digest: string}>}).manifests
  t.is(manifests.length, REFERRER_LIMITS.descriptors)
  t.deepEqual(manifests.slice(0, 3).map((m) => m.digest), [0, 1, 2].map((n) => desc(n).digest))
  t.false(Object.keys(all.headers).some((h) => h.toLowerCase() === 'link'))
  t.true(Buffer.byteLength(JSON.stringify(all.body)) < 4 * 1024 * 1024, 'fits the 4 MiB a client reads per page')
  const sboms = referrersAnswer(repo, subject, 'application/spdx+json')
  t.is((sboms.body as {manifests: unknown[]}).manifests.length, REFERRER_LIMITS.descriptors / 2)
  t.is(sboms.headers['OCI-Filters-Applied'], 'artifactType')
  t.deepEqual((referrersAnswer(repo, `sha256:${'b'.repeat(64)}` as Digest).body as {manifests: unknown[]}).manifests, [])
})
