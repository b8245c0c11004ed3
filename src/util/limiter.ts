/**
 * A bounded pool of permits; only leaf operations (single HTTP exchanges or one upload) take one. Waiting work
 * starts highest priority first, in arrival order among equals; a finishing task hands its permit straight on.
 */
export class Limiter {
  private active = 0
  private seq = 0
  private readonly queue: Array<{priority: number; seq: number; start: () => void}> = []
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>, priority = 0): Promise<T> {
    if (this.active < this.max) this.active++
    else await new Promise<void>((start) => this.enqueue({priority, seq: this.seq++, start}))
    try {
      return await fn()
    } finally {
      const next = this.queue.shift()
      if (next) next.start()
      else this.active--
    }
  }

  private enqueue(item: {priority: number; seq: number; start: () => void}): void {
    // Binary search for the first waiting item of lower priority (equal priorities keep arrival order).
    let lo = 0
    let hi = this.queue.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.queue[mid].priority >= item.priority) lo = mid + 1
      else hi = mid
    }
    this.queue.splice(lo, 0, item)
  }
}
