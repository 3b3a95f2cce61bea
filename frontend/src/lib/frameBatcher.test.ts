import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFrameBatcher, latestByKey } from './frameBatcher';

interface Update {
  jobId: string;
  seq: number;
  progress: number;
}

/** A hand-cranked animation frame: `tick()` runs what was scheduled for it. */
function manualFrames() {
  let next = 1;
  const pending = new Map<number, () => void>();
  return {
    schedule: vi.fn((cb: () => void) => {
      pending.set(next, cb);
      return next++;
    }),
    unschedule: vi.fn((handle: number) => void pending.delete(handle)),
    tick() {
      const due = [...pending.values()];
      pending.clear();
      due.forEach((cb) => cb());
    },
    get pending() {
      return pending.size;
    },
  };
}

describe('createFrameBatcher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('flushes hundreds of pushes in one animation frame once, in push order', () => {
    vi.useFakeTimers({ toFake: ['requestAnimationFrame', 'cancelAnimationFrame'] });
    const flush = vi.fn<(items: number[]) => void>();
    const batcher = createFrameBatcher(flush); // the default scheduler: requestAnimationFrame
    for (let i = 0; i < 500; i++) batcher.push(i);
    expect(flush).not.toHaveBeenCalled();

    vi.advanceTimersToNextFrame();
    expect(flush).toHaveBeenCalledTimes(1);
    expect(flush.mock.calls[0]![0]).toEqual(Array.from({ length: 500 }, (_, i) => i));

    // The next frame starts a new batch; a frame with nothing pushed flushes nothing.
    batcher.push(500);
    vi.advanceTimersToNextFrame();
    vi.advanceTimersToNextFrame();
    expect(flush).toHaveBeenCalledTimes(2);
    expect(flush.mock.calls[1]![0]).toEqual([500]);
  });

  it('asks for one frame however many items arrive before it', () => {
    const frames = manualFrames();
    const flush = vi.fn<(items: string[]) => void>();
    const batcher = createFrameBatcher(flush, frames.schedule, frames.unschedule);
    for (let i = 0; i < 300; i++) batcher.push(`e${i}`);
    expect(frames.schedule).toHaveBeenCalledTimes(1);
    frames.tick();
    expect(flush).toHaveBeenCalledTimes(1);
    expect(flush.mock.calls[0]![0]).toHaveLength(300);
  });

  it('flushNow delivers the batch at once and the frame then has nothing left to do', () => {
    const frames = manualFrames();
    const flush = vi.fn<(items: number[]) => void>();
    const batcher = createFrameBatcher(flush, frames.schedule, frames.unschedule);
    batcher.push(1);
    batcher.push(2);
    batcher.flushNow();
    expect(flush).toHaveBeenCalledWith([1, 2]);
    expect(frames.pending).toBe(0);
    frames.tick();
    expect(flush).toHaveBeenCalledTimes(1);
  });

  it('cancel drops what is queued (an unmounted page renders nothing)', () => {
    const frames = manualFrames();
    const flush = vi.fn<(items: number[]) => void>();
    const batcher = createFrameBatcher(flush, frames.schedule, frames.unschedule);
    batcher.push(1);
    batcher.cancel();
    frames.tick();
    expect(flush).not.toHaveBeenCalled();
  });
});

describe('latestByKey (what the jobs table keeps of a frame)', () => {
  it('reduces a frame of progress events to the newest per job, in first-seen order', () => {
    const frames = manualFrames();
    let kept: Update[] = [];
    const batcher = createFrameBatcher<Update>(
      (items) => (kept = latestByKey(items, (u) => u.jobId, (u) => u.seq)),
      frames.schedule,
      frames.unschedule,
    );
    for (let seq = 1; seq <= 100; seq++) {
      for (const jobId of ['b', 'a', 'c']) batcher.push({ jobId, seq, progress: seq / 100 });
    }
    frames.tick();
    expect(kept).toEqual([
      { jobId: 'b', seq: 100, progress: 1 },
      { jobId: 'a', seq: 100, progress: 1 },
      { jobId: 'c', seq: 100, progress: 1 },
    ]);
  });

  it('keeps the highest seq even when an older event arrives last', () => {
    const kept = latestByKey(
      [
        { jobId: 'a', seq: 7, progress: 0.7 },
        { jobId: 'a', seq: 5, progress: 0.5 },
      ],
      (u) => u.jobId,
      (u) => u.seq,
    );
    expect(kept).toEqual([{ jobId: 'a', seq: 7, progress: 0.7 }]);
  });
});
