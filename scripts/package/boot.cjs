/**
 * The single file's main (bundled by build.mjs into dist/sea/boot.cjs). Small on purpose: it is all a process
 * compiles before it knows what it was asked. `--version` is answered here, as oclif would say it; anything else
 * compiles the bundled code (the SEA asset kubeferry.cjs, with the V8 code cache made at build time) and runs it.
 * Why not a start-up snapshot: the whole heap it holds is read before the first line runs, for every command, and
 * the state frozen in it at build time (colour support, terminal width) needed undoing (docs/benchmarks.md).
 */
'use strict'
const sea = require('node:sea')
const {compile} = require('./compile.cjs')
const PJSON = require('kubeferry:pjson')

/** oclif's Config.userAgent, which it prints for --version. */
function userAgent() {
  const os = require('node:os')
  const platform = require('is-wsl').default ? 'wsl' : os.platform()
  return `${PJSON.name}/${PJSON.version} ${platform}-${os.arch() === 'ia32' ? 'x86' : os.arch()} node-${process.version}`
}

/** A build without a way to run its architecture's node has no code cache (build.mjs). */
function rawAsset(key) {
  try {
    return Buffer.from(sea.getRawAsset(key))
  } catch {
    return undefined
  }
}

/** oclif shows the version when the first argument is one of these (its main.js versionAddition). */
const versionFlags = new Set(['--version', ...(PJSON.oclif.additionalVersionFlags ?? [])])

// With DEBUG set, oclif prints its own start-up: leave --version to it then.
if (versionFlags.has(process.argv[2]) && !process.env.DEBUG) {
  // As every command: a reader that went away (`| head`) is not an error, a full disk is one line on stderr.
  process.stdout.on('error', require('../../dist/src/cli/stdout-guard.js').onStdoutError)
  process.stdout.write(`${userAgent()}\n`)
} else {
  const cache = rawAsset('kubeferry.cache')
  // ASCII only (build.mjs): Latin-1 is the quickest way to a string, and makes a one-byte one.
  const {script, run} = compile(Buffer.from(sea.getRawAsset('kubeferry.cjs')).toString('latin1'), cache)
  // DEBUG=kubeferry:sea (or a pattern that takes it in, as the debug package that oclif uses reads them).
  if (process.env.DEBUG && require('debug').enabled('kubeferry:sea')) {
    const state = !cache ? 'none in this build' : script.cachedDataRejected ? 'REJECTED (start-up is slower; rebuild with npm run package)' : 'accepted'
    process.stderr.write(`kubeferry:sea code cache ${state}\n`)
  }
  run(require, __filename, __dirname)
}
