import { useCallback, useEffect, useRef, useState } from 'react';

/** Current time, re-rendering every `ms` (for ages and durations). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Runs `fn` whenever the count of WebSocket reconnects increases (missed live updates). */
export function useOnReconnect(reconnects: number, fn: () => void): void {
  const first = useRef(reconnects);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    if (reconnects > first.current) fnRef.current();
  }, [reconnects]);
}

export function useMediaQuery(query: string): boolean {
  const get = () => (typeof window !== 'undefined' && window.matchMedia ? window.matchMedia(query).matches : false);
  const [matches, setMatches] = useState(get);
  useEffect(() => {
    if (!window.matchMedia) return;
    const mql = window.matchMedia(query);
    const on = () => setMatches(mql.matches);
    mql.addEventListener('change', on);
    on();
    return () => mql.removeEventListener('change', on);
  }, [query]);
  return matches;
}

export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Conveyor` : 'Conveyor';
  }, [title]);
}

export type SetKeyed<T> = (update: T | ((prev: T) => T)) => void;

/**
 * State that belongs to one `key` (e.g. a filter): it reads as `initial` as soon as the
 * key changes, with no effect to reset it (so no render shows the old key's value).
 * `initial` must be stable (a constant); `T` must not be a function.
 */
export function useKeyedState<T>(key: string, initial: T): [T, SetKeyed<T>] {
  const [slot, setSlot] = useState<{ key: string; value: T }>({ key, value: initial });
  const set = useCallback<SetKeyed<T>>(
    (update) =>
      setSlot((s) => {
        const prev = s.key === key ? s.value : initial;
        return { key, value: typeof update === 'function' ? (update as (p: T) => T)(prev) : update };
      }),
    [key, initial],
  );
  return [slot.key === key ? slot.value : initial, set];
}
