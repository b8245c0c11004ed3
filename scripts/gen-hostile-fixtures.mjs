#!/usr/bin/env node
// Regenerates fixtures/bundles/hostile/ (small hostile bundles; see its README.md). Build first: npx tsc -p .
//   node scripts/gen-hostile-fixtures.mjs [OUT_DIR]
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
process.env.SOURCE_DATE_EPOCH ??= '0'
const {generateSmall} = await import(join(root, 'dist/test/hostile/generate.js'))
const out = resolve(process.argv[2] ?? join(root, 'fixtures/bundles/hostile'))
const files = await generateSmall(out)
process.stdout.write(`wrote ${files.length} files into ${out}\n`)
