/**
 * Progress for long transfers, on stderr (stdout stays for results and --json). On a TTY: listr2, one line per
 * image with bytes done/total and rate, plus one line for the bundle being written. Otherwise (or with
 * --no-progress): a plain line per finished image. The only module that looks at TTYs. listr2 is loaded only when bars
 * are drawn, so commands that never show them (and --no-progress, --json, non-TTY runs) do not pay for it.
 */

export interface ProgressItem {
  name: string
  total: number
  /** Bytes already there at the start (cache hits, and manifests read while planning). */
  done: number
  /** Of `done`, the bytes that came from the cache (shown as such); the default is none. */
  cached?: number
}

export interface Progress {
  start(items: ProgressItem[], bundleTotal: number): void
  bytes(name: string, n: number): void
  /** Bytes of the item found in the cache after start (what an earlier run kept of a download it continues). */
  reused(name: string, n: number): void
  /** The item finished; `detail` (e.g. a digest) is appended to its plain line. */
  itemDone(name: string, detail?: string): void
  bundleBytes(n: number): void
  /** A status line (planning, writing…), shown as plain text. */
  note(message: string): void
  stop(ok: boolean): Promise<void>
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let value = n
  let unit = -1
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

class Counter {
  done: number
  finished = false
  readonly started = Date.now()
  constructor(
    readonly name: string,
    readonly total: number,
    public initial: number,
    /** Bytes taken from the cache (not fetched now), for the label. */
    public fromCache = 0,
  ) {
    this.done = initial
  }

  line(): string {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001)
    const rate = (this.done - this.initial) / seconds
    const cached = this.fromCache > 0 ? `, ${formatBytes(this.fromCache)} from the cache` : ''
    return `${this.name}  ${formatBytes(this.done)}/${formatBytes(this.total)}${this.finished ? '' : `  ${formatBytes(rate)}/s`}${cached}`
  }
}

class SilentProgress implements Progress {
  start(): void {}
  bytes(): void {}
  reused(): void {}
  itemDone(): void {}
  bundleBytes(): void {}
  note(): void {}
  async stop(): Promise<void> {}
}

/** Words for what a command does: create fetches images and writes a bundle, push uploads them. */
export interface ProgressLabels {
  /** Verb of a finished item's plain line (default `fetched`). */
  done?: string
  /** Title of the overall line on a terminal (default `writing bundle`). */
  total?: string
}

/** The per-item byte counters both displays keep. */
abstract class CountingProgress {
  protected readonly items = new Map<string, Counter>()

  protected counters(items: ProgressItem[]): void {
    for (const item of items) this.items.set(item.name, new Counter(item.name, item.total, item.done, item.cached ?? 0))
  }

  bytes(name: string, n: number): void {
    const item = this.items.get(name)
    if (item) item.done += n
  }

  reused(name: string, n: number): void {
    const item = this.items.get(name)
    if (!item) return
    item.done += n
    item.initial += n
    item.fromCache += n
  }
}

class PlainProgress extends CountingProgress implements Progress {
  private bundle?: Counter
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly verb = 'fetched',
  ) {
    super()
  }

  start(items: ProgressItem[], bundleTotal: number): void {
    this.counters(items)
    this.bundle = new Counter('bundle', bundleTotal, 0)
  }

  itemDone(name: string, detail?: string): void {
    const item = this.items.get(name)
    if (!item || item.finished) return
    item.finished = true
    this.out.write(`${this.verb} ${item.line()}${detail ? `  ${detail}` : ''}\n`)
  }

  bundleBytes(n: number): void {
    if (this.bundle) this.bundle.done += n
  }

  note(message: string): void {
    this.out.write(`${message}\n`)
  }

  async stop(): Promise<void> {}
}

class TtyProgress extends CountingProgress implements Progress {
  private readonly waiters = new Map<string, () => void>()
  private bundle: Counter
  private bundleDone?: () => void
  private running?: Promise<unknown>
  private timer?: NodeJS.Timeout

  constructor(private readonly totalTitle = 'writing bundle') {
    super()
    this.bundle = new Counter(totalTitle, 0, 0)
  }

  start(items: ProgressItem[], bundleTotal: number): void {
    this.counters(items)
    this.bundle = new Counter(this.totalTitle, bundleTotal, 0)
    const task = (counter: Counter, register: (resolve: () => void) => void) => ({
      title: counter.line(),
      task: (_ctx: unknown, t: {title: string}) =>
        new Promise<void>((resolve) => {
          // listr2 is loaded lazily: a line that finished before its task started ends at once.
          if (counter.finished) {
            t.title = counter.line()
            resolve()
            return
          }
          const tick = setInterval(() => {
            t.title = counter.line()
          }, 250)
          register(() => {
            clearInterval(tick)
            t.title = counter.line()
            resolve()
          })
        }),
    })
    const tasks = [...this.items.values()].map((counter) => task(counter, (resolve) => this.waiters.set(counter.name, resolve)))
    tasks.push(task(this.bundle, (resolve) => (this.bundleDone = resolve)))
    this.running = import('listr2')
      .then(({Listr, ListrLogger, ProcessOutput}) => {
        const list = new Listr(tasks, {
          concurrent: true,
          exitOnError: false,
          registerSignalListeners: false,
          rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr as NodeJS.WriteStream, process.stderr as NodeJS.WriteStream)})},
        })
        return list.run()
      })
      .catch(() => undefined)
    for (const counter of this.items.values()) if (counter.done >= counter.total) this.itemDone(counter.name)
  }

  itemDone(name: string): void {
    const item = this.items.get(name)
    if (!item) return
    item.finished = true
    // the task's promise may not be registered yet (listr starts tasks on the next tick)
    const resolve = this.waiters.get(name)
    if (resolve) resolve()
    else setTimeout(() => this.waiters.get(name)?.(), 50)
  }

  bundleBytes(n: number): void {
    this.bundle.done += n
  }

  note(message: string): void {
    if (!this.running) process.stderr.write(`${message}\n`)
  }

  async stop(): Promise<void> {
    this.bundle.finished = true
    for (const item of this.items.values()) {
      item.finished = true
      this.waiters.get(item.name)?.()
    }
    this.bundleDone?.()
    if (this.timer) clearInterval(this.timer)
    await this.running
  }
}

/**
 * Narrower than this, a bar line wraps and redrawing it (cursor up one line per line drawn) breaks. A terminal that
 * reports no width at all (0 or none: `script`, many CI wrappers, `stty cols 0`) gets plain lines too.
 */
const MIN_BAR_COLUMNS = 40

/** Whether `stream` can show redrawn bars: a TTY with a known, usable width, and not TERM=dumb or CI. */
export function canDrawBars(stream: Pick<NodeJS.WriteStream, 'isTTY' | 'columns'>, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!stream.isTTY || env.TERM === 'dumb' || env.CI === 'true') return false
  const columns = Number(stream.columns)
  return Number.isFinite(columns) && columns >= MIN_BAR_COLUMNS
}

/** `auto`: bars on a TTY that can draw them (see canDrawBars), plain lines otherwise; `plain`: always plain lines (--no-progress); `none`: nothing. */
export function createProgress(options: {mode: 'auto' | 'plain' | 'none'; stream?: NodeJS.WriteStream; labels?: ProgressLabels}): Progress {
  const stream = options.stream ?? process.stderr
  if (options.mode === 'none') return new SilentProgress()
  if (options.mode === 'auto' && canDrawBars(stream)) return new TtyProgress(options.labels?.total)
  return new PlainProgress(stream, options.labels?.done)
}
