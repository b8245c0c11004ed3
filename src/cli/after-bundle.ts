/**
 * The steps `create` takes once the bundle is complete (--with-tool, --sign-key). When one fails, the bundle and its
 * .sha256 and install.sh are still good: the message says so first, so that nobody deletes or rebuilds a bundle that
 * took an hour to download, and the hint says how to finish only the step that failed.
 */
import {describeError, KubeferryError} from '../oci/errors.js'
import {fromFileSystemError} from './fs-errors.js'

export async function afterBundleWritten<T>(bundle: string, step: string, finish: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    const cause = fromFileSystemError(error) ?? (error instanceof KubeferryError ? error : new KubeferryError('INTERNAL', describeError(error)))
    throw new KubeferryError(cause.code, `the bundle ${bundle} is written and complete (with its .sha256 and install.sh), but ${step} failed: ${cause.message}`, {
      hint: `${cause.hint ? `${cause.hint}; then ` : ''}${finish}`,
      cause: error,
      exitCode: cause.exitCode,
    })
  }
}

/** A word the shell takes as it is: a path with spaces or quotes is put in single quotes. */
export function shellWord(text: string): string {
  return /^[\w./:=@%+,-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`
}

/**
 * The command that signs a written bundle alone, as create --sign-key would have: the same key and passphrase flag
 * (an encrypted key fails without it), a bundle in parts by its first part (what `kubeferry sign` takes).
 */
export function signAloneCommand(bundle: string, key: string, flags: {'passphrase-env'?: string; 'passphrase-stdin'?: boolean}): string {
  const passphrase = flags['passphrase-env'] ? ` --passphrase-env ${shellWord(flags['passphrase-env'])}` : flags['passphrase-stdin'] ? ' --passphrase-stdin' : ''
  return `kubeferry sign ${shellWord(bundle)} --key ${shellWord(key)}${passphrase}`
}
