// useJobsList's live side with a fake API in place of urql: coalescing of jobUpdates,
// fallback polling and the retry of live updates. What it asks for and when; no network.
import { act, renderHook, waitFor } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { JobFilter, JobRowFragment } from '../../gql/graphql';
import type { JobUpdate } from '../../lib/jobsList';
import { FALLBACK_POLL_MS, LIVE_RETRY_MS, useJobsList } from './useJobsList';

interface Sink {
  (result: { data?: { jobUpdates: JobUpdate }; error?: Error }): void;
}

const api = vi.hoisted(() => ({
  jobs: [] as JobRowFragment[],
  queries: [] as { filter: unknown; first: number; after: string | null }[],
  subscriptions: [] as { variables: { filter: unknown }; sink: Sink; closed: boolean }[],
  renders: 0,
}));

const clients = vi.hoisted(() => ({
  urql: {
    query: (_doc: unknown, variables: { filter: unknown; first: number; after: string | null }) => ({
      toPromise: () => {
        api.queries.push(variables);
        const edges = api.jobs.slice(0, variables.first).map((node) => ({ node }));
        return Promise.resolve({
          data: { jobs: { totalCount: api.jobs.length, pageInfo: { hasNextPage: false, endCursor: null }, edges } },
        });
      },
    }),
    subscription: (_doc: unknown, variables: { filter: unknown }) => ({
      subscribe: (sink: Sink) => {
        const entry = { variables, sink, closed: false };
        api.subscriptions.push(entry);
        return { unsubscribe: () => void (entry.closed = true) };
      },
    }),
  },
}));

vi.mock('../../lib/ApiProvider', () => ({
  useClients: () => clients,
  useConnection: () => ({ status: 'connected', retryAt: null, attempt: 0, reconnects: 0, lastError: null }),
}));

function job(id: string): JobRowFragment {
  return {
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
  };
}

function update(jobId: string, seq: number): JobUpdate {
  return {
    jobId,
    seq,
    type: 'PROGRESS',
    kind: 'demo.sleep',
    queue: 'default',
    status: 'RUNNING',
    progress: seq / 10,
    progressMessage: `step ${seq}`,
    attempt: 1,
    at: '2025-01-01T00:00:01Z',
  };
}

const FILTER: JobFilter = { status: ['RUNNING', 'QUEUED'], kind: ['demo.sleep'] };
const MAX_ATTEMPTS = { 'demo.sleep': 3 };

function mount() {
  return renderHook(() => {
    api.renders++;
    return useJobsList(FILTER, JSON.stringify(FILTER), MAX_ATTEMPTS);
  });
}

beforeEach(() => {
  api.jobs = [job('a'), job('b')];
  api.queries = [];
  api.subscriptions = [];
  api.renders = 0;
});
afterEach(() => vi.useRealTimers());

describe('useJobsList', () => {
  it('subscribes by kind only, and applies a burst of updates in one render, newest per job', async () => {
    const { result } = mount();
    await waitFor(() => expect(result.current.state.ids).toEqual(['a', 'b']));
    expect(api.queries[0]).toEqual({ filter: FILTER, first: 100, after: null });
    const [sub] = api.subscriptions;
    // A row may leave the status filter and must still update: status is applied client-side.
    expect(sub!.variables).toEqual({ filter: { kind: ['demo.sleep'] } });

    const before = api.renders;
    // Five messages, each on its own (as off the socket): nothing renders until the frame.
    for (const seq of [1, 2, 3, 4, 5]) act(() => sub!.sink({ data: { jobUpdates: update('a', seq) } }));
    expect(api.renders).toBe(before);
    await waitFor(() => expect(result.current.state.rows.get('a')).toMatchObject({ seq: 5, progress: 0.5, status: 'RUNNING' }));
    expect(api.renders - before).toBe(1);
    expect(result.current.liveError).toBeNull();
  });

  it('polls the first page while the API has no jobUpdates, and does not retry live updates', async () => {
    vi.useFakeTimers();
    const { result } = mount();
    await act(() => vi.advanceTimersByTimeAsync(0));
    expect(api.queries).toHaveLength(1);

    act(() => api.subscriptions[0]!.sink({ error: new Error('Cannot query field "jobUpdates" on type "Subscription".') }));
    expect(result.current.liveError).toMatch(/jobUpdates/);
    api.jobs = [job('new'), ...api.jobs];
    await act(() => vi.advanceTimersByTimeAsync(FALLBACK_POLL_MS));
    expect(api.queries).toHaveLength(2);
    expect(result.current.state.ids).toEqual(['new', 'a', 'b']);
    await act(() => vi.advanceTimersByTimeAsync(LIVE_RETRY_MS));
    expect(api.subscriptions).toHaveLength(1);
    expect(api.queries.length).toBeGreaterThan(4);
  });

  it('tries live updates again after a transient error, and stops polling when they work', async () => {
    vi.useFakeTimers();
    const { result } = mount();
    await act(() => vi.advanceTimersByTimeAsync(0));
    act(() => api.subscriptions[0]!.sink({ error: new Error('too many subscriptions') }));
    expect(result.current.liveError).toMatch(/too many/);

    await act(() => vi.advanceTimersByTimeAsync(LIVE_RETRY_MS));
    expect(api.subscriptions).toHaveLength(2);
    expect(api.subscriptions[0]!.closed).toBe(true);
    expect(result.current.liveError).toBeNull();
    const polls = api.queries.length;
    await act(() => vi.advanceTimersByTimeAsync(FALLBACK_POLL_MS * 3));
    expect(api.queries).toHaveLength(polls);
  });
});
