import {realpath} from 'node:fs/promises'

/**
 * Each bundle file once (`serve b.tar ./b.tar`, a symlink to it): a path naming a file already given is dropped, so
 * the bundle is not checked twice nor its images counted twice. A path that cannot be resolved is kept as given:
 * the bundle checks refuse it in their own words.
 */
export async function uniqueBundles(paths: string[]): Promise<{bundles: string[]; repeated: Array<{path: string; sameAs: string}>}> {
  const seen = new Map<string, string>()
  const bundles: string[] = []
  const repeated: Array<{path: string; sameAs: string}> = []
  for (const path of paths) {
    const real = await realpath(path).catch(() => undefined)
    const first = real === undefined ? undefined : seen.get(real)
    if (first !== undefined) {
      repeated.push({path, sameAs: first})
      continue
    }
    if (real !== undefined) seen.set(real, path)
    bundles.push(path)
  }
  return {bundles, repeated}
}
