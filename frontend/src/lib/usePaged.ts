import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react';
import type { AnyVariables, Client, TypedDocumentNode } from 'urql';
import { describe } from './client';
import {
  emptyPagedList,
  fetchLeading,
  pagingReducer,
  toPage,
  type Connection,
  type FetchPage,
  type PagedList,
  type PageResult,
  type PagingAction,
} from './paging';

/**
 * `replace`: clear, then load the first page (filter change, "Try again").
 * `refresh`: load the leading rows, then swap them in; the old ones stay on screen meanwhile.
 * `merge`: the first page again, merged into what is loaded (missed live updates).
 */
export type ReloadMode = 'replace' | 'refresh' | 'merge';

export interface PagingOptions {
  /** Rows per request of a (re)load. */
  pageSize: number;
  /** Rows per "load more" request (default `pageSize`). */
  morePageSize?: number;
  /** Rows each (re)load fetches from the start, in `pageSize` requests (default one page). */
  leadingRows?: number;
}

export interface PagedListHandle<S, A> {
  state: S;
  /** For the list's own actions (live patches, removals); tagged with the current query. */
  dispatch: (action: A) => void;
  reload: (mode: ReloadMode) => void;
  loadMore: () => void;
}

/** The state belongs to the query (`fetchPage`) it was loaded for: a new query starts afresh. */
interface Slot<S> {
  key: unknown;
  state: S;
}

/**
 * The one paging implementation: keyset pages of `fetchPage` into `reducer`'s list.
 * `fetchPage`'s identity is the query: a new one (a filter change) shows `initial` and loads
 * its first page. Answers that arrive after the list moved on are dropped: a first page
 * that is not the newest asked for, a "load more" whose cursor a replace or refresh made stale.
 */
export function usePagedList<N extends { id: string }, S extends PagedList<unknown>, A = never>(
  fetchPage: FetchPage<N>,
  reducer: (state: S, action: PagingAction<N> | A) => S,
  initial: S,
  { pageSize, morePageSize = pageSize, leadingRows = pageSize }: PagingOptions,
): PagedListHandle<S, PagingAction<N> | A> {
  const [slot, dispatchTo] = useReducer(
    (s: Slot<S>, a: { key: unknown; action: PagingAction<N> | A }): Slot<S> => ({
      key: a.key,
      state: reducer(s.key === a.key ? s.state : initial, a.action),
    }),
    { key: fetchPage, state: initial },
  );
  const state = slot.key === fetchPage ? slot.state : initial;

  /** The query whose answers are still wanted (set after each render that changed it). */
  const current = useRef<unknown>(null);
  /** Bumped by every first-page load: only the newest one lands. */
  const firstSeq = useRef(0);
  /** Bumped by replace/refresh: the cursor of a "load more" in flight is stale after it. */
  const cursorGen = useRef(0);
  /** A replace/refresh in flight: a merge asked for meanwhile must not undo it. */
  const swapPending = useRef(false);
  /** The query a "load more" is in flight for (one at a time). */
  const moreFor = useRef<unknown>(null);

  const load = useCallback(
    async (requested: ReloadMode) => {
      const mode = requested === 'merge' && swapPending.current ? 'refresh' : requested;
      const seq = ++firstSeq.current;
      if (mode !== 'merge') {
        cursorGen.current++;
        swapPending.current = true;
      }
      const result = await fetchLeading(fetchPage, pageSize, leadingRows);
      if (seq !== firstSeq.current || current.current !== fetchPage) return;
      swapPending.current = false;
      dispatchTo({
        key: fetchPage,
        action: result.page ? { type: 'page', mode: mode === 'merge' ? 'merge' : 'replace', ...result.page } : { type: 'error', error: result.error },
      });
    },
    [fetchPage, pageSize, leadingRows],
  );

  useEffect(() => {
    current.current = fetchPage;
    void load('replace');
  }, [fetchPage, load]);

  const reload = useCallback(
    (mode: ReloadMode) => {
      if (mode === 'replace') dispatchTo({ key: fetchPage, action: { type: 'reset' } });
      void load(mode);
    },
    [fetchPage, load],
  );

  const { hasNextPage, endCursor, loading } = state;
  const loadMore = useCallback(() => {
    if (!hasNextPage || !endCursor || loading || moreFor.current === fetchPage) return;
    moreFor.current = fetchPage;
    const gen = cursorGen.current;
    dispatchTo({ key: fetchPage, action: { type: 'loadingMore' } });
    void fetchPage(morePageSize, endCursor).then((result) => {
      if (moreFor.current === fetchPage) moreFor.current = null;
      if (current.current !== fetchPage) return;
      const action: PagingAction<N> =
        gen !== cursorGen.current
          ? { type: 'moreDropped' }
          : result.page
            ? { type: 'page', mode: 'append', ...result.page }
            : { type: 'error', error: result.error };
      dispatchTo({ key: fetchPage, action });
    });
  }, [fetchPage, hasNextPage, endCursor, loading, morePageSize]);

  const dispatch = useCallback((action: PagingAction<N> | A) => dispatchTo({ key: fetchPage, action }), [fetchPage]);

  return { state, dispatch, reload, loadMore };
}

/** One page of a connection query through urql; errors become `{ error }` text. */
export async function queryPage<D, V extends AnyVariables, N>(
  client: Client,
  query: TypedDocumentNode<D, V>,
  variables: V,
  pick: (data: D) => Connection<N>,
): Promise<PageResult<N>> {
  const res = await client.query(query, variables).toPromise();
  if (res.error || !res.data) return { error: res.error ? describe(res.error) : 'The API returned no data.' };
  return { page: toPage(pick(res.data)) };
}

export interface Paged<T> {
  items: T[];
  error: string | null;
  loading: boolean;
  loadingMore: boolean;
  hasMore: boolean;
  loadMore: () => void;
  reload: () => void;
}

type NodeOf<C> = C extends Connection<infer T> ? T : never;

function simpleReducer<T extends { id: string }>(state: PagedList<T>, action: PagingAction<T>): PagedList<T> {
  return pagingReducer(state, action, (node: T) => node);
}

const EMPTY = emptyPagedList<never>();

/**
 * A list of `query`'s connection `field` with "Load more" (Audit log, Policy decisions):
 * `usePagedList` with rows as the API sent them. A change of `vars` (by value) reloads.
 */
export function usePagedQuery<D extends Record<K, Connection<{ id: string }>>, V extends AnyVariables, K extends keyof D & string>(
  client: Client,
  query: TypedDocumentNode<D, V>,
  field: K,
  vars: Omit<V, 'first' | 'after'>,
  pageSize = 50,
): Paged<NodeOf<D[K]>> {
  type T = NodeOf<D[K]>;
  const key = JSON.stringify(vars);
  const fetchPage = useCallback<FetchPage<T>>(
    (first, after) => queryPage(client, query, { ...(JSON.parse(key) as object), first, after } as unknown as V, (d) => d[field] as unknown as Connection<T>),
    [client, query, field, key],
  );
  const { state, reload, loadMore } = usePagedList<T, PagedList<T>>(fetchPage, simpleReducer, EMPTY, { pageSize });
  const items = useMemo(() => state.ids.flatMap((id) => state.rows.get(id) ?? []), [state.ids, state.rows]);
  const restart = useCallback(() => reload('replace'), [reload]);
  return {
    items,
    error: state.error,
    loading: state.loading,
    loadingMore: state.loadingMore,
    hasMore: state.hasNextPage,
    loadMore,
    reload: restart,
  };
}
