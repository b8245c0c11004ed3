import type {Digest} from './digest.js'

/** An OCI platform. `arm64` with no variant is treated as `arm64/v8` when matching. */
export interface Platform {
  os: string
  architecture: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

/** A content descriptor as in the image-spec. */
export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  platform?: Platform
  annotations?: Record<string, string>
  urls?: string[]
  artifactType?: string
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
  subject?: Descriptor
  artifactType?: string
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  manifests: Descriptor[]
  annotations?: Record<string, string>
  subject?: Descriptor
  artifactType?: string
}

/**
 * Manifest bytes exactly as served or stored, beside the parsed form. Digests are always of `bytes`;
 * never re-serialise `parsed` to send or store it.
 */
export interface RawManifest {
  bytes: Buffer
  mediaType: string
  digest: Digest
}

export type ParsedManifest =
  | {kind: 'index'; raw: RawManifest; index: ImageIndex}
  | {kind: 'manifest'; raw: RawManifest; manifest: ImageManifest}
