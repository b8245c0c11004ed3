// A small CRI client (what kubelet does, minus kubelet) over a runtime's unix socket.
import * as grpc from '@grpc/grpc-js';
import {
  decodeFirstString,
  decodeImageStatusResponse,
  decodeListImagesResponse,
  decodePodSandboxStatusResponse,
  decodeVersionResponse,
  encodeImageSpecRequest,
  encodeListImagesRequest,
  encodePodSandboxIdRequest,
  encodePullImageRequest,
  encodeRunPodSandboxRequest,
  encodeVersionRequest,
  NamespaceMode,
  type AuthConfig,
  type Image,
  type ImageStatusResponse,
  type PodSandboxConfig,
  type PodSandboxStatus,
  type VersionResponse,
} from './messages.js';

export * from './messages.js';

const RUNTIME = '/runtime.v1.RuntimeService/';
const IMAGES = '/runtime.v1.ImageService/';

/** A failed CRI call: `details` is the runtime's own message, verbatim. */
export class CriCallError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${method}: ${grpc.status[code] ?? code}: ${details}`);
    this.name = 'CriCallError';
  }
}

export interface CriClient {
  version(): Promise<VersionResponse>;
  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  stopPodSandbox(podSandboxId: string): Promise<void>;
  removePodSandbox(podSandboxId: string): Promise<void>;
  podSandboxStatus(podSandboxId: string): Promise<PodSandboxStatus | null>;
  /** Returns the image reference the runtime resolved (containerd: the image id, sha256:…). */
  pullImage(image: string, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Promise<string>;
  /** null when the image is not present. */
  imageStatus(image: string): Promise<Image | null>;
  imageStatusVerbose(image: string): Promise<ImageStatusResponse>;
  listImages(image?: string): Promise<Image[]>;
  removeImage(image: string): Promise<void>;
  close(): void;
}

export interface CriClientOptions {
  /** Per-call deadline in ms (default 60 s; a pull of a big image may need more). */
  timeoutMs?: number;
}

/** `address` is a socket path (`/…/containerd.sock`) or a `unix://` URL. */
export function criClient(address: string, options: CriClientOptions = {}): CriClient {
  const target = address.startsWith('unix:') ? address : `unix://${address}`;
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  const timeoutMs = options.timeoutMs ?? 60_000;

  function call<T>(path: string, request: Buffer, decode: (b: Buffer) => T): Promise<T> {
    const method = path.slice(path.lastIndexOf('/') + 1);
    return new Promise<T>((resolve, reject) => {
      client.makeUnaryRequest<Buffer, Buffer>(
        path,
        (b) => b,
        (b) => b,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, response) => {
          if (err) reject(new CriCallError(method, err.code, err.details));
          else {
            try {
              resolve(decode(response ?? Buffer.alloc(0)));
            } catch (e) {
              reject(e);
            }
          }
        },
      );
    });
  }
  const none = (): void => undefined;

  return {
    version: () => call(RUNTIME + 'Version', encodeVersionRequest('v1'), decodeVersionResponse),
    runPodSandbox: (config, handler) =>
      call(RUNTIME + 'RunPodSandbox', encodeRunPodSandboxRequest(config, handler), decodeFirstString),
    stopPodSandbox: (id) => call(RUNTIME + 'StopPodSandbox', encodePodSandboxIdRequest(id), none),
    removePodSandbox: (id) => call(RUNTIME + 'RemovePodSandbox', encodePodSandboxIdRequest(id), none),
    podSandboxStatus: (id) =>
      call(RUNTIME + 'PodSandboxStatus', encodePodSandboxIdRequest(id), (b) => decodePodSandboxStatusResponse(b).status),
    pullImage: (image, auth, sandboxConfig) =>
      call(IMAGES + 'PullImage', encodePullImageRequest(image, auth, sandboxConfig), decodeFirstString),
    imageStatus: (image) =>
      call(IMAGES + 'ImageStatus', encodeImageSpecRequest(image), (b) => decodeImageStatusResponse(b).image),
    imageStatusVerbose: (image) => call(IMAGES + 'ImageStatus', encodeImageSpecRequest(image, true), decodeImageStatusResponse),
    listImages: (image) => call(IMAGES + 'ListImages', encodeListImagesRequest(image), decodeListImagesResponse),
    removeImage: (image) => call(IMAGES + 'RemoveImage', encodeImageSpecRequest(image), none),
    close: () => client.close(),
  };
}

/**
 * A PodSandboxConfig as kubelet sends it for a hostNetwork pod: node network namespace
 * (no CNI needed), pod PID/IPC namespaces, no hostname (the node's stays).
 */
export function hostNetworkPod(name: string, opts: { namespace?: string; uid?: string; attempt?: number } = {}): PodSandboxConfig {
  return {
    metadata: {
      name,
      namespace: opts.namespace ?? 'default',
      uid: opts.uid ?? `uid-${name}-${process.pid}-${Date.now()}`,
      attempt: opts.attempt ?? 0,
    },
    labels: { 'io.kubernetes.pod.name': name },
    linux: {
      securityContext: {
        namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD, ipc: NamespaceMode.POD },
      },
    },
  };
}
