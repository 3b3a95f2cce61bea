// usePagedList's request protocol with a hand-answered fetchPage: which answers land,
// which are dropped, and that no flag stays stuck. No network.
import { act, renderHook } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { emptyPagedList, pagingReducer, type FetchPage, type PagedList, type PagingAction, type PageResult } from './paging';
import { usePagedList, type PagingOptions } from './usePaged';

interface Item {
  id: string;
}

interface Request {
  first: number;
  after: string | null;
  answer(ids: string[], more?: { hasNextPage?: boolean; totalCount?: number }): Promise<void>;
  fail(error: string): Promise<void>;
}

/** A fetchPage whose requests wait until the test answers them. */
function manualApi() {
  const requests: Request[] = [];
  const fetchPage: FetchPage<Item> = (first, after) =>
    new Promise<PageResult<Item>>((resolve) => {
      const settle = (r: PageResult<Item>) =>
        act(async () => {
          resolve(r);
          await Promise.resolve();
        });
      requests.push({
        first,
        after,
        answer: (ids, more = {}) =>
          settle({
            page: { nodes: ids.map((id) => ({ id })), totalCount: more.totalCount ?? 100, endCursor: ids.at(-1) ?? null, hasNextPage: more.hasNextPage ?? true },
          }),
        fail: (error) => settle({ error }),
      });
    });
  return { fetchPage, requests, last: () => requests.at(-1)! };
}

const reducer = (s: PagedList<Item>, a: PagingAction<Item>) => pagingReducer(s, a, (n: Item) => n);
const EMPTY = emptyPagedList<Item>();
const OPTIONS: PagingOptions = { pageSize: 2, morePageSize: 3 };

function mount(fetchPage: FetchPage<Item>, options = OPTIONS) {
  return renderHook(({ f }) => usePagedList(f, reducer, EMPTY, options), { initialProps: { f: fetchPage } });
}

describe('usePagedList', () => {
  it('loads the first page, then appends bigger pages from the cursor', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    expect(result.current.state.loading).toBe(true);
    expect(api.requests.map((r) => [r.first, r.after])).toEqual([[2, null]]);
    await api.last().answer(['a', 'b']);
    expect(result.current.state).toMatchObject({ ids: ['a', 'b'], loading: false, endCursor: 'b' });

    act(() => result.current.loadMore());
    act(() => result.current.loadMore()); // one "load more" at a time
    expect(api.requests.map((r) => [r.first, r.after])).toEqual([[2, null], [3, 'b']]);
    expect(result.current.state.loadingMore).toBe(true);
    await api.last().answer(['c', 'd', 'e'], { hasNextPage: false });
    expect(result.current.state).toMatchObject({ ids: ['a', 'b', 'c', 'd', 'e'], loadingMore: false, hasNextPage: false });

    act(() => result.current.loadMore()); // the end: nothing to ask for
    expect(api.requests).toHaveLength(2);
  });

  it('shows a new query empty at once and drops the late answer of the old one', async () => {
    const old = manualApi();
    const { result, rerender } = mount(old.fetchPage);
    await old.last().answer(['a', 'b']);
    act(() => result.current.loadMore());

    const next = manualApi();
    rerender({ f: next.fetchPage });
    expect(result.current.state).toMatchObject({ ids: [], loading: true });
    await old.last().answer(['c', 'd', 'e']); // the old query's "load more"
    expect(result.current.state).toMatchObject({ ids: [], loading: true });
    await next.last().answer(['x']);
    expect(result.current.state).toMatchObject({ ids: ['x'], loading: false, loadingMore: false });
  });

  it('lands only the newest first page', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    act(() => result.current.reload('merge'));
    const [first, second] = api.requests;
    await second!.answer(['new']);
    await first!.answer(['old']);
    expect(result.current.state.ids).toEqual(['new']);
  });

  it('keeps a "load more" that a merge overlaps (it used to stay "Loading…" for good)', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    await api.last().answer(['b', 'c']);
    act(() => result.current.loadMore());
    const more = api.last();
    act(() => result.current.reload('merge')); // e.g. the fallback poll
    await api.last().answer(['a', 'b']);
    await more.answer(['d']);
    expect(result.current.state).toMatchObject({ ids: ['a', 'b', 'c', 'd'], loadingMore: false, endCursor: 'd' });
  });

  it('drops a "load more" that a refresh overtakes, and clears its flag', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    await api.last().answer(['a', 'b']);
    act(() => result.current.loadMore());
    const more = api.last();
    act(() => result.current.reload('refresh'));
    const refresh = api.last();
    await more.answer(['stale']);
    expect(result.current.state).toMatchObject({ ids: ['a', 'b'], loadingMore: false });
    await refresh.answer(['b2']);
    expect(result.current.state.ids).toEqual(['b2']);
  });

  it('turns a merge asked for during a refresh into a refresh (what left stays gone)', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    await api.last().answer(['a', 'b']);
    act(() => result.current.reload('refresh'));
    act(() => result.current.reload('merge'));
    await api.last().answer(['b']);
    expect(result.current.state.ids).toEqual(['b']);
  });

  it('clears on replace, keeps the rows on a failed merge, and reports errors', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    await api.last().answer(['a']);
    act(() => result.current.reload('merge'));
    await api.last().fail('down');
    expect(result.current.state).toMatchObject({ ids: ['a'], error: 'down' });
    act(() => result.current.reload('replace'));
    expect(result.current.state).toMatchObject({ ids: [], loading: true });
    await api.last().fail('still down');
    expect(result.current.state).toMatchObject({ ids: [], loading: false, error: 'still down' });
  });

  it('fetches the leading rows in several requests when asked to', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage, { pageSize: 2, leadingRows: 4 });
    await api.last().answer(['a', 'b']);
    expect(result.current.state.ids).toEqual([]);
    expect(api.last().after).toBe('b');
    await api.last().answer(['c', 'd']);
    expect(result.current.state.ids).toEqual(['a', 'b', 'c', 'd']);
    expect(api.requests).toHaveLength(2);
  });

  it('tags its own actions with the current query', async () => {
    const api = manualApi();
    const { result } = mount(api.fetchPage);
    await api.last().answer(['a', 'b']);
    act(() => result.current.dispatch({ type: 'remove', ids: ['a'] }));
    expect(result.current.state).toMatchObject({ ids: ['b'], totalCount: 99 });
  });
});
