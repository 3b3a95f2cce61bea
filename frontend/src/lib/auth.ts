// The API key lives in sessionStorage only (per tab, gone when the tab closes).
// The GraphiQL page reads the same key to pre-fill its Authorization header.
export const API_KEY_STORAGE = 'conveyor.apiKey';

type Listener = () => void;
const listeners = new Set<Listener>();
/** Why the last sign-out happened (shown on the sign-in page); this page load only. */
let signOutReason: string | null = null;

function storage(): Storage | null {
  try {
    return typeof window !== 'undefined' ? window.sessionStorage : null;
  } catch {
    return null;
  }
}

export function getApiKey(): string | null {
  return storage()?.getItem(API_KEY_STORAGE) ?? null;
}

export function getSignOutReason(): string | null {
  return signOutReason;
}

export function setApiKey(key: string): void {
  signOutReason = null;
  storage()?.setItem(API_KEY_STORAGE, key.trim());
  listeners.forEach((l) => l());
}

export function clearApiKey(reason: string | null = null): void {
  signOutReason = reason;
  storage()?.removeItem(API_KEY_STORAGE);
  listeners.forEach((l) => l());
}

export function subscribeApiKey(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function bearer(key: string): string {
  return `Bearer ${key}`;
}
