/**
 * The publishers' key-based cosign signatures of one image, checked offline (issue 19 d4). A cosign `.sig` artifact
 * (tag `sha256-<hex>.sig` of the digest it is about; bundle.json kind `signature`) is an image manifest with one layer
 * per signature: the layer is the simple-signing payload (JSON naming `critical.image.docker-manifest-digest` and
 * `critical.type` "cosign container image signature"), its `dev.cosignproject.cosign/signature` annotation the
 * base64 signature over the payload's raw bytes (ECDSA: ASN.1 DER over SHA-256, as cosign makes it; RSA PKCS#1 v1.5
 * SHA-256; Ed25519 over the bytes). A layer that also carries `dev.sigstore.cosign/certificate` is keyless (Fulcio
 * certificate, Rekor), and so is a referrer holding a Sigstore bundle: both are checked by keyless-checks.ts.
 */
import {verify as cryptoVerify} from 'node:crypto'
import {KubeferryError, isKubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {Descriptor} from '../oci/types.js'
import {walkTree} from '../oci/walk.js'
import type {BundleArtifact} from '../bundle/layout.js'
import {COSIGN_CERTIFICATE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION, SIGSTORE_BUNDLE_MEDIA_TYPES} from '../bundle/inspect-artifacts.js'
import type {CosignKey} from './cosign-keys.js'
import type {SignatureCheck, SignatureSource} from './signature-check.js'
import {checkBundleReferrer, checkLegacyKeyless, type KeylessContext} from './keyless-checks.js'

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature'
/** A simple-signing payload is a few hundred bytes; a larger layer is not read (a signature layer is no place for data). */
export const MAX_PAYLOAD_BYTES = 64 * 1024

/** A small layer's bytes (a payload, a Sigstore bundle), at most `max`, verified by digest as they are read. */
async function readSmallLayer(source: SignatureSource, layer: Descriptor, max = MAX_PAYLOAD_BYTES): Promise<Buffer> {
  if (layer.size > max) throw new KubeferryError('BUNDLE_INVALID', `the layer is ${layer.size} bytes, more than the ${max} a signature layer may be`)
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of (await source.blob(layer)) as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > max) throw new KubeferryError('BUNDLE_INVALID', `the layer is larger than ${max} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** The digest a simple-signing payload names, when it is a cosign image signature. */
function signedDigest(payload: Buffer): string | undefined {
  const parsed = parsePayload(payload)
  return typeof parsed !== 'string' && parsed.type === COSIGN_SIGNATURE_TYPE ? parsed.digest : undefined
}

/** The digest and type a simple-signing payload names, or why it is not one. */
function parsePayload(bytes: Buffer): {digest?: string; type?: string} | string {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as {critical?: {image?: {'docker-manifest-digest'?: unknown}; type?: unknown}}
    const digest = value?.critical?.image?.['docker-manifest-digest']
    const type = value?.critical?.type
    return {...(typeof digest === 'string' ? {digest} : {}), ...(typeof type === 'string' ? {type} : {})}
  } catch {
    return 'its payload is not JSON (not a simple-signing payload)'
  }
}

/** Whether `sig` is `key`'s cosign signature over `payload`. */
export function verifyCosign(key: CosignKey, payload: Buffer, sig: Buffer): boolean {
  try {
    return cryptoVerify(key.kind === 'ed25519' ? null : 'sha256', payload, key.key, sig)
  } catch {
    return false
  }
}

/** Check one signature layer against `keys` (none: key-based signatures are only reported), or keylessly. */
async function checkLayer(source: SignatureSource, artifact: BundleArtifact, layer: Descriptor, index: number, keys: CosignKey[], keyless: KeylessContext): Promise<SignatureCheck> {
  const base = {signature: artifact.digest, layer: index + 1, subject: artifact.subject}
  const refused = (reason: string): SignatureCheck => ({...base, outcome: 'refused', reason})
  const annotations = layer.annotations ?? {}
  if (annotations[COSIGN_CERTIFICATE_ANNOTATION]) {
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) return refused(`layer ${index + 1} is ${layer.mediaType}, not a simple-signing payload`)
    return checkLegacyKeyless(base, layer, (l, max) => readSmallLayer(source, l, max), MAX_PAYLOAD_BYTES, signedDigest, keyless)
  }
  const signature = annotations[COSIGN_SIGNATURE_ANNOTATION]
  if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) return refused(`layer ${index + 1} is ${layer.mediaType}, not a simple-signing payload`)
  if (!signature) return refused(`layer ${index + 1} has no ${COSIGN_SIGNATURE_ANNOTATION} annotation (no signature)`)
  if (keys.length === 0) return refused('signed with a key, but no key is allowed for this image (its policy names keyless identities only)')
  let payload: Buffer
  try {
    payload = await readSmallLayer(source, layer)
  } catch (error) {
    if (!isKubeferryError(error)) throw error
    return refused(`its payload ${layer.digest} cannot be read: ${error.message}`)
  }
  const sig = Buffer.from(signature, 'base64')
  const key = keys.find((k) => verifyCosign(k, payload, sig))
  if (!key) {
    // Cryptographically one case: the payload was altered after signing, or someone else's key signed it.
    return refused(`does not verify with ${keys.map((k) => k.name).join(', ')}: the payload was altered after signing (tampered) or it was signed by another, untrusted key`)
  }
  const parsed = parsePayload(payload)
  if (typeof parsed === 'string') return refused(`signed by ${key.name}, but ${parsed}`)
  if (parsed.type !== COSIGN_SIGNATURE_TYPE) return refused(`signed by ${key.name}, but its payload's critical.type is ${JSON.stringify(parsed.type)}, not "${COSIGN_SIGNATURE_TYPE}"`)
  if (parsed.digest !== artifact.subject) return refused(`signed by ${key.name}, but for another digest: its payload names ${parsed.digest ?? 'no digest'}, the signature is carried for ${artifact.subject}`)
  return {...base, outcome: 'verified', key: {name: key.name, keyid: key.keyid}}
}

/** A referrer holding a Sigstore bundle (cosign's new bundle format). */
const isBundleReferrer = (a: BundleArtifact): boolean => a.kind === 'referrer' && SIGSTORE_BUNDLE_MEDIA_TYPES.has(a.artifactType ?? '')

/**
 * Every signature layer of every carried `.sig` artifact of an image, each checked against `keys` (or keylessly), and
 * every Sigstore bundle carried as a referrer, checked keylessly.
 */
export async function checkSignatures(source: SignatureSource, image: string, artifacts: BundleArtifact[], keys: CosignKey[], keyless: KeylessContext = {identities: []}): Promise<SignatureCheck[]> {
  const out: SignatureCheck[] = []
  for (const artifact of artifacts.filter((a) => a.kind === 'signature' || isBundleReferrer(a))) {
    let layers: Descriptor[]
    try {
      const node = await walkTree({readManifest: (desc) => source.manifest(desc.digest)}, {digest: artifact.digest, size: artifact.size, mediaType: artifact.mediaType}, {what: `${image}: signature ${artifact.tag ?? artifact.digest}`, select: () => []})
      if (!node?.manifest) throw new KubeferryError('BUNDLE_INVALID', node ? 'it is an index, not a signature manifest' : 'its manifest is missing')
      layers = node.manifest.layers
    } catch (error) {
      if (!isKubeferryError(error)) throw error
      out.push({signature: artifact.digest, layer: 0, subject: artifact.subject, outcome: 'refused', reason: error.message})
      continue
    }
    if (artifact.kind === 'referrer') out.push(...(await checkBundleReferrer(source, artifact, layers, (l, max) => readSmallLayer(source, l, max), keyless)))
    else for (const [i, layer] of layers.entries()) out.push(await checkLayer(source, artifact, layer, i, keys, keyless))
  }
  return out
}
