import { useCallback, useEffect, useEffectEvent, useState } from 'react';
import { useClients, useConnection } from '../../lib/ApiProvider';
import { describe } from '../../lib/client';
import { createFrameBatcher } from '../../lib/frameBatcher';
import { useKeyedState, useOnReconnect } from '../../lib/hooks';
import { initialJobsList, jobsListReducer, type JobsListAction, type JobsListState, type JobUpdate } from '../../lib/jobsList';
import { JobsQuery, JobUpdatesSubscription } from '../../lib/operations';
import type { FetchPage } from '../../lib/paging';
import { queryPage, usePagedList, type ReloadMode } from '../../lib/usePaged';
import type { JobFilter, JobRowFragment } from '../../gql/graphql';

export const PAGE_SIZE = 100;
/** Later pages are bigger: scrolling deep into history should not take 100 round trips. */
export const MORE_PAGE_SIZE = 500;
export const FALLBACK_POLL_MS = 4000;
export const LIVE_RETRY_MS = 15_000;

/** The API has no `jobUpdates` (an older server): polling is all there is, no point retrying. */
export function isSchemaError(message: string): boolean {
  return /Cannot query field|Unknown type/i.test(message);
}

export interface JobsList {
  state: JobsListState;
  dispatch: (action: JobsListAction) => void;
  reload: (mode: ReloadMode) => void;
  loadMore: () => void;
  /** Why live updates are off (the list then refreshes every FALLBACK_POLL_MS), or null. */
  liveError: string | null;
}

/**
 * The Jobs table's data: keyset pages of `jobs(filter:)`, patched live by `jobUpdates`
 * (coalesced to one state update per animation frame), the first page merged again after
 * a reconnect, and polling when live updates are unavailable.
 */
export function useJobsList(filter: JobFilter, filterKey: string, maxAttemptsByKind: Record<string, number>): JobsList {
  const { urql } = useClients();
  const connection = useConnection();
  const fetchJobs = useCallback<FetchPage<JobRowFragment>>(
    (first, after) => queryPage(urql, JobsQuery, { filter, first, after }, (d) => d.jobs),
    [urql, filter],
  );
  const { state, dispatch, reload, loadMore } = usePagedList(fetchJobs, jobsListReducer, initialJobsList, {
    pageSize: PAGE_SIZE,
    morePageSize: MORE_PAGE_SIZE,
  });

  // Missed live updates while disconnected: refresh the first page.
  useOnReconnect(connection.reconnects, () => reload('merge'));

  // A subscription's error belongs to that subscription: a new filter or retry starts clean.
  const [liveEpoch, setLiveEpoch] = useState(0);
  const [liveError, setLiveError] = useKeyedState<string | null>(`${filterKey}#${liveEpoch}`, null);

  const applyUpdates = useEffectEvent((updates: JobUpdate[]) =>
    dispatch({ type: 'updates', updates, maxAttemptsByKind, statusFilter: filter.status ?? undefined }),
  );
  useEffect(() => {
    const batcher = createFrameBatcher<JobUpdate>((updates) => applyUpdates(updates));
    // Subscribe without the status part of the filter: a loaded row that changes to a
    // status outside the filter must still update (e.g. RUNNING -> CANCELLED).
    const { status: _status, ...liveFilter } = filter;
    const sub = urql.subscription(JobUpdatesSubscription, { filter: liveFilter }).subscribe((res) => {
      if (res.error) {
        setLiveError(describe(res.error));
        return;
      }
      if (res.data?.jobUpdates) batcher.push(res.data.jobUpdates);
    });
    return () => {
      batcher.cancel();
      sub.unsubscribe();
    };
    // setLiveError is per filter and epoch: a retry (a new epoch) subscribes again.
  }, [urql, filter, setLiveError]);

  // A transient subscription error (e.g. a server cap): try live updates again later.
  // A schema error (the API has no jobUpdates) stays in polling mode.
  useEffect(() => {
    if (!liveError || isSchemaError(liveError)) return;
    const t = setTimeout(() => setLiveEpoch((e) => e + 1), LIVE_RETRY_MS);
    return () => clearTimeout(t);
  }, [liveError]);

  // Degraded mode: without live updates, refresh the first page every few seconds
  // instead (the page header says so).
  useEffect(() => {
    if (!liveError) return;
    const t = setInterval(() => reload('merge'), FALLBACK_POLL_MS);
    return () => clearInterval(t);
  }, [liveError, reload]);

  return { state, dispatch, reload, loadMore, liveError };
}
