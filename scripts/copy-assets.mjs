#!/usr/bin/env node
// Copies the non-TypeScript files the built code reads at run time next to their compiled modules (tsc copies
// only .ts/.json): src/bundle/install.sh → dist/src/bundle/install.sh (read by src/bundle/install-template.ts).
import {copyFileSync, mkdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const ASSETS = ['src/bundle/install.sh']
for (const asset of ASSETS) {
  const target = join(root, 'dist', asset)
  mkdirSync(dirname(target), {recursive: true})
  copyFileSync(join(root, asset), target)
}
