// GraphiQL's storage: localStorage under `graphiql:` (as its default), minus request headers.
//
// With shouldPersistHeaders off, GraphiQL keeps headers out of its saved tabs, but its
// history plugin still saves each run's headers (`graphiql:queries`, `graphiql:favorites`).
// Those hold the dashboard's API key, which must live in sessionStorage only and be gone
// after sign-out.
import type { Storage as GraphiQLStorage } from '@graphiql/toolkit';

const PREFIX = 'graphiql:';
/** Stores GraphiQL saves as `{"<name>": [{query, variables, headers, ...}]}`. */
const LISTS = new Map([
  [`${PREFIX}queries`, 'queries'],
  [`${PREFIX}favorites`, 'favorites'],
]);

/** `value` for `key` with the headers of every saved operation removed; null to store nothing. */
export function withoutHeaders(key: string, value: string): string | null {
  const name = LISTS.get(key);
  if (!name) return value;
  try {
    const parsed = JSON.parse(value) as Record<string, unknown>;
    const items = parsed[name];
    if (!Array.isArray(items)) return null;
    return JSON.stringify({
      ...parsed,
      [name]: items.map((item: unknown) => {
        if (typeof item !== 'object' || item === null) return item;
        const { headers: _headers, ...rest } = item as Record<string, unknown>;
        return rest;
      }),
    });
  } catch {
    return null; // not a shape we know: it may hold headers, so keep nothing
  }
}

export function explorerStorage(local: Storage = window.localStorage): GraphiQLStorage {
  const keys = () => Array.from({ length: local.length }, (_, i) => local.key(i)).filter((k): k is string => !!k?.startsWith(PREFIX));
  const set = (key: string, value: string) => {
    const kept = withoutHeaders(key, value);
    if (kept === null) local.removeItem(key);
    else local.setItem(key, kept);
  };
  // Scrub what an earlier version of the explorer saved.
  for (const key of LISTS.keys()) {
    const saved = local.getItem(key);
    if (saved !== null) set(key, saved);
  }
  return {
    getItem: (key) => local.getItem(key),
    setItem: set,
    removeItem: (key) => local.removeItem(key),
    get length() {
      return keys().length;
    },
    clear() {
      for (const key of keys()) local.removeItem(key);
    },
  };
}
