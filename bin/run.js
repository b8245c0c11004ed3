#!/usr/bin/env node
import {readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import module from 'node:module'
import v8 from 'node:v8'
import {fileURLToPath} from 'node:url'

// Node >= 22.1 keeps the compiled code of kubeferry and its dependencies between runs (in the OS temp dir), which
// takes a good part of the start-up time off every command. Node 20 has no such cache: a no-op there. Called before
// oclif is imported so that oclif itself is cached too.
module.enableCompileCache?.()

// undici parses HTTP with llhttp compiled to WebAssembly. By default V8 recompiles its hot parser function with
// TurboFan on a background thread, and Node.js waits for that compile before the process may exit: 70-100 ms of CPU
// and wall time at the end of every command that made a request (measured: re-push 390 → 315 ms), and no gain while
// it runs (a 440 MB download used less CPU without it). Liftoff, V8's baseline WebAssembly compiler, is enough for
// llhttp, which skips over bodies rather than scanning them. Set before undici compiles the module. Only on the V8
// versions known to have the flag (Node.js 20-24: V8 11-13): an unknown flag would print an error on every start.
if (Number(process.versions.v8.split('.')[0]) <= 13) v8.setFlagsFromString('--liftoff-only')

const root = fileURLToPath(new URL('..', import.meta.url))

/** Newest mtime (ms) of the files under `dir`, 0 when it does not exist. */
function newest(dir) {
  let latest = 0
  let entries
  try {
    entries = readdirSync(dir, {withFileTypes: true})
  } catch {
    return 0
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

/**
 * oclif.manifest.json (written by `npm run build`, see scripts/oclif-manifest.mjs) spares oclif importing every
 * command at start-up, but oclif trusts it blindly: after a bare `tsc` it would describe old flags. Trust it only
 * when it is newer than everything it was made from.
 */
function staleManifest() {
  let made
  try {
    made = statSync(join(root, 'oclif.manifest.json')).mtimeMs
  } catch {
    return false // none: oclif reads the commands themselves
  }
  return made < statSync(join(root, 'package.json')).mtimeMs || made < newest(join(root, 'dist', 'src'))
}

// Subpath imports: oclif's index loads every part of oclif (help, ux, …) whether the command needs it or not.
const {execute} = await import('@oclif/core/execute')
if (!staleManifest()) {
  await execute({dir: import.meta.url})
} else {
  const {Plugin} = await import('@oclif/core/config')
  const plugin = new Plugin({root, isRoot: true, ignoreManifest: true})
  await plugin.load()
  await execute({loadOptions: {root, plugins: new Map([[plugin.name, plugin]])}})
}
