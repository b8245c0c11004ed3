#!/usr/bin/env node
/**
 * `npm run package`: dist/sea/kubeferry-linux-amd64 and dist/sea/kubeferry-linux-arm64, Node.js single-executable
 * applications (https://nodejs.org/api/single-executable-applications.html), from the build in dist/ (npm run build
 * runs first):
 * 1. esbuild bundles scripts/package/entry.mjs, the commands (explicit map) and every dependency into one CommonJS
 *    script, dist/sea/kubeferry.cjs; oclif's module loader is swapped for module-loader.cjs, and the files the code
 *    reads beside itself are embedded (see entry.mjs).
 * 2. esbuild bundles boot.cjs, the file's main: it answers --version itself and otherwise compiles the bundled code
 *    (dist/sea/kubeferry.cjs, a SEA asset) and runs it. Without a start-up snapshot: the snapshot is read whole
 *    before the first line runs, and it cost more than it saved (docs/benchmarks.md, sixth session).
 * 3. Per architecture, the official Node.js binary of node.json's release, from its npm package (npm pack, integrity
 *    checked), runs make-cache.cjs: the bundled code's `--help`, and at exit the V8 code cache of all it compiled
 *    (an asset beside the code). A code cache loads only on the V8 and platform that made it: the arm64 one is
 *    made by the arm64 node under qemu-user (Debian qemu-user-static and libc6-arm64-cross,
 *    libstdc++6-arm64-cross); where that cannot run, the file has no code cache (slower start-up, same behaviour).
 *    The same node makes the blob (`node --experimental-sea-config`); postject injects it into a copy of the
 *    binary, and where the file can run here, the build checks that it accepts its code cache.
 * Usage: node scripts/package/build.mjs [--arch amd64|arm64 …]   (default: both architectures)
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {build} from 'esbuild'
import {asciiOnly} from './ascii.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const here = join(root, 'scripts', 'package')
const out = join(root, 'dist', 'sea')
const NODE = JSON.parse(readFileSync(join(here, 'node.json'), 'utf8'))
/** Where the embedded files seem to be, for the code that reads them (a directory that does not exist). */
const SEA_ROOT = '/kubeferry.sea'
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const QEMU = {arm64: {binary: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu'}}
/** This machine's architecture, as node.json names it. */
const HOST_ARCH = {x64: 'amd64', arm64: 'arm64'}[process.arch]

const fail = (message) => {
  console.error(`package: ${message}`)
  process.exit(1)
}

function parseArgs(argv) {
  const arches = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--arch') arches.push(argv[++i])
    else fail(`unknown argument ${argv[i]} (usage: build.mjs [--arch amd64|arm64 …])`)
  }
  for (const arch of arches) if (!NODE.targets[arch]) fail(`unknown --arch ${arch} (one of ${Object.keys(NODE.targets).join(', ')})`)
  return {arches: arches.length ? arches : Object.keys(NODE.targets)}
}

/** Run a build step; its output is shown only when it fails (node and postject are chatty). */
function step(file, args, env = process.env) {
  try {
    execFileSync(file, args, {stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env})
  } catch (error) {
    fail(`${[file, ...args].join(' ')} failed:\n${error.stdout ?? ''}${error.stderr ?? error.message}`)
  }
}

/** package.json as the single file sees it: commands from the explicit map instead of a directory scan. */
function seaPjson() {
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  pjson.oclif = {...pjson.oclif, commands: {strategy: 'explicit', target: './dist/src/commands/index.js', identifier: 'COMMANDS'}}
  return pjson
}

/** Every module oclif loads by path (command map, hooks, help class), relative to the root. */
function oclifModules(oclif) {
  const targets = [oclif.commands.target, oclif.helpClass]
  for (const hooks of Object.values(oclif.hooks ?? {})) for (const hook of [hooks].flat()) targets.push(typeof hook === 'string' ? hook : hook.target)
  return [...new Set(targets.filter(Boolean).map((t) => t.replace(/^\.\//, '')))]
}

const commandsTarget = (pjson) => pjson.oclif.commands.target.replace(/^\.\//, '')

/** The command ids of the explicit map; each must be the default export of dist/src/commands/ID.js. */
async function commandIds({target, identifier}) {
  const map = (await import(pathToFileURL(join(root, target)).href))[identifier]
  const ids = Object.keys(map ?? {})
  if (ids.length === 0) fail(`${target} exports no ${identifier}`)
  for (const id of ids) {
    const file = join(root, 'dist', 'src', 'commands', `${id}.js`)
    if (!existsSync(file) || (await import(pathToFileURL(file).href)).default !== map[id]) fail(`${identifier}.${id} in ${target} is not the default export of ${relative(root, file)}`)
  }
  return ids
}

/** The files the code reads beside itself at run time, relative to the root. */
function embeddedFiles() {
  const install = 'dist/src/bundle/install'
  const names = ['package.json', 'oclif.manifest.json', ...readdirSync(join(root, install)).filter((n) => n.endsWith('.sh')).map((n) => `${install}/${n}`)]
  return Object.fromEntries(names.map((name) => [name, readFileSync(join(root, name), 'utf8')]))
}

/**
 * A project module as the bundle needs it:
 * - `createRequire(import.meta.url)` (a require of the module's own, which esbuild does not follow) becomes a
 *   require that knows the modules this file asks it for by name (every `require('…')` literal in the file), bundled;
 * - import.meta.url (not in CommonJS) becomes where the module would be under SEA_ROOT (entry.mjs serves the files).
 */
function bundleable(path) {
  let text = readFileSync(path, 'utf8')
  if (text.includes('createRequire(import.meta.url)')) {
    const names = [...new Set([...text.matchAll(/\brequire\((['"])([^'"]+)\1\)/g)].map((m) => m[2]))]
    const table = names.map((n) => `${JSON.stringify(n)}: () => require(${JSON.stringify(n)})`).join(', ')
    // At the top of the module, where `require` is not the file's own variable of that name.
    const bundled = `const __bundledRequire = ((table) => (id) => { if (!table[id]) throw Object.assign(new Error(\`Cannot find module '\${id}' (not bundled)\`), {code: 'MODULE_NOT_FOUND'}); return table[id]() })({${table}});\n`
    text = bundled + text.replaceAll('createRequire(import.meta.url)', '__bundledRequire')
  }
  const url = `file://${SEA_ROOT}/${relative(root, path).split('\\').join('/')}`
  return text.replaceAll('import.meta.url', JSON.stringify(url))
}

async function bundle() {
  for (const needed of ['dist/src/commands/index.js', 'oclif.manifest.json']) if (!existsSync(join(root, needed))) fail(`${needed} is missing: run npm run build first`)
  const pjson = seaPjson()
  const modules = oclifModules(pjson.oclif)
  for (const m of modules) if (!existsSync(join(root, m))) fail(`package.json oclif names ${m}, which npm run build did not write`)
  const ids = await commandIds(pjson.oclif.commands)
  const virtual = {
    'kubeferry:root': `module.exports = ${JSON.stringify(SEA_ROOT)}`,
    // The explicit map, each command loaded when oclif first asks for it (the map module itself imports them all).
    'kubeferry:commands': `const COMMANDS = {}\n${ids
      .map((id) => `Object.defineProperty(COMMANDS, ${JSON.stringify(id)}, {enumerable: true, get: () => require(${JSON.stringify(join(root, 'dist', 'src', 'commands', `${id}.js`))}).default})`)
      .join('\n')}\nmodule.exports = {${pjson.oclif.commands.identifier}: COMMANDS}`,
    'kubeferry:pjson': `module.exports = ${JSON.stringify(pjson)}`,
    'kubeferry:embedded': `module.exports = ${JSON.stringify(embeddedFiles())}`,
    'kubeferry:oclif-modules': `module.exports = {${modules
      .map((m) => `${JSON.stringify(m)}: () => require(${JSON.stringify(m === commandsTarget(pjson) ? 'kubeferry:commands' : join(root, m))})`)
      .join(',\n')}}`,
  }
  const distSrc = join(root, 'dist', 'src') + '/'
  const plugin = {
    name: 'kubeferry-sea',
    setup(b) {
      b.onResolve({filter: /^kubeferry:/}, (args) => ({path: args.path, namespace: 'kubeferry'}))
      b.onLoad({filter: /.*/, namespace: 'kubeferry'}, (args) => ({contents: virtual[args.path], loader: 'js', resolveDir: root}))
      // oclif's loader of modules by path → ours (module-loader.cjs).
      b.onResolve({filter: /(^|\/)module-loader$/}, (args) =>
        args.importer.includes(`${join('@oclif', 'core', 'lib')}/`) ? {path: join(here, 'module-loader.cjs')} : undefined,
      )
      b.onLoad({filter: /\.js$/}, (args) => (args.path.startsWith(distSrc) ? {contents: bundleable(args.path), loader: 'js'} : undefined))
    },
  }
  mkdirSync(out, {recursive: true})
  const common = {bundle: true, platform: 'node', format: 'cjs', target: `node${NODE.version.split('.')[0]}`, minify: true, keepNames: true, legalComments: 'none', logLevel: 'warning', plugins: [plugin]}
  const script = join(out, 'kubeferry.cjs')
  const result = await build({
    ...common,
    entryPoints: [join(here, 'entry.mjs')],
    outfile: script,
    // oclif looks for the TypeScript compiler to run .ts sources (never, here: entry.mjs turns that off).
    external: ['typescript'],
    metafile: true,
  })
  const boot = join(out, 'boot.cjs')
  const booted = await build({...common, entryPoints: [join(here, 'boot.cjs')], outfile: boot})
  if (result.errors.length || booted.errors.length) fail('esbuild failed')
  const ascii = asciiOnly(readFileSync(script, 'utf8'))
  if (ascii instanceof Error) fail(`${relative(root, script)}: ${ascii.message} (scripts/package/ascii.mjs)`)
  writeFileSync(script, ascii)
  writeFileSync(join(out, 'kubeferry.meta.json'), JSON.stringify(result.metafile))
  return {script, boot}
}

/** The official node binary of `arch`, from its npm package (cached under ~/.cache/kubeferry-sea). */
function nodeBinary(arch) {
  const {package: name, integrity} = NODE.targets[arch]
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kubeferry-sea', `${name}-${NODE.version}`)
  const binary = join(cache, 'package', 'bin', 'node')
  if (existsSync(binary)) return binary
  mkdirSync(cache, {recursive: true})
  console.error(`package: npm pack ${name}@${NODE.version}`)
  const [packed] = JSON.parse(execFileSync('npm', ['pack', `${name}@${NODE.version}`, '--json', '--pack-destination', cache], {encoding: 'utf8'}))
  const tarball = join(cache, packed.filename)
  const actual = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`
  if (actual !== integrity) fail(`${name}@${NODE.version}: integrity ${actual} is not the pinned ${integrity} (scripts/package/node.json)`)
  execFileSync('tar', ['-xzf', tarball, '-C', cache, 'package/bin/node'])
  rmSync(tarball)
  return binary
}

/** How to run `binary` here: directly on its own architecture, under qemu-user on another, or undefined. */
function runner(arch, binary) {
  if (arch === HOST_ARCH) return [binary]
  const qemu = QEMU[arch]
  if (!qemu || !existsSync(qemu.sysroot)) return undefined
  try {
    execFileSync(qemu.binary, ['-L', qemu.sysroot, binary, '--version'], {stdio: 'ignore'})
    return [qemu.binary, '-L', qemu.sysroot, binary]
  } catch {
    return undefined
  }
}

/**
 * The environment of the runs that make and check the code cache: without NODE_OPTIONS, whose V8 flags would be
 * part of what the cache must match (and an operator's runs do not have them).
 */
function cacheEnv(extra = {}) {
  const {NODE_OPTIONS: _options, ...env} = process.env
  return {...env, ...extra}
}

/** The code cache of `script` for `arch`'s node (make-cache.cjs), or undefined where that node cannot run here. */
function codeCache(arch, run, script) {
  if (!run) return undefined
  const cache = join(out, `kubeferry-linux-${arch}.cache`)
  step(run[0], [...run.slice(1), join(here, 'make-cache.cjs'), script, cache], cacheEnv())
  return cache
}

function executable(arch, {script, boot}) {
  const binary = nodeBinary(arch)
  const run = runner(arch, binary)
  const cache = codeCache(arch, run, script)
  // Without a way to run this architecture's node, the blob is made by this machine's node of the same release (a
  // blob without code cache is the same on every platform).
  const maker = run ?? runner(HOST_ARCH, nodeBinary(HOST_ARCH))
  const blob = join(out, `kubeferry-linux-${arch}.blob`)
  const config = join(out, `sea-config-${arch}.json`)
  const assets = {'kubeferry.cjs': script, ...(cache ? {'kubeferry.cache': cache} : {})}
  writeFileSync(config, JSON.stringify({main: boot, output: blob, disableExperimentalSEAWarning: true, assets}, null, 2))
  step(maker[0], [...maker.slice(1), '--experimental-sea-config', config])
  const target = join(out, `kubeferry-linux-${arch}`)
  rmSync(target, {force: true})
  copyFileSync(binary, target)
  chmodSync(target, 0o755)
  step(process.execPath, [join(root, 'node_modules', 'postject', 'dist', 'cli.js'), target, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL])
  for (const made of [blob, config, cache]) if (made) rmSync(made)
  if (run) checkCodeCache(target, [...run.slice(0, -1), target]) // the runner (qemu or none) with the file for its node
  const size = statSync(target).size
  console.log(`package: ${relative(root, target)} (${(size / 2 ** 20).toFixed(1)} MiB, node ${NODE.version}, ${cache ? 'code cache' : 'WITHOUT code cache: no way to run its node here'}${run && run[0] !== binary ? ', made under qemu' : ''})`)
}

/** The file must accept its code cache (boot.cjs says so under DEBUG): a rejected one costs every start. */
function checkCodeCache(target, command) {
  const ran = spawnSync(command[0], [...command.slice(1), '--help'], {env: cacheEnv({DEBUG: 'kubeferry:sea'}), encoding: 'utf8'})
  if (ran.status !== 0) fail(`${relative(root, target)} --help failed:\n${ran.stderr || ran.error?.message}`)
  if (!ran.stderr.includes('kubeferry:sea code cache accepted')) fail(`${relative(root, target)} does not accept its code cache: ${ran.stderr.trim() || '(it said nothing)'}`)
}

const {arches} = parseArgs(process.argv.slice(2))
const bundled = await bundle()
console.log(`package: ${relative(root, bundled.script)} (${(statSync(bundled.script).size / 2 ** 10).toFixed(0)} KiB)`)
for (const arch of arches) executable(arch, bundled)
