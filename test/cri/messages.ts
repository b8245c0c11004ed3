// The few CRI `runtime.v1` messages the tests use, written by hand from the field
// numbers published in kubernetes/cri-api pkg/apis/runtime/v1/api.proto.
// Only the fields we send or read are modelled; unknown fields are ignored on decode.
import { MessageReader, MessageWriter } from './wire.js';

/** runtime.v1.NamespaceMode */
export const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } as const;
export type NamespaceMode = (typeof NamespaceMode)[keyof typeof NamespaceMode];

/** runtime.v1.PodSandboxState */
export const PodSandboxState = { SANDBOX_READY: 0, SANDBOX_NOTREADY: 1 } as const;

export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
}

export interface LinuxSandboxSecurityContext {
  namespaceOptions?: NamespaceOption;
  runAsUser?: number;
  readonlyRootfs?: boolean;
  privileged?: boolean;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string; securityContext?: LinuxSandboxSecurityContext; sysctls?: Record<string, string> };
}

export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password"), as in docker config.json and kubelet's keyring */
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  uid?: number;
  username: string;
  pinned: boolean;
}

export interface PodSandboxStatus {
  id: string;
  metadata?: PodSandboxMetadata;
  state: number;
  createdAt: number;
  networkIp: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

// ---- encoders ----

export function encodeVersionRequest(version: string): Buffer {
  return new MessageWriter().string(1, version).finish();
}

function metadataWriter(m: PodSandboxMetadata): MessageWriter {
  return new MessageWriter().string(1, m.name).string(2, m.uid).string(3, m.namespace).int(4, m.attempt);
}

function podSandboxConfigWriter(c: PodSandboxConfig): MessageWriter {
  const w = new MessageWriter()
    .message(1, metadataWriter(c.metadata))
    .string(2, c.hostname)
    .string(3, c.logDirectory)
    .map(6, c.labels)
    .map(7, c.annotations);
  if (c.linux) {
    const linux = new MessageWriter().string(1, c.linux.cgroupParent);
    const sc = c.linux.securityContext;
    if (sc) {
      const scw = new MessageWriter();
      const ns = sc.namespaceOptions;
      if (ns) scw.message(1, new MessageWriter().int(1, ns.network).int(2, ns.pid).int(3, ns.ipc));
      if (sc.runAsUser !== undefined) scw.message(3, new MessageWriter().int(1, sc.runAsUser)); // Int64Value
      scw.bool(4, sc.readonlyRootfs).bool(6, sc.privileged);
      linux.message(2, scw);
    }
    linux.map(3, c.linux.sysctls);
    w.message(8, linux);
  }
  return w;
}

export function encodeRunPodSandboxRequest(config: PodSandboxConfig, runtimeHandler?: string): Buffer {
  return new MessageWriter().message(1, podSandboxConfigWriter(config)).string(2, runtimeHandler).finish();
}

/** Stop/Remove/Status requests all carry pod_sandbox_id = 1 (Status adds verbose = 2). */
export function encodePodSandboxIdRequest(podSandboxId: string, verbose?: boolean): Buffer {
  return new MessageWriter().string(1, podSandboxId).bool(2, verbose).finish();
}

function imageSpecWriter(image: string): MessageWriter {
  return new MessageWriter().string(1, image);
}

export function encodePullImageRequest(image: string, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Buffer {
  const w = new MessageWriter().message(1, imageSpecWriter(image));
  if (auth) {
    w.message(
      2,
      new MessageWriter()
        .string(1, auth.username)
        .string(2, auth.password)
        .string(3, auth.auth)
        .string(4, auth.serverAddress)
        .string(5, auth.identityToken)
        .string(6, auth.registryToken),
    );
  }
  if (sandboxConfig) w.message(3, podSandboxConfigWriter(sandboxConfig));
  return w.finish();
}

/** ImageStatusRequest {image = 1, verbose = 2}; RemoveImageRequest {image = 1}. */
export function encodeImageSpecRequest(image: string, verbose?: boolean): Buffer {
  return new MessageWriter().message(1, imageSpecWriter(image)).bool(2, verbose).finish();
}

/** ListImagesRequest {filter = 1 {image = 1}}. */
export function encodeListImagesRequest(image?: string): Buffer {
  const w = new MessageWriter();
  if (image) w.message(1, new MessageWriter().message(1, imageSpecWriter(image)));
  return w.finish();
}

// ---- decoders ----

export function decodeVersionResponse(buf: Buffer): VersionResponse {
  const r = new MessageReader(buf);
  return { version: r.string(1), runtimeName: r.string(2), runtimeVersion: r.string(3), runtimeApiVersion: r.string(4) };
}

/** RunPodSandboxResponse {pod_sandbox_id = 1}; PullImageResponse {image_ref = 1}. */
export function decodeFirstString(buf: Buffer): string {
  return new MessageReader(buf).string(1);
}

function decodeImage(r: MessageReader): Image {
  const uid = r.message(5);
  return {
    id: r.string(1),
    repoTags: r.strings(2),
    repoDigests: r.strings(3),
    size: r.int(4),
    uid: uid ? uid.int(1) : undefined,
    username: r.string(6),
    pinned: r.bool(8),
  };
}

export interface ImageStatusResponse {
  image: Image | null;
  info: Record<string, string>;
}

export function decodeImageStatusResponse(buf: Buffer): ImageStatusResponse {
  const r = new MessageReader(buf);
  const image = r.message(1);
  // The runtime answers "not present" with image unset (or, from some runtimes, an empty one).
  return { image: image && image.string(1) ? decodeImage(image) : null, info: r.map(2) };
}

export function decodeListImagesResponse(buf: Buffer): Image[] {
  return new MessageReader(buf).messages(1).map(decodeImage);
}

export function decodePodSandboxStatusResponse(buf: Buffer): { status: PodSandboxStatus | null; info: Record<string, string> } {
  const r = new MessageReader(buf);
  const s = r.message(1);
  if (!s) return { status: null, info: r.map(2) };
  const md = s.message(2);
  return {
    status: {
      id: s.string(1),
      metadata: md ? { name: md.string(1), uid: md.string(2), namespace: md.string(3), attempt: md.int(4) } : undefined,
      state: s.int(3),
      createdAt: s.int(4),
      networkIp: s.message(5)?.string(1) ?? '',
      labels: s.map(7),
      annotations: s.map(8),
    },
    info: r.map(2),
  };
}
