// Coalesces high-rate updates (e.g. PROGRESS events) into one flush per animation frame.
export interface FrameBatcher<T> {
  push(item: T): void;
  flushNow(): void;
  cancel(): void;
}

type Schedule = (cb: () => void) => number;
type Unschedule = (handle: number) => void;

export function createFrameBatcher<T>(
  flush: (items: T[]) => void,
  schedule: Schedule = (cb) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(cb) : setTimeout(cb, 16)),
  unschedule: Unschedule = (h) => (typeof cancelAnimationFrame === 'function' ? cancelAnimationFrame(h) : clearTimeout(h)),
): FrameBatcher<T> {
  let queue: T[] = [];
  let handle: number | null = null;
  const run = () => {
    handle = null;
    if (queue.length === 0) return;
    const items = queue;
    queue = [];
    flush(items);
  };
  return {
    push(item) {
      queue.push(item);
      if (handle === null) handle = schedule(run);
    },
    flushNow() {
      if (handle !== null) unschedule(handle);
      run();
    },
    cancel() {
      if (handle !== null) unschedule(handle);
      handle = null;
      queue = [];
    },
  };
}

/** Keeps only the newest item per key (by `order`), in first-seen order. */
export function latestByKey<T>(items: T[], key: (t: T) => string, order: (t: T) => number): T[] {
  const map = new Map<string, T>();
  for (const it of items) {
    const k = key(it);
    const prev = map.get(k);
    if (!prev || order(it) >= order(prev)) map.set(k, it);
  }
  return [...map.values()];
}
