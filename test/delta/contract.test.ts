/**
 * The bundle contract for deltas (contract.ts `reliedOn`, the one place that says which entries a delta has): its
 * relied-on layers are not entries, not in install.sh's entry list nor its blob lines (they are `relies` lines
 * instead, with docker's ChainID), while everything else a full bundle of the same metadata has is there.
 */
import {createHash} from 'node:crypto'
import test from 'ava'
import {blobsOf, bundleEntries, reliedOn} from '../../src/bundle/contract.js'
import {chainIds, isLayerMediaType} from '../../src/bundle/delta.js'
import {planImport, renderPlanData} from '../../src/bundle/import-plan.js'
import {expectedEntries, renderInstallScript} from '../../src/bundle/install-script.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import type {Digest} from '../../src/oci/digest.js'

const d = (c: string): Digest => `sha256:${c.repeat(64)}`
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'

function metadata(delta: boolean): BundleMetadata {
  const image = {
    name: 'registry.k8s.io/kube-proxy:v1.31.6', registry: 'registry.k8s.io', repository: 'kube-proxy', tag: 'v1.31.6',
    digest: d('a'), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 400, sparse: false,
    platforms: [{platform: 'linux/amd64', digest: d('a'), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 400,
      config: {digest: d('b'), size: 300, mediaType: 'application/vnd.oci.image.config.v1+json'},
      layers: [{digest: d('c'), size: 5000, mediaType: LAYER}, {digest: d('e'), size: 700, mediaType: LAYER}]}],
  }
  const relies = [{digest: d('c'), size: 5000, mediaType: LAYER, usedBy: [{image: image.name, platform: 'linux/amd64', chainId: d('f')}]}]
  return {
    schemaVersion: 1, tool: {name: 'kubeferry', version: '0.1.0'}, request: {platforms: ['linux/amd64']}, platforms: ['linux/amd64'], dockerPlatform: 'linux/amd64',
    images: [image], blobs: delta ? {count: 3, totalSize: 1400} : {count: 4, totalSize: 6400},
    ...(delta ? {delta: {base: {kind: 'bundle', name: 'v0.tar'}, for: ['push', 'load'], savedBytes: 5000, relies}} : {}),
  } as BundleMetadata
}

test('a delta\'s entries are the full bundle\'s less its relied-on layers; install.sh lists the same and checks them as `relies`', (t) => {
  const full = metadata(false)
  const delta = metadata(true)
  const blobs = [d('a'), d('b'), d('c'), d('e')].map((digest) => ({digest, size: 1}))
  const paths = (m: BundleMetadata) => bundleEntries(m, blobs, 0).map((e) => e.path)
  const relied = `blobs/sha256/${'c'.repeat(64)}`
  t.true(paths(full).includes(relied))
  t.false(paths(delta).includes(relied))
  t.deepEqual(paths(delta).filter((p) => p.startsWith('blobs/')), paths(full).filter((p) => p.startsWith('blobs/') && p !== relied))
  t.deepEqual([...reliedOn(delta).keys()], [d('c')])
  t.is(reliedOn(full).size, 0)
  t.deepEqual(blobsOf(delta).map((b) => b.digest), [d('a'), d('b'), d('e')])
  t.false(expectedEntries(delta, 1000).some((e) => e.path === relied), 'install.sh does not expect it in the tar')
  const plan = planImport(delta, 'linux/amd64')
  t.false(plan.blobs.some((b) => b.digest === d('c')))
  t.deepEqual(plan.relies, [{image: 'registry.k8s.io/kube-proxy:v1.31.6', digest: d('c'), chainId: d('f')}])
  const lines = renderPlanData(delta)
  t.true(lines.includes(`relies|linux/amd64|registry.k8s.io/kube-proxy:v1.31.6|${'c'.repeat(64)}|${'f'.repeat(64)}`))
  t.true(lines.includes('delta|bundle|push,load'))
  t.false(renderPlanData(full).some((l) => l.startsWith('relies|') || l.startsWith('delta|')))
  t.true(renderInstallScript(delta).includes('--- a delta bundle'))
  t.false(renderInstallScript(full).includes('--- a delta bundle'))
})

test('docker ChainIDs: the first is the diffID, then sha256 of "parent diffID"', (t) => {
  const [a, b, c] = [d('1'), d('2'), d('3')]
  const ab = `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`
  const abc = `sha256:${createHash('sha256').update(`${ab} ${c}`).digest('hex')}`
  t.deepEqual(chainIds([a, b, c]), [a, ab, abc])
})

test('only layers may be left out: manifests, indexes and configs are always carried', (t) => {
  t.true(isLayerMediaType(LAYER))
  t.true(isLayerMediaType('application/vnd.docker.image.rootfs.diff.tar.gzip'))
  for (const m of ['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']) t.false(isLayerMediaType(m), m)
})
