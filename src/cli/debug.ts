/** `KUBEFERRY_DEBUG=1` turns on what `--debug` does (stack traces, the HTTP timeline), for runs whose flags cannot change. */
export function debugFromEnvironment(): boolean {
  return process.env.KUBEFERRY_DEBUG === '1'
}
