import { describe, expect, it } from 'vitest';
import { emptyPagedList, fetchLeading, pagingReducer, toPage, type FetchPage, type Page, type PagedList, type PagingAction } from './paging';

interface Item {
  id: string;
  v?: number;
}

const reduce = (s: PagedList<Item>, a: PagingAction<Item>) => pagingReducer(s, a, (n: Item) => n);
const page = (ids: string[], more: Partial<Page<Item>> = {}): Page<Item> => ({
  nodes: ids.map((id) => ({ id })),
  totalCount: 10,
  endCursor: ids.at(-1) ?? null,
  hasNextPage: true,
  ...more,
});
const loaded = (ids: string[]) => reduce(emptyPagedList(), { type: 'page', mode: 'replace', ...page(ids) });

describe('pagingReducer', () => {
  it('replaces, dropping duplicates, and ends loading', () => {
    const s = loaded(['a', 'b', 'a']);
    expect(s).toMatchObject({ ids: ['a', 'b'], totalCount: 10, endCursor: 'a', hasNextPage: true, loading: false, error: null });
  });

  it('appends the next page after the loaded rows, skipping rows already shown', () => {
    let s = reduce(loaded(['a', 'b']), { type: 'loadingMore' });
    expect(s.loadingMore).toBe(true);
    s = reduce(s, { type: 'page', mode: 'append', ...page(['b', 'c'], { endCursor: 'c', hasNextPage: false, totalCount: 3 }) });
    expect(s).toMatchObject({ ids: ['a', 'b', 'c'], endCursor: 'c', hasNextPage: false, totalCount: 3, loadingMore: false });
  });

  it('merges a fresh first page on top and keeps the cursor of the deeper pages', () => {
    let s = reduce(loaded(['b', 'c']), { type: 'page', mode: 'append', ...page(['d'], { endCursor: 'd' }) });
    s = reduce(s, { type: 'page', mode: 'merge', ...page(['a', 'b'], { endCursor: 'b', totalCount: 11, nodes: [{ id: 'a' }, { id: 'b', v: 2 }] }) });
    expect(s.ids).toEqual(['a', 'b', 'c', 'd']);
    expect(s.rows.get('b')).toEqual({ id: 'b', v: 2 });
    expect(s).toMatchObject({ endCursor: 'd', totalCount: 11 });
  });

  it('keeps the rows on an error, and a dropped "load more" only clears its flag', () => {
    let s = reduce(reduce(loaded(['a']), { type: 'loadingMore' }), { type: 'error', error: 'boom' });
    expect(s).toMatchObject({ ids: ['a'], error: 'boom', loadingMore: false });
    s = reduce(reduce(s, { type: 'loadingMore' }), { type: 'moreDropped' });
    expect(s).toMatchObject({ ids: ['a'], loadingMore: false, endCursor: 'a' });
  });

  it('removes rows and counts only those it had', () => {
    const s = reduce(loaded(['a', 'b', 'c']), { type: 'remove', ids: ['b', 'zzz'] });
    expect(s.ids).toEqual(['a', 'c']);
    expect(s.rows.has('b')).toBe(false);
    expect(s.totalCount).toBe(9);
  });

  it('resets to an empty, loading list and keeps extra fields of the caller', () => {
    const s = pagingReducer({ ...loaded(['a']), extra: 1 }, { type: 'reset' }, (n: Item) => n);
    expect(s).toMatchObject({ ids: [], loading: true, totalCount: null, extra: 1 });
  });
});

describe('toPage', () => {
  it('flattens a Relay connection', () => {
    expect(toPage({ totalCount: 2, pageInfo: { hasNextPage: false, endCursor: null }, edges: [{ node: { id: 'a' } }] })).toEqual({
      nodes: [{ id: 'a' }],
      totalCount: 2,
      endCursor: null,
      hasNextPage: false,
    });
  });
});

/** A list of `n` items served by keyset pages, recording each request. */
function server(n: number, failAt?: string) {
  const items = Array.from({ length: n }, (_, i) => ({ id: String(i) }));
  const calls: [number, string | null][] = [];
  const fetchPage: FetchPage<Item> = (first, after) => {
    calls.push([first, after]);
    if (after === failAt && failAt !== undefined) return Promise.resolve({ error: 'down' });
    const start = after == null ? 0 : Number(after) + 1;
    const nodes = items.slice(start, start + first);
    return Promise.resolve({ page: { nodes, totalCount: n, endCursor: nodes.at(-1)?.id ?? null, hasNextPage: start + first < n } });
  };
  return { fetchPage, calls };
}

describe('fetchLeading', () => {
  it('asks for one page by default', async () => {
    const { fetchPage, calls } = server(10);
    const r = await fetchLeading(fetchPage, 4);
    expect(r.page?.nodes.map((x) => x.id)).toEqual(['0', '1', '2', '3']);
    expect(r.page).toMatchObject({ hasNextPage: true, endCursor: '3' });
    expect(calls).toEqual([[4, null]]);
  });

  it('follows the cursor until it has the rows wanted, as one page', async () => {
    const { fetchPage, calls } = server(10);
    const r = await fetchLeading(fetchPage, 3, 7);
    expect(r.page?.nodes).toHaveLength(9);
    expect(r.page).toMatchObject({ endCursor: '8', hasNextPage: true, totalCount: 10 });
    expect(calls).toEqual([[3, null], [3, '2'], [3, '5']]);
  });

  it('stops at the end of the list', async () => {
    const { fetchPage, calls } = server(5);
    const r = await fetchLeading(fetchPage, 3, 100);
    expect(r.page?.nodes).toHaveLength(5);
    expect(r.page?.hasNextPage).toBe(false);
    expect(calls).toHaveLength(2);
  });

  it('fails as a whole when a later page fails', async () => {
    const { fetchPage } = server(10, '2');
    expect(await fetchLeading(fetchPage, 3, 9)).toEqual({ error: 'down' });
  });
});
