/**
 * Push when the registry goes away: a private docker-registry (started and killed by PID here) dies in the middle
 * of the uploads; push fails with one clear line and reports only what really landed; after a restart the same
 * command completes and every digest is right.
 */
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {peerTest} from '../harness/peers.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {RegistryClient} from '../../src/registry/client.js'
import {isKubeferryError} from '../../src/oci/errors.js'
import {pushBundle, type PushEvent, type PushRegistry, type PushReport} from '../../src/registry/push.js'
import {freePort} from '../harness/proc.js'
import {bundleIndex, createBundle, ownRegistry, restartRegistry, run} from './helpers.js'
import {runCli} from '../helpers/cli.js'

/** The last lines of a registry's log, for a failure message (the registry's own view of an HTTP 500). */
async function logTail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '(no log)')
  return text.split('\n').slice(-15).join('\n')
}

async function rawDigest(ref: string): Promise<string | undefined> {
  const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
  return r.code === 0 ? `sha256:${createHash('sha256').update(r.stdout).digest('hex')}` : undefined
}

peerTest.serial('registry down mid-push: clear error, only finished names reported, rerun after restart completes', ['registries', 'skopeo'], async (t, peers) => {
  const path = await createBundle(peers.registries.open.host)
  const images = await bundleIndex(path)
  let reg = await ownRegistry('push-down')
  try {
    const client = new RegistryClient({retry: {attempts: 2, baseDelayMs: 20, maxDelayMs: 50}})
    let uploads = 0
    // Kill the registry (by its PID) just before the 6th blob upload.
    const killing: PushRegistry = {
      blobExists: (r, d) => client.blobExists(r, d),
      mountBlob: (r, d, f) => client.mountBlob(r, d, f),
      headManifest: (r) => client.headManifest(r),
      putManifest: (r, w, m) => client.putManifest(r, w, m),
      uploadBlob: async (r, d, open: () => Promise<Readable>) => {
        if (++uploads === 6) await reg.stop()
        return client.uploadBlob(r, d, open)
      },
    }
    const done: string[] = []
    const onEvent = (e: PushEvent) => {
      if (e.type === 'target-done') done.push(e.target.reference)
    }
    const dest = {registry: reg.host, prefix: 'k8s'}
    const error = await t.throwsAsync(pushBundle(await BundleReader.open(path), killing, {destination: dest, rules: {prefix: 'k8s'}, concurrency: 2, onEvent}))
    await client.close()
    t.true(isKubeferryError(error))
    t.regex(error!.message, /push to 127\.0\.0\.1:\d+\/k8s is incomplete \(\d+ of 9 name\(s\) pushed\)/)
    t.regex(error!.message, /cannot reach|connection refused|ECONNREFUSED/i)
    t.regex((error as {hint?: string}).hint ?? '', /rerun the same command/)
    t.true(done.length < 9, `reported done: ${done.length}`)

    reg = await restartRegistry(reg)
    // Whatever was reported as done is really there with the bundle's digest.
    for (const reference of done) {
      const name = images.find((i) => reference.endsWith(i.name.slice(i.name.indexOf('/') + 1)))
      t.is(await rawDigest(reference), name?.digest, reference)
    }
    const rerun = await runCli(['push', path, `${reg.host}/k8s`, '--json'])
    t.is(rerun.code, 0, `${rerun.stderr}\nregistry log: ${await logTail(join(reg.dir, 'registry.log'))}`)
    const report = JSON.parse(rerun.stdout) as PushReport
    t.true(report.blobs.uploaded > 0, 'the rerun uploads what was missing')
    for (const image of images) t.is(await rawDigest(`${reg.host}/k8s/${image.name.slice(image.name.indexOf('/') + 1)}`), image.digest, image.name)
    const third = await runCli(['push', path, `${reg.host}/k8s`, '--json'])
    t.is((JSON.parse(third.stdout) as PushReport).blobs.uploaded, 0)
  } finally {
    await reg.stop()
  }
})

peerTest('a registry that is not running: one clear line and a non-zero exit', ['registries'], async (t, peers) => {
  const path = await createBundle(peers.registries.open.host, ['linux/amd64'])
  const port = await freePort()
  const r = await runCli(['push', path, `127.0.0.1:${port}/k8s`, '--concurrency', '2'])
  t.is(r.code, 1)
  t.regex(r.stderr, /^error: .*127\.0\.0\.1:\d+.*(connection refused|cannot reach)/m)
  t.notRegex(r.stderr, /\n\s+at /)
})

peerTest('a corrupted blob is never committed: push fails on it (and --verify refuses before pushing anything)', ['registries', 'skopeo'], async (t, peers) => {
  const {copyFile, open} = await import('node:fs/promises')
  const {blobPath} = await import('../../src/bundle/layout.js')
  const path = await createBundle(peers.registries.open.host, ['linux/amd64'])
  const reader = await BundleReader.open(path)
  const meta = await reader.metadata()
  const pause = meta.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  const layer = pause.platforms[0].layers.at(-1)!
  const bad = `${path}.corrupt.tar`
  await copyFile(path, bad)
  const fh = await open(bad, 'r+')
  const at = reader.entry(blobPath(layer.digest))!.offset + Math.floor(layer.size / 2)
  const byte = Buffer.alloc(1)
  await fh.read(byte, 0, 1, at)
  byte[0] ^= 0xff
  await fh.write(byte, 0, 1, at)
  await fh.close()

  const reg = await ownRegistry('push-corrupt')
  try {
    const verified = await runCli(['push', bad, `${reg.host}/v`, '--verify'])
    t.is(verified.code, 1)
    t.regex(verified.stderr, /does not verify/)
    t.is((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/v/kube-proxy:v1.31.6`])).code === 0, false, 'nothing pushed')

    const streamed = await runCli(['push', bad, `${reg.host}/s`, '--concurrency', '1'])
    t.is(streamed.code, 1)
    t.regex(streamed.stderr, /digest|DIGEST/)
    t.regex(streamed.stderr, /incomplete/)
    t.not(await rawDigest(`${reg.host}/s/pause:3.10`), pause.digest, 'the image with the corrupt layer was not tagged')
    const blob = await run('curl', ['-sf', '-o', '/dev/null', '-w', '%{http_code}', `http://${reg.host}/v2/s/pause/blobs/${layer.digest}`])
    t.not(blob.stdout, '200', 'the corrupt layer is not in the registry')
  } finally {
    await reg.stop()
  }
})
