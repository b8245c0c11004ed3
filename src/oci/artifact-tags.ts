/**
 * The tags that name artifacts about a digest (issue 19): cosign's scheme (`sha256-<hex>.sig`, `.att`, `.sbom`) and
 * the OCI 1.1 referrers tag schema (`sha256-<hex>`, an index of a digest's referrers on registries without the
 * referrers API). One rule for create's lookups, push and serve.
 */
import type {Digest} from './digest.js'

/** `sha256:abc…` → `sha256-abc…`, or with a suffix `sha256-abc….sig`. */
export function digestTag(digest: Digest, suffix = ''): string {
  return `${digest.replace(':', '-')}${suffix ? `.${suffix}` : ''}`
}
