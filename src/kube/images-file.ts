import {readFile} from 'node:fs/promises'
import {KubeferryError} from '../oci/errors.js'
import type {ManifestImage} from './manifests.js'

/** `--images-file`: one reference per line; blank lines and `#` comments (whole line or after whitespace) ignored. */
export async function readImagesFile(path: string): Promise<ManifestImage[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new KubeferryError('IO', `cannot read --images-file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {hint: 'give a readable text file with one image reference per line', cause: error})
  }
  const out: ManifestImage[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line !== '') out.push({image: line, source: `${path}:${i + 1}`})
  })
  return out
}
