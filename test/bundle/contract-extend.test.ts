/**
 * Adding a kind of entry to a bundle is ONE edit: a row in contract.ts's ENTRY_KINDS. This test adds one (a
 * `kubeferry/signatures.json` made from the metadata, checked by install.sh by sha256, required by verify) and
 * sees the writer write it, SHA256SUMS list it, install.sh's entry list carry it (and refuse a tar without it or
 * with it edited), and `verify` accept the bundle and report the entry MISSING once it is taken out. Nothing else
 * of the project is touched. No peers needed; this file's process only (ava runs each test file in its own).
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {ENTRY_KINDS, type EntryKind} from '../../src/bundle/contract.js'
import {verifyBundle} from '../../src/bundle/verify.js'
import {makeBundle} from '../load/make-bundle.js'

const SIGNATURES = 'kubeferry/signatures.json'
const signatures: EntryKind = {
  kind: 'signatures', mode: 0o644, installCheck: 'sha256', checksummed: true, verifyRequires: true,
  files: () => [{path: SIGNATURES}],
  make: ({meta}) => {
    const bytes = Buffer.from(JSON.stringify({signed: meta.images.map((image) => image.digest)}))
    return [{path: SIGNATURES, size: bytes.length, bytes}]
  },
}

let work: string
let bundle: string
const sha = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

test.before(async () => {
  ENTRY_KINDS.splice(ENTRY_KINDS.findIndex((k) => k.kind === 'install.sh'), 0, signatures)
  work = await mkdtemp(join(tmpdir(), 'kf-contract-extend-'))
  bundle = join(work, 'k8s.tar')
  await makeBundle(bundle)
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const member = (tar: string, path: string): Buffer => execFileSync('tar', ['-xOf', tar, path])

function verifyOnly(file: string): {code: number; out: string} {
  try {
    return {code: 0, out: execFileSync('dash', [join(work, 'k8s.install.sh'), file, '--verify-only'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})}
  } catch (error) {
    const e = error as {status: number; stderr: string}
    return {code: e.status, out: e.stderr}
  }
}

test.serial('the writer writes the new entry, SHA256SUMS lists it, install.sh lists it with its sha256, verify accepts the bundle', async (t) => {
  const listing = execFileSync('tar', ['-tvf', bundle], {encoding: 'utf8'})
  t.regex(listing, /^-rw-r--r-- .* kubeferry\/signatures\.json$/m, 'a regular 0644 entry')
  const bytes = member(bundle, SIGNATURES)
  t.deepEqual(JSON.parse(bytes.toString()).signed.length, 4)
  t.true(member(bundle, 'kubeferry/SHA256SUMS').toString().includes(`${sha(bytes)}  ${SIGNATURES}\n`), 'SHA256SUMS line')
  const script = await readFile(join(work, 'k8s.install.sh'), 'utf8')
  t.true(script.includes(`\nentry|${SIGNATURES}|${bytes.length}|${sha(bytes)}\n`), 'install.sh entry line')
  const ok = verifyOnly(bundle)
  t.is(ok.code, 0, ok.out)
  const result = await verifyBundle(bundle)
  t.deepEqual(result.problems, [])
})

test.serial('without the new entry: install.sh refuses the tar, verify reports it MISSING', async (t) => {
  const without = join(work, 'without.tar')
  await writeFile(without, withoutEntry(await readFile(bundle), SIGNATURES))
  t.false(execFileSync('tar', ['-tf', without], {encoding: 'utf8'}).includes(SIGNATURES))
  const r = verifyOnly(without)
  t.is(r.code, 4, r.out)
  t.regex(r.out, /missing kubeferry\/signatures\.json/)
  const result = await verifyBundle(without)
  t.true(result.problems.some((p) => p.kind === 'MISSING' && p.entry === SIGNATURES), JSON.stringify(result.problems))
})

test.serial('the new entry edited in place (same size): install.sh refuses it by its sha256', async (t) => {
  const edited = join(work, 'edited.tar')
  const bytes = await readFile(bundle)
  const at = bytes.indexOf(Buffer.from('{"signed":["sha256:'))
  t.true(at > 0)
  bytes.write('{"signed":["sha257:', at)
  await writeFile(edited, bytes)
  const r = verifyOnly(edited)
  t.is(r.code, 4, r.out)
  t.regex(r.out, /kubeferry\/signatures\.json \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\) is not the one this script was written for/)
})

/** A plain ustar archive held in memory without entry `name` (its header and padded data cut out). */
function withoutEntry(tar: Buffer, name: string): Buffer {
  for (let at = 0; at + 512 <= tar.length; ) {
    const entry = tar.toString('latin1', at, at + 100).replace(/\0.*$/s, '')
    if (entry === '') break
    const size = Number.parseInt(tar.toString('latin1', at + 124, at + 136).trim(), 8)
    const next = at + 512 + Math.ceil(size / 512) * 512
    if (entry === name) return Buffer.concat([tar.subarray(0, at), tar.subarray(next)])
    at = next
  }
  throw new Error(`${name} is not in the tar`)
}
