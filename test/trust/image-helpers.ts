/**
 * What the publishers' image signature tests (images.test.ts: key-based; keyless-images.test.ts) share: the CLI with no
 * route to any registry, a registry's catalog under a prefix, and containerd's image list in a namespace.
 */
import {execFile} from 'node:child_process'
import type {Peers} from '../harness/peers.js'
import {cliCommand} from '../helpers/cli.js'

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** The CLI in a network namespace of its own: only a loopback that is down, no route to any registry. */
export function offline(args: string[]): Promise<Run> {
  const cli = cliCommand()
  return new Promise((done) => {
    execFile('unshare', ['-n', cli.file, ...cli.args, ...args], {maxBuffer: 16 * 1024 * 1024, timeout: 120_000}, (error, stdout, stderr) => {
      done({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr})
    })
  })
}

/** The open registry's repositories under `prefix/` (every page of the catalog). */
export async function catalog(peers: Peers, prefix: string): Promise<string[]> {
  const repos: string[] = []
  let next: string | undefined = '/v2/_catalog?n=1000'
  while (next) {
    const res: Response = await fetch(new URL(next, peers.registries.open.url))
    if (!res.ok) throw new Error(`catalog: HTTP ${res.status}`)
    repos.push(...((await res.json()) as {repositories: string[]}).repositories)
    next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1]
  }
  return repos.filter((r) => r.startsWith(`${prefix}/`)).sort()
}

/** containerd's images in `namespace`. */
export function ctrImages(peers: Peers, namespace: string): Promise<string[]> {
  return new Promise((done) => execFile('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'ls', '-q'], (_e, stdout) => done(String(stdout).split('\n').filter(Boolean).sort())))
}
