/**
 * A binary min-heap of (time, item) pairs, kept in two parallel arrays (no entry objects). Used for due times:
 * timers, suppression buffers, pattern timeouts. Callers that update an item's time push it again and skip the
 * stale entry when it comes up.
 */
export class TimeHeap<T> {
  private readonly times: number[] = [];
  private readonly items: T[] = [];
  get size(): number {
    return this.times.length;
  }
  push(time: number, item: T): void {
    const t = this.times;
    const it = this.items;
    let i = t.length;
    t.push(time);
    it.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((t[p] as number) <= time) break;
      t[i] = t[p] as number;
      it[i] = it[p] as T;
      i = p;
    }
    t[i] = time;
    it[i] = item;
  }
  /** The smallest time, or +Infinity when empty. */
  peek(): number {
    return this.times.length === 0 ? Number.POSITIVE_INFINITY : (this.times[0] as number);
  }
  /** Removes and returns the item with the smallest time (call only when not empty). */
  pop(): T {
    const t = this.times;
    const it = this.items;
    const top = it[0] as T;
    const lt = t.pop() as number;
    const li = it.pop() as T;
    const n = t.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (t[r] as number) < (t[l] as number) ? r : l;
        if ((t[c] as number) >= lt) break;
        t[i] = t[c] as number;
        it[i] = it[c] as T;
        i = c;
      }
      t[i] = lt;
      it[i] = li;
    }
    return top;
  }
}
