#!/usr/bin/env node
// Writes oclif.manifest.json (every command's id, flags, args, help text) from the compiled commands in
// dist/src/commands, with @oclif/core's own Plugin loader — what `oclif manifest` does. With it, the CLI starts
// without importing every command and its whole import graph. Run after tsc (`npm run build`); the file is not
// committed, and bin/run.js ignores it when anything under dist/src or package.json is newer than it.
import {rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
const plugin = new Plugin({root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
await plugin.load()
const ids = Object.keys(plugin.manifest.commands)
if (ids.length === 0) throw new Error('oclif-manifest: no commands found under dist/src/commands (run tsc first)')
const target = join(root, 'oclif.manifest.json')
const temp = `${target}.${process.pid}.tmp`
// Via a temp name: a CLI starting meanwhile reads either the old file or the new one, never half of one.
await writeFile(temp, `${JSON.stringify(plugin.manifest, null, 2)}\n`)
await rename(temp, target)
console.log(`oclif-manifest: ${ids.length} commands (${ids.sort().join(', ')}) -> oclif.manifest.json`)
