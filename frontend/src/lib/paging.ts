// Keyset pagination over Relay connections, as pure data: the one paging state machine
// every paged list uses (Jobs, Dead letter, Audit log, Policy decisions). The React side
// (which request is current, when to load) is ./usePaged.

export interface Connection<N> {
  totalCount?: number;
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  edges: readonly { node: N }[];
}

/** One answer of a connection query, flattened. */
export interface Page<N> {
  nodes: N[];
  totalCount: number | null;
  endCursor: string | null;
  hasNextPage: boolean;
}

export type PageResult<N> = { page: Page<N>; error?: undefined } | { page?: undefined; error: string };

/** Fetches `first` nodes after `after` (null: from the start). Never rejects: failures are `{ error }`. */
export type FetchPage<N> = (first: number, after: string | null) => Promise<PageResult<N>>;

export function toPage<N>(c: Connection<N>): Page<N> {
  return {
    nodes: c.edges.map((e) => e.node),
    totalCount: c.totalCount ?? null,
    endCursor: c.pageInfo.endCursor ?? null,
    hasNextPage: c.pageInfo.hasNextPage,
  };
}

/**
 * The leading `want` nodes of a list, in requests of `first`: one request when
 * `want <= first`; more (Dead letter loads up to 5,000 to group them) until the list
 * ends or `want` rows were asked for. The pages come back as one.
 */
export async function fetchLeading<N>(fetchPage: FetchPage<N>, first: number, want = first): Promise<PageResult<N>> {
  let result = await fetchPage(first, null);
  if (!result.page) return result;
  const nodes = result.page.nodes.slice();
  for (let asked = first; asked < want && result.page.hasNextPage && result.page.endCursor; asked += first) {
    result = await fetchPage(first, result.page.endCursor);
    if (!result.page) return result;
    nodes.push(...result.page.nodes);
  }
  return { page: { ...result.page, nodes } };
}

/** A loaded list: ids in display order, rows by id (live updates patch rows in O(1)). */
export interface PagedList<R> {
  ids: string[];
  rows: Map<string, R>;
  totalCount: number | null;
  endCursor: string | null;
  hasNextPage: boolean;
  /** The first page is being (re)loaded from scratch. */
  loading: boolean;
  loadingMore: boolean;
  error: string | null;
}

export function emptyPagedList<R>(): PagedList<R> {
  return { ids: [], rows: new Map(), totalCount: null, endCursor: null, hasNextPage: false, loading: true, loadingMore: false, error: null };
}

/**
 * `replace`: a fresh list (first load, filter change, refresh). `append`: the next page.
 * `merge`: the first page again, keeping deeper pages (a refresh after missed live updates).
 */
export type PageMode = 'replace' | 'append' | 'merge';

export type PagingAction<N> =
  | { type: 'reset' }
  | { type: 'loadingMore' }
  /** A "load more" answer was dropped (its cursor belongs to a list since replaced). */
  | { type: 'moreDropped' }
  | { type: 'error'; error: string }
  | ({ type: 'page'; mode: PageMode } & Page<N>)
  /** Rows that left the list here (e.g. retried from Dead letter), before any refetch. */
  | { type: 'remove'; ids: readonly string[] };

export function pagingReducer<N extends { id: string }, R, S extends PagedList<R>>(
  state: S,
  action: PagingAction<N>,
  toRow: (node: N, prev: R | undefined) => R,
): S {
  switch (action.type) {
    case 'reset':
      return { ...state, ...emptyPagedList<R>() };
    case 'loadingMore':
      return { ...state, loadingMore: true };
    case 'moreDropped':
      return state.loadingMore ? { ...state, loadingMore: false } : state;
    case 'error':
      return { ...state, loading: false, loadingMore: false, error: action.error };
    case 'remove': {
      const gone = action.ids.filter((id) => state.rows.has(id));
      if (!gone.length) return state;
      const rows = new Map(state.rows);
      gone.forEach((id) => rows.delete(id));
      return {
        ...state,
        rows,
        ids: state.ids.filter((id) => rows.has(id)),
        totalCount: state.totalCount == null ? null : Math.max(0, state.totalCount - gone.length),
      };
    }
    case 'page': {
      const totalCount = action.totalCount ?? state.totalCount;
      if (action.mode === 'replace') {
        const rows = new Map<string, R>();
        const ids: string[] = [];
        for (const n of action.nodes) {
          if (rows.has(n.id)) continue;
          rows.set(n.id, toRow(n, undefined));
          ids.push(n.id);
        }
        return {
          ...state,
          ids,
          rows,
          totalCount,
          endCursor: action.endCursor,
          hasNextPage: action.hasNextPage,
          loading: false,
          loadingMore: false,
          error: null,
        };
      }
      const rows = new Map(state.rows);
      const fresh: string[] = [];
      for (const n of action.nodes) {
        if (!rows.has(n.id)) fresh.push(n.id);
        rows.set(n.id, toRow(n, rows.get(n.id)));
      }
      if (action.mode === 'append') {
        return {
          ...state,
          ids: fresh.length ? [...state.ids, ...fresh] : state.ids,
          rows,
          totalCount,
          endCursor: action.endCursor,
          hasNextPage: action.hasNextPage,
          loadingMore: false,
          error: null,
        };
      }
      // merge: new rows go on top; the cursor stays where the deeper pages left it.
      return {
        ...state,
        ids: fresh.length ? [...fresh, ...state.ids] : state.ids,
        rows,
        totalCount,
        loading: false,
        error: null,
      };
    }
  }
}
