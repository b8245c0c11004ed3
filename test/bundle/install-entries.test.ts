/**
 * install.sh carries the bundle's exact entry list (install-script.ts `expectedEntries`), computed from the metadata
 * alone. These tests hold it to what writer.ts really writes, so a change to the writer that the script does not
 * follow fails here with the entry named, not later as "install.sh refuses every bundle". No peers needed.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {expectedEntries, renderInstallScript} from '../../src/bundle/install-script.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {makeBundle} from '../load/make-bundle.js'

let work: string
let bundle: string
let meta: BundleMetadata

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-install-entries-'))
  bundle = join(work, 'k8s.tar')
  meta = await makeBundle(bundle)
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')
const script = (): Promise<Buffer> => readFile(join(work, 'k8s.install.sh'))

test('the entry list is exactly the tar: names, order-free, sizes, and the sha256 of the small files', async (t) => {
  const own = await script()
  t.is(Buffer.byteLength(renderInstallScript(meta)), own.length, 'the script states its own size')
  const expected = expectedEntries(meta, own.length)
  const listed = execFileSync('tar', ['-tvf', bundle], {encoding: 'utf8'})
    .trim()
    .split('\n')
    .map((line) => line.split(/\s+/))
    .map((f) => ({type: f[0][0], size: Number(f[2]), path: f.slice(5).join(' ')}))
  t.deepEqual(
    listed.map((e) => `${e.type} ${e.path} ${e.size}`).sort(),
    expected.map((e) => `- ${e.path} ${e.size}`).sort(),
  )
  const hashed = expected.filter((e) => e.sha256)
  t.deepEqual(hashed.map((e) => e.path).sort(), ['index.json', 'kubeferry/bundle.json', 'kubeferry/docker/linux-amd64.tar', 'kubeferry/docker/linux-arm64.tar', 'manifest.json', 'oci-layout'])
  for (const e of hashed) t.is(sha(execFileSync('tar', ['-xOf', bundle, e.path])), e.sha256 ?? '', e.path)
  t.true(own.equals(execFileSync('tar', ['-xOf', bundle, 'kubeferry/install.sh'])), 'the script beside the bundle is the one inside')
})

for (const shell of ['dash', 'busybox'] as const) {
  test(`install.sh --verify-only under ${shell}: accepts its bundle, refuses one extra entry and a same-size edit of index.json`, async (t) => {
    if (shell === 'busybox' && !existsSync('/usr/bin/busybox') && !existsSync('/bin/busybox')) return t.pass('busybox is not installed')
    const argv = (file: string): string[] => (shell === 'dash' ? [join(work, 'k8s.install.sh'), file, '--verify-only'] : ['sh', join(work, 'k8s.install.sh'), file, '--verify-only'])
    const run = (file: string): {code: number; out: string} => {
      try {
        return {code: 0, out: execFileSync(shell, argv(file), {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})}
      } catch (error) {
        const e = error as {status: number; stderr: string}
        return {code: e.status, out: e.stderr}
      }
    }
    const ok = run(bundle)
    t.is(ok.code, 0, ok.out)
    t.regex(ok.out, /structure ok \(\d+ entries\), checksum ok/)

    // One extra file appended (the end-of-archive marker moved): an entry the script does not know.
    const extra = join(work, `extra-${shell}.tar`)
    execFileSync('cp', [bundle, extra])
    execFileSync('tar', ['--append', '-f', extra, '-C', work, 'k8s.tar.sha256'])
    const r1 = run(extra)
    t.is(r1.code, 4, r1.out)
    t.regex(r1.out, /unexpected entry k8s\.tar\.sha256/)

    // index.json rewritten in place with the same length: only its sha256 tells.
    const edited = join(work, `edited-${shell}.tar`)
    await copyFile(bundle, edited)
    const bytes = await readFile(edited)
    const data = dataOffset(bytes, 'index.json')
    const at = bytes.indexOf(Buffer.from('"schemaVersion":2'), data)
    t.is(at, data + 1, 'index.json starts with its schemaVersion')
    bytes.write('"schemaVersion":3', at)
    await writeFile(edited, bytes)
    const r2 = run(edited)
    t.is(r2.code, 4, r2.out)
    t.regex(r2.out, /index\.json \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\) is not the one this script was written for/)
  })
}

/** Where the data of entry `name` starts in a plain ustar archive held in memory. */
function dataOffset(tar: Buffer, name: string): number {
  for (let at = 0; at + 512 <= tar.length; ) {
    const entry = tar.toString('latin1', at, at + 100).replace(/\0.*$/s, '')
    if (entry === '') break
    if (entry === name) return at + 512
    const size = Number.parseInt(tar.toString('latin1', at + 124, at + 136).trim(), 8)
    at += 512 + Math.ceil(size / 512) * 512
  }
  throw new Error(`${name} is not in the tar`)
}
