/**
 * The kubeferry build a benchmark runs: KUBEFERRY_BENCH_CLI (a single file such as dist/sea/kubeferry-linux-amd64,
 * or another checkout's bin/run.js), else this checkout's bin/run.js. A .js file is started with this node; a single
 * file is started itself.
 */
import {join} from 'node:path'

export function benchCli(root: string): string {
  return process.env.KUBEFERRY_BENCH_CLI || join(root, 'bin', 'run.js')
}

/** [command, args] that start `cli` with `args`. */
export function cliArgv(cli: string, args: string[]): [string, string[]] {
  return cli.endsWith('.js') ? [process.execPath, [cli, ...args]] : [cli, args]
}

/**
 * What a benchmark times as start-up: a command that loads oclif, its own code and the Kubernetes tables, and makes
 * no request. Not `--version`, which the single file answers before loading any of that (scripts/package/boot.cjs).
 */
export const STARTUP_ARGS = ['images', '--kubernetes-version', 'v1.31.6', '--json']
