import {KubeferryError} from './errors.js'
import {formatPlatform, normalizePlatform, parsePlatform, platformMatches} from './platform.js'
import type {Descriptor, ImageIndex, Platform} from './types.js'

/** Index entries that are runnable images: attestation manifests (`unknown/unknown`) and entries without a platform are not. */
export function imagePlatformEntries(index: ImageIndex): Descriptor[] {
  return index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown' && d.platform.architecture !== 'unknown')
}

/** The platforms an index offers, as `os/arch[/variant]`, in index order, without duplicates. */
export function indexPlatforms(index: ImageIndex): string[] {
  return [...new Set(imagePlatformEntries(index).map((d) => formatPlatform(normalizePlatform(d.platform as Platform))))]
}

/**
 * The index entries for the wanted platforms, in the order asked (arm64 ≡ arm64/v8; a wanted
 * platform without variant takes the first matching entry, preferring one without a variant or the
 * default v8/v7). An empty `platforms` list means every image platform. A wanted platform the index
 * lacks throws NOT_FOUND naming the image (or is skipped with `allowMissing`).
 */
export function selectPlatformManifests(
  index: ImageIndex,
  platforms: Array<Platform | string>,
  options: {image?: string; allowMissing?: boolean} = {},
): Descriptor[] {
  const entries = imagePlatformEntries(index)
  if (platforms.length === 0) return entries
  const chosen: Descriptor[] = []
  for (const item of platforms) {
    const wanted = typeof item === 'string' ? parsePlatform(item) : normalizePlatform(item)
    const matches = entries.filter((d) => platformMatches(wanted, d.platform))
    const best = matches.find((d) => normalizePlatform(d.platform as Platform).variant === wanted.variant) ?? matches[0]
    if (!best) {
      if (options.allowMissing) continue
      const offered = indexPlatforms(index)
      throw new KubeferryError('NOT_FOUND', `${options.image ? `image ${options.image}` : 'the image index'} has no ${formatPlatform(wanted)} manifest (it offers ${offered.length > 0 ? offered.join(', ') : 'no platforms'})`, {
        hint: 'choose one of the offered platforms with --platform',
      })
    }
    if (!chosen.some((d) => d.digest === best.digest)) chosen.push(best)
  }
  return chosen
}
