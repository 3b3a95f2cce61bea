// useJobTimeline's gap refetch, with a fake API in place of urql and graphql-ws: this is
// about what the hook asks for and when, not about the network.
import { act, renderHook, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { JobEventFieldsFragment } from '../gql/graphql';
import { useJobTimeline } from './useJobTimeline';

interface Sink {
  next(result: { data?: { jobEvents: JobEventFieldsFragment } }): void;
  error(err: unknown): void;
  complete(): void;
}

/** The server side of the fake: the job's stored events and the open subscriptions. */
const server = vi.hoisted(() => ({
  stored: [] as JobEventFieldsFragment[],
  subscriptions: [] as { variables: { jobId: string; after: number | null }; sink: Sink }[],
  historyQueries: [] as { id: string; after: number; first: number }[],
}));

/** Stable, like the real clients (the hook's effects depend on their identity). */
const clients = vi.hoisted(() => ({
  urql: {
    query: (_doc: unknown, variables: { id: string; after: number; first: number }) => ({
      toPromise: () => {
        server.historyQueries.push(variables);
        const events = server.stored.filter((e) => e.seq > variables.after).slice(0, variables.first);
        return Promise.resolve({ data: { job: { __typename: 'Job', id: variables.id, events } } });
      },
    }),
  },
  ws: {
    subscribe: (payload: { variables: { jobId: string; after: number | null } }, sink: Sink) => {
      server.subscriptions.push({ variables: payload.variables, sink });
      return () => {};
    },
  },
}));

vi.mock('./ApiProvider', () => ({ useClients: () => clients }));

function ev(seq: number, type: JobEventFieldsFragment['type'] = 'PROGRESS'): JobEventFieldsFragment {
  return {
    seq,
    type,
    status: type === 'SUBMITTED' ? 'QUEUED' : 'RUNNING',
    progress: type === 'PROGRESS' ? seq / 10 : null,
    message: null,
    data: null,
    at: new Date(Date.UTC(2025, 0, 1, 0, 0, seq)).toISOString(),
  };
}

function live(...events: JobEventFieldsFragment[]) {
  const { sink } = server.subscriptions.at(-1)!;
  act(() => events.forEach((e) => sink.next({ data: { jobEvents: e } })));
}

beforeEach(() => {
  server.stored = [];
  server.subscriptions = [];
  server.historyQueries = [];
});

describe('useJobTimeline', () => {
  it('refetches job.events(after:) from the last contiguous seq when a live seq skips ahead', async () => {
    server.stored = [ev(1, 'SUBMITTED')];
    const { result } = renderHook(() => useJobTimeline('job-1'));
    await waitFor(() => expect(result.current.historyLoaded).toBe(true));
    expect(server.historyQueries).toEqual([{ id: 'job-1', after: 0, first: 500 }]);

    // Events 2-5 happen; 3 and 4 never reach this subscriber.
    server.stored.push(ev(2, 'STARTED'), ev(3), ev(4), ev(5));
    live(ev(1, 'SUBMITTED'), ev(2, 'STARTED'), ev(5));

    await waitFor(() => expect(result.current.state.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]));
    expect(server.historyQueries).toEqual([
      { id: 'job-1', after: 0, first: 500 },
      { id: 'job-1', after: 2, first: 500 },
    ]);
    expect(result.current.state.knownThrough).toBe(5);
    // A resubscription (graphql-ws reuses the payload) would resume after the filled gap.
    expect(server.subscriptions[0]!.variables.after).toBe(5);
  });

  it('asks for nothing more when live events are contiguous', async () => {
    server.stored = [ev(1, 'SUBMITTED')];
    const { result } = renderHook(() => useJobTimeline('job-1'));
    await waitFor(() => expect(result.current.historyLoaded).toBe(true));
    server.stored.push(ev(2, 'STARTED'), ev(3));
    live(ev(2, 'STARTED'), ev(3));
    await waitFor(() => expect(result.current.state.knownThrough).toBe(3));
    expect(server.historyQueries).toHaveLength(1);
  });
});
