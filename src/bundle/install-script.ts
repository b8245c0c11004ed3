/**
 * Renders `install.sh` from the same BundleMetadata `kubeferry load` uses. (Owned by the import work of issue 6;
 * this first version only refuses to run so that bundles are never shipped with a script that pretends to work.)
 */
import type {BundleMetadata} from './layout.js'

export function renderInstallScript(meta: BundleMetadata): string {
  return `#!/bin/sh\n# kubeferry install script for ${meta.images.length} images\necho "install.sh: not implemented in this kubeferry version; use 'kubeferry load'" >&2\nexit 3\n`
}
