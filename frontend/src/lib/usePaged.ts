import { useCallback, useEffect, useRef, useState } from 'react';
import type { Client, TypedDocumentNode } from 'urql';
import { describe } from './client';
import { appendPage } from './audit';

interface Connection<T> {
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  edges: { node: T }[];
}

export interface Paged<T> {
  items: T[] | null;
  error: string | null;
  loading: boolean;
  loadingMore: boolean;
  hasMore: boolean;
  loadMore(): void;
  reload(): void;
}

/** Keyset pagination over a Relay connection: first page on every filter change, "Load more" appends. */
export function usePaged<T extends { id: string }, D, V extends { filter?: unknown; first: number; after?: string | null }>(
  client: Client,
  query: TypedDocumentNode<D, V>,
  pick: (d: D) => Connection<T>,
  vars: Omit<V, 'after' | 'first'>,
  pageSize = 50,
): Paged<T> {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [cursor, setCursor] = useState<{ hasMore: boolean; end: string | null }>({ hasMore: false, end: null });
  const token = useRef(0);
  const key = JSON.stringify(vars);
  const pickRef = useRef(pick);
  pickRef.current = pick;

  const fetchPage = useCallback(
    async (after: string | null) => {
      const variables = { ...(JSON.parse(key) as object), first: pageSize, after } as unknown as V;
      const res = await client.query(query, variables).toPromise();
      if (res.error || !res.data) return { error: res.error ? describe(res.error) : 'The API returned no data.' };
      return { conn: pickRef.current(res.data) };
    },
    [client, query, key, pageSize],
  );

  const reload = useCallback(() => {
    const t = ++token.current;
    setLoading(true);
    setError(null);
    void fetchPage(null).then((r) => {
      if (t !== token.current) return;
      setLoading(false);
      if (r.error !== undefined || !r.conn) {
        setError(r.error ?? 'No data');
        setItems(null);
        return;
      }
      setItems(r.conn.edges.map((e) => e.node));
      setCursor({ hasMore: r.conn.pageInfo.hasNextPage, end: r.conn.pageInfo.endCursor ?? null });
    });
  }, [fetchPage]);

  useEffect(() => reload(), [reload]);

  const loadMore = useCallback(() => {
    if (!cursor.hasMore || !cursor.end) return;
    const t = token.current;
    setLoadingMore(true);
    void fetchPage(cursor.end).then((r) => {
      if (t !== token.current) return;
      setLoadingMore(false);
      if (r.error !== undefined || !r.conn) {
        setError(r.error ?? 'No data');
        return;
      }
      const conn = r.conn;
      setError(null);
      setItems((prev) => appendPage(prev ?? [], conn.edges.map((e) => e.node)));
      setCursor({ hasMore: conn.pageInfo.hasNextPage, end: conn.pageInfo.endCursor ?? null });
    });
  }, [cursor, fetchPage]);

  return { items, error, loading, loadingMore, hasMore: cursor.hasMore, loadMore, reload };
}
