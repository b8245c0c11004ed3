/**
 * The peers a test run talks to, as written by `dist/test/harness/run.js` into the JSON file named by
 * KUBEFERRY_TEST_PEERS. Tests read it with `loadPeers()` and ask for what they need with `needPeers()`
 * or register with `peerTest()`.
 */
import {readFileSync} from 'node:fs'
import test, {type ExecutionContext, type ImplementationFn} from 'ava'

export interface RegistryPeer {
  /** http://127.0.0.1:PORT */
  url: string
  /** 127.0.0.1:PORT */
  host: string
  username?: string
  password?: string
}

export interface TokenRegistryPeer extends RegistryPeer {
  /** The token endpoint (the `realm` of the Bearer challenge). */
  realm: string
  service: string
  /** A refresh token of `username`, usable as a docker config.json `identitytoken` (POST realm, grant_type=refresh_token). */
  identityToken: string
  /** A second user whose tokens expire after `expiresIn` seconds, also at the registry (for refresh tests). */
  shortLived: {username: string; password: string; expiresIn: number}
  /** GET → `{issued: number, byUser: {[user]: number}}`: tokens the token server has handed out. */
  statsUrl: string
}

export interface TestLayer {
  digest: string
  size: number
  mediaType: string
}

export interface TestPlatformImage {
  /** os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8 */
  platform: string
  /** Digest of the platform manifest. */
  digest: string
  manifestMediaType: string
  manifestSize: number
  /** Digest of the config blob. */
  config: string
  configSize: number
  layers: TestLayer[]
  /** True when this platform's image can really run here (host arch pause/busybox with Debian's busybox-static). */
  runnable: boolean
}

export interface TestImage {
  /** Canonical reference, e.g. registry.k8s.io/pause:3.10 */
  name: string
  /** Repository path inside a registry, e.g. pause, coredns/coredns, library/busybox */
  repository: string
  tag: string
  /** Digest of the index (Docker manifest list or OCI index). */
  digest: string
  mediaType: string
  /** Byte size of the index. */
  size: number
  platforms: TestPlatformImage[]
}

export interface Peers {
  runDir: string
  registries: {open: RegistryPeer; htpasswd: RegistryPeer; token: TokenRegistryPeer}
  containerd?: {address: string; root: string; state: string; namespace?: string; snapshotter: string; pid: number}
  dockerd?: {host: string; dataRoot: string; pid: number}
  /** Absolute paths of the command-line tools found (skopeo, docker = /usr/bin/docker, ctr, …). */
  tools: Record<string, string>
  /** Peers that could not be started, with the reason. */
  unavailable: Record<string, string>
  /** What the image builder pushed into each of the three registries (same repositories everywhere). */
  images: TestImage[]
  /** OCI image layout holding every blob of `images` (`blobs/sha256/<hex>`, `index.json`). */
  imageDir: string
}

export type PeerName = 'registries' | 'containerd' | 'dockerd' | 'skopeo'

let cached: Peers | undefined | null = null

/** The peers of the current harness run, or undefined when the tests run without the harness. */
export function loadPeers(): Peers | undefined {
  if (cached !== null) return cached
  const file = process.env.KUBEFERRY_TEST_PEERS
  cached = file ? (JSON.parse(readFileSync(file, 'utf8')) as Peers) : undefined
  return cached
}

const inCI = (): boolean => process.env.CI === 'true' || process.env.CI === '1'

/** Why `what` cannot be used now, or undefined when it can. */
export function missingPeer(what: PeerName[]): string | undefined {
  const peers = loadPeers()
  if (!peers) return 'KUBEFERRY_TEST_PEERS is not set (run the tests through `node dist/test/harness/run.js` or `bash scripts/test.sh`)'
  for (const name of what) {
    const reason = peers.unavailable[name]
    if (reason) return `peer ${name} is unavailable: ${reason}`
    if (name === 'registries' && !peers.registries) return 'peer registries is unavailable'
    if (name === 'containerd' && !peers.containerd) return 'peer containerd is unavailable'
    if (name === 'dockerd' && !peers.dockerd) return 'peer dockerd is unavailable'
    if (name === 'skopeo' && !peers.tools.skopeo) return 'peer skopeo is unavailable: skopeo is not installed'
  }
  return undefined
}

/**
 * For use inside a test: the peers when every one of `what` is there. Otherwise undefined, and the test
 * has been failed (CI=true) or has logged the missing peer and passed (ava has no skip at run time —
 * prefer `peerTest` so the test counts as skipped).
 */
export function needPeers(t: ExecutionContext, ...what: PeerName[]): Peers | undefined {
  const missing = missingPeer(what)
  if (!missing) return loadPeers()
  if (inCI()) {
    t.fail(`needs ${what.join(', ')}: ${missing}`)
  } else {
    t.log(`SKIPPED: needs ${what.join(', ')}: ${missing}`)
    t.pass()
  }
  return undefined
}

/** Alias of `needPeers` for a single peer. */
export function requirePeer(t: ExecutionContext, what: PeerName): Peers | undefined {
  return needPeers(t, what)
}

/**
 * Register an ava test that needs peers. When one is missing the test is registered as skipped with the
 * reason in its title (or as failing, with CI=true). `fn` receives the peers.
 */
export function peerTest(title: string, what: PeerName[], fn: (t: ExecutionContext, peers: Peers) => Promise<void> | void): void {
  const missing = missingPeer(what)
  if (!missing) {
    const impl: ImplementationFn<[]> = async (t) => {
      await fn(t, loadPeers()!)
    }
    test(title, impl)
  } else if (inCI()) {
    test(title, (t) => {
      t.fail(`needs ${what.join(', ')}: ${missing}`)
    })
  } else {
    test.skip(`${title} [skipped: needs ${what.join(', ')}: ${missing}]`, () => undefined)
  }
}

/** `peerTest` for serial tests. */
peerTest.serial = function serialPeerTest(title: string, what: PeerName[], fn: (t: ExecutionContext, peers: Peers) => Promise<void> | void): void {
  const missing = missingPeer(what)
  if (!missing) {
    test.serial(title, async (t) => {
      await fn(t, loadPeers()!)
    })
  } else if (inCI()) {
    test.serial(title, (t) => {
      t.fail(`needs ${what.join(', ')}: ${missing}`)
    })
  } else {
    test.skip(`${title} [skipped: needs ${what.join(', ')}: ${missing}]`, () => undefined)
  }
}

/** The credentials of a registry peer as skopeo's `--creds` value (or no flag for the open one). */
export function skopeoCreds(peer: RegistryPeer): string[] {
  return peer.username ? ['--creds', `${peer.username}:${peer.password}`] : []
}
