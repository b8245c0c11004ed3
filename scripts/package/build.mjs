#!/usr/bin/env node
/**
 * `npm run package`: dist/sea/kubeferry-linux-amd64 and dist/sea/kubeferry-linux-arm64, Node.js single-executable
 * applications (https://nodejs.org/api/single-executable-applications.html), from the build in dist/ (npm run build
 * runs first):
 * 1. esbuild bundles scripts/package/entry.mjs, the commands (explicit map) and every dependency into one CommonJS
 *    script, dist/sea/kubeferry.cjs; oclif's module loader is swapped for module-loader.cjs, and the files the code
 *    reads beside itself are embedded (see entry.mjs).
 * 2. Per architecture, the official Node.js binary of node.json's release, from its npm package (npm pack, integrity
 *    checked), makes the blob (`node --experimental-sea-config`) with a start-up snapshot: the script runs once at
 *    build time and the heap it leaves (oclif loaded and compiled) is what every run starts from (--no-snapshot: a V8
 *    code cache of the script instead). A snapshot or code cache loads only on the platform that made it: the arm64
 *    blob is made by the arm64 node under qemu-user (Debian qemu-user-static and libc6-arm64-cross,
 *    libstdc++6-arm64-cross), or, where that cannot run, by this machine's node without either. postject injects the
 *    blob into a copy of the binary.
 * What a snapshot freezes: whatever a module evaluated at build time read from its surroundings. Only entry.mjs and
 * oclif (with its dependencies) are evaluated then; kubeferry's own modules, undici and listr2 load when a command
 * needs them. oclif's terminal width is made live again (SCREEN_FROZEN below) and DEBUG is re-read (entry.mjs); what
 * stays as at build time: ansis's colour support (oclif's help has no bold headings on a terminal), clean-stack's
 * home directory, and oclif's spinner choice (kubeferry does not use it).
 * Usage: node scripts/package/build.mjs [--arch amd64|arm64 …] [--no-snapshot]   (default: both architectures)
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {build} from 'esbuild'

const root = fileURLToPath(new URL('../..', import.meta.url))
const here = join(root, 'scripts', 'package')
const out = join(root, 'dist', 'sea')
const NODE = JSON.parse(readFileSync(join(here, 'node.json'), 'utf8'))
/** Where the embedded files seem to be, for the code that reads them (a directory that does not exist). */
const SEA_ROOT = '/kubeferry.sea'
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const QEMU = {arm64: {binary: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu'}}

const fail = (message) => {
  console.error(`package: ${message}`)
  process.exit(1)
}

function parseArgs(argv) {
  const arches = []
  let snapshot = true
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--arch') arches.push(argv[++i])
    else if (argv[i] === '--no-snapshot') snapshot = false
    else fail(`unknown argument ${argv[i]} (usage: build.mjs [--arch amd64|arm64 …] [--no-snapshot])`)
  }
  for (const arch of arches) if (!NODE.targets[arch]) fail(`unknown --arch ${arch} (one of ${Object.keys(NODE.targets).join(', ')})`)
  return {arches: arches.length ? arches : Object.keys(NODE.targets), snapshot}
}

/** Run a build step; its output is shown only when it fails (node and postject are chatty). */
function step(file, args) {
  try {
    execFileSync(file, args, {stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8'})
  } catch (error) {
    fail(`${[file, ...args].join(' ')} failed:\n${error.stdout ?? ''}${error.stderr ?? error.message}`)
  }
}

/**
 * oclif's screen.js reads the terminal width once, when it is loaded: in a snapshot that would be the build's. Read
 * it when asked instead.
 */
const SCREEN_FROZEN = `const columns = Number.parseInt(process.env.OCLIF_COLUMNS, 10) || settings_1.settings.columns;
exports.stdtermwidth = columns || termwidth(process.stdout);
exports.errtermwidth = columns || termwidth(process.stderr);`
const SCREEN_LIVE = `const columns = () => Number.parseInt(process.env.OCLIF_COLUMNS, 10) || settings_1.settings.columns;
Object.defineProperty(exports, 'stdtermwidth', {enumerable: true, get: () => columns() || termwidth(process.stdout)});
Object.defineProperty(exports, 'errtermwidth', {enumerable: true, get: () => columns() || termwidth(process.stderr)});`

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
      b.onLoad({filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]screen\.js$/}, (args) => {
        const text = readFileSync(args.path, 'utf8')
        if (!text.includes(SCREEN_FROZEN)) fail(`${args.path} changed: update SCREEN_FROZEN in scripts/package/build.mjs`)
        return {contents: text.replace(SCREEN_FROZEN, SCREEN_LIVE), loader: 'js'}
      })
      b.onLoad({filter: /\.js$/}, (args) => (args.path.startsWith(distSrc) ? {contents: bundleable(args.path), loader: 'js'} : undefined))
    },
  }
  mkdirSync(out, {recursive: true})
  const script = join(out, 'kubeferry.cjs')
  const result = await build({
    entryPoints: [join(here, 'entry.mjs')],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${NODE.version.split('.')[0]}`,
    minify: true,
    keepNames: true,
    legalComments: 'none',
    // oclif looks for the TypeScript compiler to run .ts sources (never, here: entry.mjs turns that off).
    external: ['typescript'],
    metafile: true,
    logLevel: 'warning',
    plugins: [plugin],
  })
  if (result.errors.length) fail('esbuild failed')
  writeFileSync(join(out, 'kubeferry.meta.json'), JSON.stringify(result.metafile))
  return script
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
  const own = {x64: 'amd64', arm64: 'arm64'}[process.arch]
  if (arch === own) return [binary]
  const qemu = QEMU[arch]
  if (!qemu || !existsSync(qemu.sysroot)) return undefined
  try {
    execFileSync(qemu.binary, ['-L', qemu.sysroot, binary, '--version'], {stdio: 'ignore'})
    return [qemu.binary, '-L', qemu.sysroot, binary]
  } catch {
    return undefined
  }
}

function executable(arch, script, snapshot) {
  const binary = nodeBinary(arch)
  const run = runner(arch, binary)
  // Without a way to run this architecture's node, the blob is made by this machine's node of the same release (a
  // blob without code cache is the same on every platform).
  const maker = run ?? runner({x64: 'amd64', arm64: 'arm64'}[process.arch], nodeBinary({x64: 'amd64', arm64: 'arm64'}[process.arch]))
  const blob = join(out, `kubeferry-linux-${arch}.blob`)
  const config = join(out, `sea-config-${arch}.json`)
  const warm = !run ? {} : snapshot ? {useSnapshot: true} : {useCodeCache: true}
  writeFileSync(config, JSON.stringify({main: script, output: blob, disableExperimentalSEAWarning: true, ...warm}, null, 2))
  step(maker[0], [...maker.slice(1), '--experimental-sea-config', config])
  const target = join(out, `kubeferry-linux-${arch}`)
  rmSync(target, {force: true})
  copyFileSync(binary, target)
  chmodSync(target, 0o755)
  step(process.execPath, [join(root, 'node_modules', 'postject', 'dist', 'cli.js'), target, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL])
  rmSync(blob)
  rmSync(config)
  const size = statSync(target).size
  console.log(`package: ${relative(root, target)} (${(size / 2 ** 20).toFixed(1)} MiB, node ${NODE.version}, ${run ? (snapshot ? 'start-up snapshot' : 'code cache') : 'WITHOUT snapshot or code cache: no way to run its node here'}${run && run[0] !== binary ? ', made under qemu' : ''})`)
}

const {arches, snapshot} = parseArgs(process.argv.slice(2))
const script = await bundle()
console.log(`package: ${relative(root, script)} (${(statSync(script).size / 2 ** 10).toFixed(0)} KiB)`)
for (const arch of arches) executable(arch, script, snapshot)
