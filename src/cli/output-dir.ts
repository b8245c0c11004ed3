/**
 * An output directory made ready before anything is written into it, or one error that says why it cannot be.
 * Node's recursive mkdir reports a read-only file system as ENOENT ("no such file or directory" for a directory
 * that exists), which told the operator nothing: the nearest existing ancestor is asked instead.
 */
import {constants} from 'node:fs'
import {access, mkdir, stat} from 'node:fs/promises'
import {dirname, resolve} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {errnoReason, fromFileSystemError} from './fs-errors.js'

async function nearestExisting(path: string): Promise<string> {
  let probe = resolve(path)
  for (;;) {
    try {
      await stat(probe)
      return probe
    } catch {
      const parent = dirname(probe)
      if (parent === probe) return probe
      probe = parent
    }
  }
}

/** Why `dir` cannot be written, naming `what` (e.g. "--output directory node-config/"), or undefined if it can. */
async function whyNotWritable(dir: string, what: string): Promise<KubeferryError | undefined> {
  const base = await nearestExisting(dir)
  const info = await stat(base).catch(() => undefined)
  if (info && !info.isDirectory()) {
    return new KubeferryError('IO', `cannot create ${what}: ${base} is a file, not a directory`, {hint: 'choose a path whose parts are directories, or remove that file'})
  }
  try {
    await access(base, constants.W_OK)
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? ''
    const where = base === resolve(dir) ? '' : ` (${base} is the nearest part that exists)`
    return new KubeferryError('IO', `cannot write ${what}: ${errnoReason(code) ?? code}${where}`, {
      hint: code === 'EROFS' ? `choose a directory on a writable file system (e.g. under /tmp or your home), or remount ${base} read-write` : `check the owner and permissions of ${base} (ls -ld ${base}), or choose another directory`,
      cause: error,
    })
  }
}

/** mkdir -p `dir`, checked for writing; `what` names it in errors. */
export async function prepareOutputDir(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, {recursive: true})
  } catch (error) {
    throw (await whyNotWritable(dir, what)) ?? fromFileSystemError(error) ?? error
  }
  const refused = await whyNotWritable(dir, what)
  if (refused) throw refused
}
