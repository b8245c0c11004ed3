/**
 * The sparse-index fallback decides on the registry's answer as data (RegistryError status and codes), not on the
 * wording of the error: a real docker-registry refuses the sparse upstream index (MANIFEST_BLOB_UNKNOWN); the
 * client's error is passed on reworded (same fields), and push still falls back to the filtered index. The same
 * words without the data (a plain KubeferryError) do not trigger the fallback.
 */
import {peerTest} from '../harness/peers.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {KubeferryError} from '../../src/oci/errors.js'
import {RegistryClient} from '../../src/registry/client.js'
import {RegistryError} from '../../src/registry/errors.js'
import {pushBundle, type PushEvent, type PushRegistry} from '../../src/registry/push.js'
import {bundleIndex, createBundle, randomName} from './helpers.js'

function rewording(client: RegistryClient, reword: (error: RegistryError) => Error): PushRegistry {
  return {
    blobExists: (r, d) => client.blobExists(r, d),
    mountBlob: (r, d, f) => client.mountBlob(r, d, f),
    uploadBlob: (r, d, open) => client.uploadBlob(r, d, open),
    headManifest: (r) => client.headManifest(r),
    putManifest: (r, w, m) =>
      client.putManifest(r, w, m).catch((error: unknown) => {
        throw error instanceof RegistryError ? reword(error) : error
      }),
  }
}

peerTest('sparse index refused by the registry, error reworded: push still falls back to the filtered index (reads the code)', ['registries'], async (t, peers) => {
  const host = peers.registries.open.host
  const path = await createBundle(host, ['linux/amd64'])
  const pause = (await bundleIndex(path)).find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  const client = new RegistryClient()
  t.teardown(() => client.close())
  const seen: RegistryError[] = []
  const registry = rewording(client, (e) => {
    seen.push(e)
    return new RegistryError(e.code, 'the registry would not keep this', e, {hint: e.hint})
  })
  const events: PushEvent[] = []
  const report = await pushBundle(await BundleReader.open(path), registry, {destination: {registry: host, prefix: randomName('reworded')}, rules: {prefix: randomName('reworded')}, onEvent: (e) => events.push(e)})
  t.true(seen.length > 0, 'the registry refused the sparse index')
  t.true(seen.every((e) => e.hasCode('MANIFEST_BLOB_UNKNOWN')), JSON.stringify(seen.map((e) => e.errors)))
  const target = report.images.find((i) => i.source === pause.name)!.targets[0]
  t.true(target.filtered)
  t.is(target.upstreamDigest as string, pause.digest)
  t.not(target.digest as string, pause.digest)
  const notes = events.filter((e): e is Extract<PushEvent, {type: 'filtered'}> => e.type === 'filtered')
  t.true(notes.length > 0)
  t.true(notes.every((n) => n.reason === 'MANIFEST_BLOB_UNKNOWN'), JSON.stringify(notes.map((n) => n.reason)))
})

peerTest('the refusal\'s words without its data (a plain KubeferryError) do not make push fall back', ['registries'], async (t, peers) => {
  const host = peers.registries.open.host
  const path = await createBundle(host, ['linux/amd64'])
  const client = new RegistryClient()
  t.teardown(() => client.close())
  const registry = rewording(client, (e) => new KubeferryError(e.code, `${e.message} [MANIFEST_BLOB_UNKNOWN, HTTP 400]`, {hint: e.hint}))
  const prefix = randomName('words')
  const error = await t.throwsAsync(pushBundle(await BundleReader.open(path), registry, {destination: {registry: host, prefix}, rules: {prefix}}))
  t.regex(error!.message, /is incomplete .*MANIFEST_BLOB_UNKNOWN/)
})
