/** Small helpers of the blob download (client.ts openBlob/pump): where a ranged answer starts, waiting for drain. */
import type {DigestVerifier} from '../oci/digest.js'
import {header, type TransportResponse} from './transport.js'

/** Where a 206 answer's body starts in the blob (Content-Range `bytes N-…`); -1 when it does not say. */
export function rangeStart(res: TransportResponse): number {
  const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')
  return start ? Number(start[1]) : -1
}

/** Resolves when the verifier wants more bytes again (or was closed). */
export function drained(stream: DigestVerifier): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
  })
}
