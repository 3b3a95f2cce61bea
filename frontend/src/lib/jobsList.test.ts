import { describe, expect, it } from 'vitest';
import { initialJobsList, jobsListReducer, type JobUpdate } from './jobsList';
import type { JobRowFragment } from '../gql/graphql';

const node = (id: string, extra: Partial<JobRowFragment> = {}): JobRowFragment => ({
  id,
  kind: 'demo.sleep',
  queue: 'default',
  status: 'QUEUED',
  priority: 'NORMAL',
  progress: 0,
  progressMessage: null,
  attempt: 0,
  maxAttempts: 3,
  createdAt: '2025-01-01T00:00:00Z',
  runAt: null,
  nextRunAt: null,
  startedAt: null,
  finishedAt: null,
  ...extra,
});
const upd = (jobId: string, seq: number, extra: Partial<JobUpdate> = {}): JobUpdate => ({
  jobId,
  seq,
  type: 'PROGRESS',
  kind: 'demo.sleep',
  queue: 'default',
  status: 'RUNNING',
  progress: seq / 10,
  progressMessage: `step ${seq}`,
  attempt: 1,
  at: `2025-01-01T00:00:${String(seq).padStart(2, '0')}Z`,
  ...extra,
});

function loaded(ids: string[]) {
  return jobsListReducer(initialJobsList, {
    type: 'page',
    mode: 'replace',
    nodes: ids.map((id) => node(id)),
    totalCount: ids.length,
    endCursor: 'c1',
    hasNextPage: true,
  });
}

describe('jobs list reducer', () => {
  it('loads and appends keyset pages without duplicates', () => {
    let s = loaded(['c', 'b']);
    s = jobsListReducer(s, { type: 'page', mode: 'append', nodes: [node('b'), node('a')], totalCount: 3, endCursor: null, hasNextPage: false });
    expect(s.ids).toEqual(['c', 'b', 'a']);
    expect(s.hasNextPage).toBe(false);
  });

  it('patches rows from live updates, keeping only the newest per job', () => {
    let s = loaded(['a', 'b']);
    s = jobsListReducer(s, { type: 'updates', updates: [upd('a', 3), upd('a', 5), upd('a', 4)] });
    expect(s.rows.get('a')).toMatchObject({ status: 'RUNNING', progress: 0.5, progressMessage: 'step 5', seq: 5 });
    // An older update arriving late is ignored.
    s = jobsListReducer(s, { type: 'updates', updates: [upd('a', 2)] });
    expect(s.rows.get('a')!.seq).toBe(5);
  });

  it('sets startedAt/finishedAt from STARTED and terminal updates', () => {
    let s = loaded(['a']);
    s = jobsListReducer(s, { type: 'updates', updates: [upd('a', 2, { type: 'STARTED', progress: 0 })] });
    expect(s.rows.get('a')!.startedAt).toBe('2025-01-01T00:00:02Z');
    s = jobsListReducer(s, { type: 'updates', updates: [upd('a', 9, { type: 'SUCCEEDED', status: 'SUCCEEDED', progress: 1 })] });
    expect(s.rows.get('a')).toMatchObject({ status: 'SUCCEEDED', finishedAt: '2025-01-01T00:00:09Z' });
  });

  it('prepends newly submitted jobs (newest first) and counts them', () => {
    let s = loaded(['a']);
    s = jobsListReducer(s, {
      type: 'updates',
      updates: [upd('n1', 1, { type: 'SUBMITTED', status: 'QUEUED', progress: 0 }), upd('n2', 1, { type: 'SUBMITTED', status: 'QUEUED', progress: 0 })],
      maxAttemptsByKind: { 'demo.sleep': 3 },
    });
    expect(s.ids).toEqual(['n2', 'n1', 'a']);
    expect(s.totalCount).toBe(3);
    expect(s.rows.get('n1')).toMatchObject({ maxAttempts: 3, createdAt: '2025-01-01T00:00:01Z' });
  });

  it('shows a job submitted and started within one frame (only its latest update survives coalescing)', () => {
    let s = loaded(['a']);
    s = jobsListReducer(s, {
      type: 'updates',
      updates: [
        upd('n', 1, { type: 'SUBMITTED', status: 'QUEUED', progress: 0 }),
        upd('n', 2, { type: 'STARTED', status: 'RUNNING', progress: 0 }),
        upd('n', 3, { type: 'PROGRESS', status: 'RUNNING', progress: 0.5 }),
      ],
    });
    expect(s.ids).toEqual(['n', 'a']);
    expect(s.outside).toBe(0);
    expect(s.rows.get('n')).toMatchObject({
      status: 'RUNNING',
      progress: 0.5,
      seq: 3,
      createdAt: '2025-01-01T00:00:01Z',
      startedAt: '2025-01-01T00:00:02Z',
    });
  });

  it('counts changes to jobs that are not loaded instead of inventing rows', () => {
    let s = loaded(['a']);
    s = jobsListReducer(s, { type: 'updates', updates: [upd('zzz', 4)] });
    expect(s.ids).toEqual(['a']);
    expect(s.outside).toBe(1);
  });

  it('keeps loaded rows live when they leave a status filter, and only counts jobs entering it', () => {
    let s = loaded(['a']);
    const statusFilter: ('RUNNING' | 'QUEUED')[] = ['RUNNING', 'QUEUED'];
    s = jobsListReducer(s, { type: 'updates', updates: [upd('a', 8, { type: 'CANCELLED', status: 'CANCELLED' })], statusFilter });
    expect(s.rows.get('a')!.status).toBe('CANCELLED');
    s = jobsListReducer(s, { type: 'updates', updates: [upd('x', 3, { type: 'SUCCEEDED', status: 'SUCCEEDED' })], statusFilter });
    expect(s.outside).toBe(0);
    s = jobsListReducer(s, { type: 'updates', updates: [upd('y', 2, { type: 'STARTED', status: 'RUNNING' })], statusFilter });
    expect(s.outside).toBe(1);
    s = jobsListReducer(s, { type: 'updates', updates: [upd('z', 1, { type: 'SUBMITTED', status: 'SCHEDULED' })], statusFilter });
    expect(s.ids).toEqual(['a']);
  });

  it('does not let a mutation result overwrite a fresher live update', () => {
    let s = loaded(['a', 'b']);
    const ifSeq = new Map([['a', 0], ['b', 0]]);
    // The CANCELLED update for a arrives before the cancelJob answer (status RUNNING).
    s = jobsListReducer(s, { type: 'updates', updates: [upd('a', 6, { type: 'CANCELLED', status: 'CANCELLED' })] });
    s = jobsListReducer(s, { type: 'patch', jobs: [node('a', { status: 'RUNNING' }), node('b', { status: 'CANCELLED' })], ifSeq });
    expect(s.rows.get('a')!.status).toBe('CANCELLED');
    expect(s.rows.get('b')!.status).toBe('CANCELLED');
  });

  it('merges a refreshed first page on top, keeping deeper pages', () => {
    let s = loaded(['b', 'a']);
    s = jobsListReducer(s, { type: 'page', mode: 'merge', nodes: [node('c'), node('b', { status: 'RUNNING' })], totalCount: 3, endCursor: 'x', hasNextPage: true });
    expect(s.ids).toEqual(['c', 'b', 'a']);
    expect(s.rows.get('b')!.status).toBe('RUNNING');
  });

  it('applies 10,000 updates to 10,000 rows quickly', () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `j${i}`);
    let s = loaded(ids);
    const t0 = performance.now();
    for (let f = 0; f < 10; f++) {
      s = jobsListReducer(s, { type: 'updates', updates: ids.slice(f * 1000, f * 1000 + 1000).map((id) => upd(id, 2)) });
    }
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(s.rows.get('j9999')!.seq).toBe(2);
  });
});
