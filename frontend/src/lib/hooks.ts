import { useCallback, useEffect, useEffectEvent, useRef, useState, useSyncExternalStore } from 'react';

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
  const onReconnect = useEffectEvent(fn);
  useEffect(() => {
    if (reconnects > first.current) onReconnect();
  }, [reconnects]);
}

export function useMediaQuery(query: string): boolean {
  const subscribe = useCallback(
    (notify: () => void) => {
      if (typeof window === 'undefined' || !window.matchMedia) return () => {};
      const mql = window.matchMedia(query);
      mql.addEventListener('change', notify);
      return () => mql.removeEventListener('change', notify);
    },
    [query],
  );
  return useSyncExternalStore(
    subscribe,
    () => typeof window !== 'undefined' && !!window.matchMedia && window.matchMedia(query).matches,
    () => false,
  );
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
 * `initial` must not change while `key` stays the same; `T` must not be a function.
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
