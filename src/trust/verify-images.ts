/**
 * The publishers' signatures of every image of a bundle (or of create's plan, before it is written) held against the
 * image policy (image-policy.ts), offline: what is read is the carried `.sig` artifacts (cosign.ts). Per image:
 *  - verified: a valid signature by an allowed key or keyless identity on the image's own digest (index or manifest),
 *    or on each carried platform's manifest; keyless ones against the trusted root (--trusted-root, else the one the
 *    bundle carries: trusted-root.ts);
 *  - not checked: no policy entry and no --cosign-key, or an entry that names keyless identities only, a keyless
 *    signature claiming one of them carried, and no trusted root to check it with (it is said, never passed);
 *  - refused: anything else the policy covers (no signature, only signatures that do not hold), each reason named.
 */
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {ImageSource} from '../oci/source.js'
import {BundleReader} from '../bundle/reader.js'
import {BundleSource} from '../bundle/source.js'
import type {BundleImage} from '../bundle/layout.js'
import type {BundlePlan} from '../bundle/plan.js'
import {checkSignatures} from './cosign.js'
import type {SignatureCheck, SignatureSource} from './signature-check.js'
import {describeIdentity, entryFor, identityAllowed, type ImagePolicy, type ImagePolicyEntry} from './image-policy.js'
import type {KeylessVerifier} from './keyless.js'
import {MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot, type TrustedRootFile} from './trusted-root.js'

export interface ImageVerdict {
  name: string
  digest: Digest
  status: 'verified' | 'not-checked' | 'refused'
  /** The policy entry applied (its origin and pattern), absent when none. */
  policy?: {origin: string; match: string}
  /** verified: the keys (or keyless identities) whose signatures hold, and what they are about. */
  verifiedBy?: Array<{key?: string; keyid?: string; identity?: {subject: string; issuer: string}; subject: Digest}>
  /** not-checked and refused: why, in one line. */
  reason?: string
  signatures: SignatureCheck[]
}

export interface ImagesReport {
  /** Where keyless signatures were checked against (absent: no trusted root, keyless ones were not checked). */
  trustedRoot?: string
  verified: number
  notChecked: number
  refused: number
  images: ImageVerdict[]
}

const describe = (c: SignatureCheck): string => `signature ${c.signature}${c.layer > 0 ? ` (layer ${c.layer})` : ''}: ${c.reason ?? c.outcome}`
const names = (identity = ''): string[] => identity.split(' ').filter(Boolean)

function verdictOf(image: BundleImage, entry: ImagePolicyEntry, checks: SignatureCheck[]): Omit<ImageVerdict, 'name' | 'digest' | 'signatures' | 'policy'> {
  const verified = checks.filter((c) => c.outcome === 'verified')
  const subjects = new Set(verified.map((c) => c.subject))
  if (subjects.has(image.digest) || (image.platforms.length > 0 && image.platforms.every((p) => subjects.has(p.digest)))) {
    type By = NonNullable<ImageVerdict['verifiedBy']>[number]
    const by = [...new Map<string, By>(verified.map((c): [string, By] => (c.key ? [`${c.key.keyid} ${c.subject}`, {key: c.key.name, keyid: c.key.keyid, subject: c.subject}] : [`${c.identity} ${c.issuer} ${c.subject}`, {identity: {subject: c.identity!, issuer: c.issuer!}, subject: c.subject}]))).values()]
    return {status: 'verified', verifiedBy: by}
  }
  const keyless = checks.filter((c) => c.outcome === 'keyless')
  if (entry.keys.length === 0) {
    const allowed = entry.keyless.map(describeIdentity)
    // Unchecked (no trusted root): a certificate's SAN is only what it claims, and its issuer is not read.
    const claims = (n: string): boolean => entry.keyless.some((i) => identityAllowed([i], {subject: n, issuer: i.issuer}))
    const claiming = keyless.filter((c) => names(c.identity).some(claims))
    if (claiming.length > 0) return {status: 'not-checked', reason: `keyless, no trusted root: ${claiming.length} keyless signature(s) by ${[...new Set(claiming.map((c) => c.identity))].join(', ')} carried, not checked (give --trusted-root FILE, or build the bundle with create --trusted-root FILE)`}
    if (keyless.length > 0) return {status: 'refused', reason: `its keyless signatures name ${[...new Set(keyless.map((c) => c.identity))].join(', ')}, not an identity the policy allows (${allowed.join(' or ')})`}
    return {status: 'refused', reason: checks.length === 0 ? `no signature carried (the policy requires a keyless signature by ${allowed.join(' or ')})` : `no valid keyless signature by ${allowed.join(' or ')}: ${checks.map(describe).join('; ')}`}
  }
  if (checks.length === 0) return {status: 'refused', reason: 'no signature carried (a cosign .sig of the image or each of its platforms)'}
  const partial = verified.length > 0 ? `valid signatures cover only ${[...subjects].join(', ')}, not the image's digest or all its platforms; ` : ''
  return {status: 'refused', reason: `${partial}no valid signature by ${entry.keys.map((k) => k.name).join(', ')}: ${checks.filter((c) => c.outcome !== 'verified').map(describe).join('; ')}`}
}

/** Check every image; `named`: the digest each name's index.json entry points at (bundles), checked against the signed one. */
export async function verifyImages(source: SignatureSource, images: BundleImage[], policy: ImagePolicy, named?: ReadonlyMap<string, string>, carriedRoot?: TrustedRootFile): Promise<ImagesReport> {
  const verdicts: ImageVerdict[] = []
  const root = policy.trustedRoot ?? carriedRoot
  let made: Promise<KeylessVerifier> | undefined
  // @sigstore is loaded (and the root taken apart) the first time a keyless signature is checked, once.
  const verifier = root ? (): Promise<KeylessVerifier> => (made ??= import('./keyless.js').then((k) => k.keylessVerifier(root))) : undefined
  for (const image of images) {
    const entry = entryFor(policy, image.registry, image.repository)
    const base = {name: image.name, digest: image.digest}
    if (!entry) {
      verdicts.push({...base, status: 'not-checked', reason: 'no image policy entry and no --cosign-key', signatures: []})
      continue
    }
    const signatures = await checkSignatures(source, image.name, image.artifacts ?? [], entry.keys, {identities: entry.keyless, ...(verifier ? {verifier} : {})})
    const verdict = {...base, policy: {origin: entry.origin, match: entry.match}, ...verdictOf(image, entry, signatures), signatures}
    const loaded = named?.get(image.name)
    if (named && loaded !== image.digest && verdict.status !== 'not-checked') {
      // What loaders import is index.json's: a name pointing elsewhere than the signed digest is not what was signed.
      verdicts.push({...verdict, status: 'refused', reason: `index.json points ${image.name} at ${loaded ?? 'nothing'}, not at the signed digest ${image.digest}`, verifiedBy: undefined})
      continue
    }
    verdicts.push(verdict)
  }
  const count = (s: ImageVerdict['status']): number => verdicts.filter((v) => v.status === s).length
  return {...(root ? {trustedRoot: root.origin} : {}), verified: count('verified'), notChecked: count('not-checked'), refused: count('refused'), images: verdicts}
}

/** The images of the bundle at `path`, checked from the bundle alone (no network). */
export async function verifyBundleImages(path: string, policy: ImagePolicy): Promise<ImagesReport> {
  const reader = await BundleReader.open(path)
  const source = new BundleSource(reader)
  const meta = await reader.metadata()
  const named = new Map((await source.images()).map((i) => [i.name, i.desc.digest as string]))
  const carried = policy.trustedRoot ? undefined : await carriedTrustedRoot(reader, meta.trustedRoot)
  return verifyImages({manifest: (digest) => source.manifestBytes(digest), blob: (desc) => reader.openBlob(desc)}, meta.images ?? [], policy, named, carried)
}

/** The trusted root a bundle carries (create --trusted-root), read and checked like a file given inside. */
async function carriedTrustedRoot(reader: BundleReader, desc: {digest: Digest; size: number} | undefined): Promise<TrustedRootFile | undefined> {
  if (!desc) return undefined
  const origin = `carried in the bundle (${desc.digest})`
  if (typeof desc.size !== 'number' || desc.size > MAX_TRUSTED_ROOT_BYTES) throw new KubeferryError('BUNDLE_INVALID', `the trusted root ${origin} is recorded as ${desc.size} bytes, not a trusted root`, {hint: 'the bundle\'s bundle.json was altered; give --trusted-root FILE, or build the bundle again'})
  const chunks: Buffer[] = []
  for await (const chunk of (await reader.openBlob(desc)) as AsyncIterable<Buffer>) chunks.push(chunk)
  return parseTrustedRoot(Buffer.concat(chunks), origin)
}

/** create --verify-signatures: the plan's images, manifests from the plan (already read), payloads from the source. */
export async function verifyPlanImages(plan: BundlePlan, source: ImageSource, policy: ImagePolicy): Promise<ImagesReport> {
  const bytes = new Map(plan.blobs.filter((b) => b.bytes).map((b) => [b.digest as string, b.bytes!]))
  const from = new Map(plan.blobs.map((b) => [b.digest as string, b.from]))
  return verifyImages({manifest: async (digest) => bytes.get(digest), blob: (desc) => source.blob(from.get(desc.digest)!, desc)}, plan.images, policy)
}

/** The refusal when an image is refused (undefined: none is): each refused image and why, and what was not done. */
export function refusalOf(report: ImagesReport, nothing: string, exitCode = 1): KubeferryError | undefined {
  const refused = report.images.filter((i) => i.status === 'refused')
  if (refused.length === 0) return undefined
  return new KubeferryError('BUNDLE_INVALID', `${refused.length} image(s) refused by the image signature policy: ${refused.map((i) => `${i.name}@${i.digest}: ${i.reason}`).join(' | ')}; ${nothing}`, {
    hint: 'an image whose signature does not hold is not what its publisher signed: do not use it. If the key is wrong, give the publisher\'s (--cosign-key FILE, or an --image-policy entry); for keyless signatures, the signer\'s identity and issuer in an --image-policy entry and the trusted root of the Sigstore instance that signed (--trusted-root FILE); if the signature is missing, build the bundle again without --no-signatures',
    exitCode,
  })
}

/** One line per image for a human. */
export function verdictLine(v: ImageVerdict): string {
  if (v.status === 'verified') return `${v.name}: verified (${[...new Set(v.verifiedBy!.map((b) => b.key ?? `keyless ${describeIdentity(b.identity!)}`))].join(', ')})`
  return `${v.name}: ${v.status === 'refused' ? 'REFUSED' : 'not checked'}: ${v.reason}`
}
