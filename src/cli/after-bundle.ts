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
