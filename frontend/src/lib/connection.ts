// Observable connection state for the WebSocket (graphql-transport-ws) link,
// shown in the header and used by pages to refetch after a reconnect.
export type LinkStatus = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'unauthorized';

export interface ConnectionState {
  status: LinkStatus;
  /** Epoch ms of the next reconnect attempt while reconnecting. */
  retryAt: number | null;
  attempt: number;
  /** Increments on every successful (re)connection after the first. */
  reconnects: number;
  lastError: string | null;
}

type Listener = () => void;

export class ConnectionStore {
  private state: ConnectionState = { status: 'connecting', retryAt: null, attempt: 0, reconnects: 0, lastError: null };
  private listeners = new Set<Listener>();

  get = (): ConnectionState => this.state;

  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  update(patch: Partial<ConnectionState>): void {
    const next = { ...this.state, ...patch };
    const same = (Object.keys(next) as Array<keyof ConnectionState>).every((k) => next[k] === this.state[k]);
    if (same) return;
    this.state = next;
    this.listeners.forEach((l) => l());
  }
}

/** Exponential backoff with full jitter: 0.5s, 1s, 2s … capped at 30s. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(30_000, 500 * 2 ** Math.max(0, attempt));
  return Math.round(cap / 2 + (random() * cap) / 2);
}
