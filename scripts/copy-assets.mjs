#!/usr/bin/env node
// Copies the non-TypeScript files the built code reads at run time next to their compiled modules (tsc copies
// only .ts/.json): src/bundle/install/*.sh → dist/src/bundle/install/ (install.sh's parts, read by
// src/bundle/install-template.ts).
import {copyFileSync, mkdirSync, readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const ASSETS = readdirSync(join(root, 'src/bundle/install'))
  .filter((name) => name.endsWith('.sh'))
  .map((name) => `src/bundle/install/${name}`)
for (const asset of ASSETS) {
  const target = join(root, 'dist', asset)
  mkdirSync(dirname(target), {recursive: true})
  copyFileSync(join(root, asset), target)
}
