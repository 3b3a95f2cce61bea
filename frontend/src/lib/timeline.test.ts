import { describe, expect, it } from 'vitest';
import { applyHistory, applyLive, emptyTimeline, isFinished, resumeAfter, type TimelineEvent, type TimelineState } from './timeline';

const at = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s)).toISOString();
function ev(seq: number, type: TimelineEvent['type'] = 'PROGRESS', extra: Partial<TimelineEvent> = {}): TimelineEvent {
  const status = type === 'SUBMITTED' ? 'QUEUED' : type === 'SUCCEEDED' ? 'SUCCEEDED' : 'RUNNING';
  return { seq, type, status, progress: type === 'PROGRESS' ? seq / 10 : null, message: null, at: at(seq), ...extra };
}
const seqs = (s: TimelineState) => s.events.map((e) => e.seq);

describe('timeline merge', () => {
  it('replays history then appends live events in order', () => {
    let r = applyHistory(emptyTimeline(), [ev(1, 'SUBMITTED'), ev(2, 'STARTED'), ev(3)], { after: 0 });
    expect(r.gap).toBeNull();
    expect(r.state.knownThrough).toBe(3);
    r = applyLive(r.state, [ev(4), ev(5)]);
    expect(seqs(r.state)).toEqual([1, 2, 3, 4, 5]);
    expect(r.state.knownThrough).toBe(5);
    expect(r.gap).toBeNull();
    expect(r.state.current?.progress).toBe(0.5);
  });

  it('dedupes by seq across history, replay and live', () => {
    let r = applyLive(emptyTimeline(), [ev(1, 'SUBMITTED'), ev(2, 'STARTED')]);
    r = applyHistory(r.state, [ev(1, 'SUBMITTED'), ev(2, 'STARTED'), ev(3)], { after: 0 });
    r = applyLive(r.state, [ev(3), ev(3), ev(2, 'STARTED'), ev(4)]);
    expect(seqs(r.state)).toEqual([1, 2, 3, 4]);
  });

  it('keeps events sorted when they arrive out of order', () => {
    const r = applyLive(emptyTimeline(), [ev(2, 'STARTED'), ev(1, 'SUBMITTED'), ev(3)]);
    expect(seqs(r.state)).toEqual([1, 2, 3]);
    expect(r.state.current?.seq).toBe(3);
  });

  it('uses a SNAPSHOT for current state without adding it to the timeline', () => {
    const snap = ev(7, 'SNAPSHOT', { status: 'RUNNING', progress: 0.7, message: 'step 7' });
    const r = applyLive(emptyTimeline(), [snap]);
    expect(r.state.events).toEqual([]);
    expect(r.state.current).toMatchObject({ seq: 7, status: 'RUNNING', progress: 0.7, message: 'step 7' });
    // History not loaded yet: everything up to the snapshot is a gap.
    expect(r.gap).toEqual({ after: 0, upTo: 7 });
  });

  it('fills the gap before a snapshot from history', () => {
    let r = applyLive(emptyTimeline(), [ev(3, 'SNAPSHOT')]);
    r = applyHistory(r.state, [ev(1, 'SUBMITTED'), ev(2, 'STARTED'), ev(3)], { after: 0 });
    expect(r.gap).toBeNull();
    expect(seqs(r.state)).toEqual([1, 2, 3]);
  });

  it('detects a seq gap in live events and asks to refetch after the last contiguous seq', () => {
    let r = applyHistory(emptyTimeline(), [ev(1, 'SUBMITTED'), ev(2, 'STARTED')], { after: 0 });
    r = applyLive(r.state, [ev(5)]);
    expect(r.gap).toEqual({ after: 2, upTo: 5 });
    expect(r.state.knownThrough).toBe(2);
    // The refetch fills 3..5; the gap closes.
    r = applyHistory(r.state, [ev(3), ev(4), ev(5)], { after: 2, upTo: 5 });
    expect(r.gap).toBeNull();
    expect(seqs(r.state)).toEqual([1, 2, 3, 4, 5]);
    expect(r.state.knownThrough).toBe(5);
  });

  it('closes a gap that live replay fills before the refetch returns', () => {
    let r = applyHistory(emptyTimeline(), [ev(1, 'SUBMITTED')], { after: 0 });
    r = applyLive(r.state, [ev(3)]);
    expect(r.gap).not.toBeNull();
    r = applyLive(r.state, [ev(2, 'STARTED')]);
    expect(r.gap).toBeNull();
    expect(r.state.knownThrough).toBe(3);
  });

  it('confirms a hole the server does not have so it is not asked for again', () => {
    let r = applyHistory(emptyTimeline(), [ev(1, 'SUBMITTED')], { after: 0 });
    r = applyLive(r.state, [ev(4)]);
    r = applyHistory(r.state, [ev(4)], { after: 1, upTo: 4 });
    expect(r.gap).toBeNull();
    expect(r.state.knownThrough).toBe(4);
  });

  it('treats a partial (paged) history answer as progress, not completeness', () => {
    let r = applyLive(emptyTimeline(), [ev(6, 'SNAPSHOT')]);
    r = applyHistory(r.state, [ev(1, 'SUBMITTED'), ev(2, 'STARTED'), ev(3)], { after: 0 });
    expect(r.state.knownThrough).toBe(3);
    expect(r.gap).toEqual({ after: 3, upTo: 6 });
  });

  it('resumes after the last contiguous seq, or asks for a snapshot when nothing is known', () => {
    expect(resumeAfter(emptyTimeline())).toBeUndefined();
    let r = applyHistory(emptyTimeline(), [ev(1, 'SUBMITTED'), ev(2, 'STARTED')], { after: 0 });
    r = applyLive(r.state, [ev(4)]);
    expect(resumeAfter(r.state)).toBe(2);
    const snapOnly = applyLive(emptyTimeline(), [ev(9, 'SNAPSHOT')]).state;
    expect(resumeAfter(snapOnly)).toBe(9);
  });

  it('an older event never overrides the current state', () => {
    let r = applyLive(emptyTimeline(), [ev(5, 'SUCCEEDED', { progress: 1 })]);
    r = applyHistory(r.state, [ev(1, 'SUBMITTED'), ev(4)], { after: 0 });
    expect(r.state.current?.status).toBe('SUCCEEDED');
    expect(isFinished(r.state)).toBe(true);
  });

  it('keeps the last progress value when a LOG event has none', () => {
    let r = applyLive(emptyTimeline(), [ev(1, 'SUBMITTED'), ev(2, 'PROGRESS', { progress: 0.4, message: 'working' })]);
    r = applyLive(r.state, [ev(3, 'LOG', { progress: null, message: null })]);
    expect(r.state.current?.progress).toBe(0.4);
    expect(r.state.current?.message).toBe('working');
  });

  it('handles a burst of 5,000 live events quickly', () => {
    let s = applyHistory(emptyTimeline(), [ev(1, 'SUBMITTED')], { after: 0 }).state;
    const t0 = performance.now();
    for (let i = 2; i <= 5001; i += 50) {
      const batch = Array.from({ length: 50 }, (_, k) => ev(i + k));
      s = applyLive(s, batch).state;
    }
    expect(s.events.length).toBe(5001);
    expect(s.knownThrough).toBe(5001);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
