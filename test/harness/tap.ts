/** Counting ava's TAP output (supertap): `ok N - title [# SKIP]`, `not ok N - title [# TODO]`. */

export interface TapCounts {
  passed: number
  failed: number
  skipped: number
  todo: number
}

export function countTap(output: string): TapCounts {
  const counts: TapCounts = {passed: 0, failed: 0, skipped: 0, todo: 0}
  for (const line of output.split('\n')) {
    if (/^ok \d+ /.test(line)) {
      if (/ # SKIP$/.test(line)) counts.skipped++
      else counts.passed++
    } else if (/^not ok \d+ /.test(line)) {
      if (/ # TODO$/.test(line)) counts.todo++
      else counts.failed++
    }
  }
  return counts
}

/** The closing line of the test command: `tests: N passed, N failed[, N skipped][, N todo]`. */
export function summaryLine(counts: TapCounts): string {
  let line = `tests: ${counts.passed} passed, ${counts.failed} failed`
  if (counts.skipped) line += `, ${counts.skipped} skipped`
  if (counts.todo) line += `, ${counts.todo} todo`
  return line
}
