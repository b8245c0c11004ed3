/**
 * Build time (build.mjs), run by the node the single file is made from, of its architecture (under qemu-user for
 * another): compiles dist/sea/kubeferry.cjs as the file's boot.cjs does, runs `kubeferry --help` with it (oclif's
 * start-up, the command map and the help class), and at exit writes the V8 code cache of everything compiled by
 * then. Usage: node make-cache.cjs BUNDLE CACHE
 */
'use strict'
const {readFileSync, writeFileSync} = require('node:fs')
const {dirname} = require('node:path')
const {compile} = require('./compile.cjs')

const [bundle, cache] = process.argv.slice(2)
const {script, run} = compile(readFileSync(bundle, 'utf8'))
process.on('exit', () => writeFileSync(cache, script.createCachedData()))
process.argv = [process.argv[0], bundle, '--help']
run(require, bundle, dirname(bundle))
