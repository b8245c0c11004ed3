/**
 * `verify` on the generated fixtures (fixtures/bundles, see test/fixtures-gen.ts): the good bundle passes; a
 * flipped byte in a layer, a missing blob and an extra `../` entry each fail with the right problem, through the
 * library and through the CLI (exit code, one line per problem, --json).
 */
import {join} from 'node:path'
import test from 'ava'
import {assertBundleValid, verifyBundle} from '../../src/bundle/verify.js'
import {firstRunOnly, projectRoot, runCli} from '../helpers/cli.js'

const fixture = (name: string): string => join(projectRoot, 'fixtures', 'bundles', name)

const cli = (...args: string[]) => runCli(args)

if (firstRunOnly('never starts the CLI: verify in process')) test('the good fixture verifies', async (t) => {
  const result = await verifyBundle(fixture('good.tar'))
  t.deepEqual(result.problems, [])
  t.is(result.images, 3)
  t.true(result.bytesHashed > 0)
  await t.notThrowsAsync(assertBundleValid(fixture('good.tar')))
})

if (firstRunOnly('never starts the CLI: verify in process')) test('a flipped byte in a layer is found (digest and SHA256SUMS)', async (t) => {
  const result = await verifyBundle(fixture('flipped-layer.tar'))
  t.false(result.ok)
  t.deepEqual([...new Set(result.problems.map((p) => p.kind))].sort(), ['CHECKSUMS', 'DIGEST'])
  t.regex(result.problems.find((p) => p.kind === 'DIGEST')!.message, /blobs\/sha256\/[a-f0-9]{64}" has content sha256:/)
  // --quick skips hashing layers but still checks nothing else is wrong
  const quick = await verifyBundle(fixture('flipped-layer.tar'), {quick: true})
  t.false(quick.problems.some((p) => p.kind === 'DIGEST'))
})

if (firstRunOnly('never starts the CLI: verify in process')) test('a missing blob is found everywhere it is referenced', async (t) => {
  const result = await verifyBundle(fixture('missing-blob.tar'))
  t.false(result.ok)
  const kinds = result.problems.map((p) => p.kind)
  t.true(kinds.includes('MISSING'))
  t.true(kinds.includes('DOCKER'), 'manifest.json points at it')
  t.true(kinds.includes('CHECKSUMS'))
  t.true(result.problems.length >= 3, 'every problem is reported, not just the first')
  await t.throwsAsync(assertBundleValid(fixture('missing-blob.tar')), {message: /does not verify: .* \(and \d+ more problems\)/})
})

if (firstRunOnly('never starts the CLI: verify in process')) test('an extra ../ entry is refused before anything is read', async (t) => {
  const result = await verifyBundle(fixture('traversal.tar'))
  t.false(result.ok)
  t.is(result.problems[0].kind, 'STRUCTURE')
  t.regex(result.problems[0].message, /path traversal entry "\.\.\/evil"/)
})

test('verify CLI: exit 0 only when everything holds; problems listed; --json', async (t) => {
  const good = await cli('verify', fixture('good.tar'))
  t.is(good.code, 0, good.stderr)
  t.regex(good.stdout, /OK \(3 images/)
  const bad = await cli('verify', fixture('missing-blob.tar'))
  t.is(bad.code, 1)
  t.true(bad.stderr.split('\n').filter((l) => l.includes(': MISSING: ')).length >= 1)
  t.notRegex(bad.stderr, /\n\s+at /, 'no stack trace')
  const json = await cli('verify', fixture('flipped-layer.tar'), '--json')
  t.is(json.code, 1)
  const doc = JSON.parse(json.stdout) as {ok: boolean; problems: {kind: string}[]}
  t.false(doc.ok)
  t.true(doc.problems.some((p) => p.kind === 'DIGEST'))
  const missing = await cli('verify', join(projectRoot, 'fixtures', 'bundles', 'nope.tar'))
  t.is(missing.code, 1)
  t.regex(missing.stderr, /cannot open bundle .*nope\.tar: no such file or directory/)
})
