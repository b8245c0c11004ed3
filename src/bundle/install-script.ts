/**
 * install.sh for a bundle, from its metadata alone: the shell parts in src/bundle/install/ (see install-template.ts)
 * with the import plan `kubeferry load` uses (import-plan.ts) and the bundle's exact entry list (contract.ts)
 * rendered in as data lines; the shell only follows them.
 *
 * The entry list (`entry|<path>|<size>|<sha256 or ->`) is every entry the writer writes for this metadata, with the
 * sha256 of the small files the runtimes read (index.json, manifest.json, the docker fragments; also oci-layout and
 * bundle.json). The script refuses a tar whose listing is anything else (an extra, missing, duplicate, oversized or
 * non-regular entry) and checks those hashes before any runtime sees the tar. The script's own entry has no hash
 * (it cannot hold its own), only its size.
 *
 * Import speed (bench/install.sh compares it with a plain `ctr images import`): on containerd with BUNDLE.sha256,
 * ctr reads the bundle through a pipe while the whole file is hashed; the pipe holds back the archive's end until
 * the hash matches, so ctr, which creates images only after the whole archive, creates none from a bundle that
 * fails the checksum (the blobs it stored meanwhile are collected at once). Other ctr calls are few and concurrent.
 */
import {entriesBeforeInstallScript, installListing} from './contract.js'
import {fillInstallScript, type ListedEntry} from './install-template.js'
import type {BundleMetadata} from './layout.js'

export type ExpectedEntry = ListedEntry

/**
 * Every entry of the bundle the writer writes for `meta`, sorted by path. `installScriptSize` is the byte size of
 * kubeferry/install.sh (the rendered script itself). Throws when the blobs the images name do not add up to
 * `meta.blobs` (the script would then refuse its own bundle).
 */
export function expectedEntries(meta: BundleMetadata, installScriptSize: number): ExpectedEntry[] {
  return installListing(entriesBeforeInstallScript(meta), installScriptSize)
}

/** The install.sh of a bundle of `meta` (the writer makes the same bytes through contract.ts). */
export function renderInstallScript(meta: BundleMetadata): string {
  const before = entriesBeforeInstallScript(meta)
  return fillInstallScript(meta, (self) => installListing(before, self))
}
