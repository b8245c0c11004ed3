/** The single files of `npm run package` (dist/sea/), for the tests of test/sea/. */
import {spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import type {ExecutionContext} from 'ava'
import {projectRoot} from '../helpers/cli.js'

export type Arch = 'amd64' | 'arm64'
export const ARCHES: Arch[] = ['amd64', 'arm64']

/** The Node.js release the files are built on (scripts/package/node.json). */
export const NODE_VERSION = (JSON.parse(readFileSync(join(projectRoot, 'scripts', 'package', 'node.json'), 'utf8')) as {version: string}).version
export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {version: string}).version

export const seaPath = (arch: Arch): string => join(projectRoot, 'dist', 'sea', `kubeferry-linux-${arch}`)

const inCI = (): boolean => process.env.CI === 'true'

/**
 * The single file of `arch`, or undefined when it was not built: then the test has failed (CI=true: scripts/test.sh
 * builds them) or logged why it checked nothing and passed.
 */
export function needSea(t: ExecutionContext, arch: Arch): string | undefined {
  const path = seaPath(arch)
  if (existsSync(path)) return path
  const why = `${path} is missing: run npm run package`
  if (inCI()) t.fail(why)
  else {
    t.log(`SKIPPED: ${why}`)
    t.pass()
  }
  return undefined
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

export function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

/** ELF e_machine of an executable: 62 x86-64, 183 AArch64. */
export const ELF_MACHINE: Record<Arch, number> = {amd64: 62, arm64: 183}

export function elfMachine(path: string): number | undefined {
  const head = readFileSync(path).subarray(0, 20)
  if (!head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return undefined
  return head.readUInt16LE(18)
}

/** How to run an arm64 file here: Debian's qemu-user-static with the arm64 C library (libc6-arm64-cross), or why not. */
export function arm64Runner(): {file: string; args: string[]} | {missing: string} {
  const qemu = ['/usr/bin/qemu-aarch64-static', '/usr/bin/qemu-aarch64'].find((f) => existsSync(f))
  const sysroot = '/usr/aarch64-linux-gnu'
  if (!qemu) return {missing: 'qemu-user-static is not installed'}
  if (!existsSync(join(sysroot, 'lib', 'ld-linux-aarch64.so.1'))) return {missing: `no arm64 C library under ${sysroot} (libc6-arm64-cross, libstdc++6-arm64-cross)`}
  return {file: qemu, args: ['-L', sysroot]}
}

/** The SEA blob postject injected: an ELF note named NODE_SEA_BLOB whose data starts with Node's SEA magic. */
export interface SeaBlob {
  /** The SEA flags word (1: no experimental warning, 2: start-up snapshot, 4: code cache of the main, 8: assets). */
  flags: number
  size: number
  /** The bundled script's text is in the blob (a string only scripts/package/module-loader.cjs has). */
  hasKubeferryCode: boolean
  /** postject flipped the fuse Node.js checks before it looks for a blob. */
  fuseSet: boolean
}

const SEA_MAGIC = 0x0143da20
const NOTE_NAME = Buffer.from('NODE_SEA_BLOB\0\0\0')

export function seaBlob(path: string): SeaBlob | undefined {
  const file = readFileSync(path)
  const fuseSet = file.includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1')
  for (let at = file.indexOf(NOTE_NAME); at !== -1; at = file.indexOf(NOTE_NAME, at + 1)) {
    // Note header before the name: namesz (14), descsz, type.
    if (at < 12 || file.readUInt32LE(at - 12) !== 14 || file.readUInt32LE(at + 16) !== SEA_MAGIC) continue
    const size = file.readUInt32LE(at - 8)
    const data = file.subarray(at + 16, at + 16 + size)
    return {flags: data.readUInt32LE(4), size, hasKubeferryCode: data.includes('kubeferry single file: no bundled module for'), fuseSet}
  }
  return undefined
}
