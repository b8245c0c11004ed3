/** Hints for a damaged bundle, shared by push's error rewriting and verify's report. */
import {basename, dirname} from 'node:path'
import {isPartedPath, partsCheckCommand} from '../bundle/parts.js'
import {parsePartPath} from '../bundle/parts-naming.js'

/** What to do about a damaged bundle (verify's own hint: it has already listed every problem). */
export function damagedBundleHint(bundle: string): string {
  if (isPartedPath(bundle)) {
    const parts = {bundlePath: parsePartPath(bundle)?.bundlePath ?? bundle}
    return `a part of the bundle is damaged: find it with \`${partsCheckCommand(parts)}\` and copy that part again from its source, or rebuild the bundle with kubeferry create`
  }
  const dir = dirname(bundle)
  const check = `${dir === '.' ? '' : `cd ${dir} && `}sha256sum -c ${basename(bundle)}.sha256`
  return `the bundle is damaged: copy it again from its source and check the copy (${check}), or rebuild it with kubeferry create`
}

export function corruptBundleHint(bundle: string): string {
  return `${damagedBundleHint(bundle)}; \`kubeferry verify ${bundle}\` lists every problem`
}
