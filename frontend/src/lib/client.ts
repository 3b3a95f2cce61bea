import { Client, fetchExchange, subscriptionExchange } from 'urql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { bearer } from './auth';
import { backoffMs, ConnectionStore } from './connection';

export const GRAPHQL_PATH = '/graphql';
/** Close code the API uses for a rejected key on the WebSocket. */
export const WS_FORBIDDEN = 4403;
const PONG_TIMEOUT_MS = 5_000;
const KEEPALIVE_MS = 10_000;

export interface ApiClients {
  urql: Client;
  ws: WsClient;
  connection: ConnectionStore;
  dispose(): void;
}

export function wsUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${GRAPHQL_PATH}`;
}

function isCloseEvent(e: unknown): e is { code: number; reason?: string } {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'number';
}

/** Waits `ms`, or less if the browser comes back online. */
function sleepOrOnline(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      window.removeEventListener('online', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    window.addEventListener('online', done);
  });
}

export function createApiClients(apiKey: string, onUnauthorized: () => void): ApiClients {
  const connection = new ConnectionStore();
  let activeSocket: WebSocket | null = null;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let everConnected = false;

  const ws = createWsClient({
    url: wsUrl(),
    lazy: false,
    keepAlive: KEEPALIVE_MS,
    retryAttempts: Infinity,
    connectionParams: () => ({ authorization: bearer(apiKey) }),
    shouldRetry: (e) => !(isCloseEvent(e) && e.code === WS_FORBIDDEN),
    retryWait: async (retries) => {
      const ms = backoffMs(retries);
      connection.update({
        status: navigator.onLine === false ? 'offline' : 'reconnecting',
        retryAt: Date.now() + ms,
        attempt: retries + 1,
      });
      await sleepOrOnline(ms);
      connection.update({ retryAt: null });
    },
    onNonLazyError: (e) => {
      if (isCloseEvent(e) && e.code === WS_FORBIDDEN) return;
      connection.update({ status: 'offline', lastError: describe(e) });
    },
    on: {
      connecting: () => {
        const s = connection.get().status;
        if (s !== 'offline' && s !== 'unauthorized') connection.update({ status: everConnected ? 'reconnecting' : 'connecting' });
      },
      opened: (socket) => {
        activeSocket = socket as WebSocket;
      },
      connected: (_socket, _payload, wasRetry) => {
        const reconnects = connection.get().reconnects + (everConnected || wasRetry ? 1 : 0);
        everConnected = true;
        connection.update({ status: 'live', retryAt: null, attempt: 0, reconnects, lastError: null });
      },
      ping: (received) => {
        // Dead-socket detection: if our ping is not answered in time, drop and reconnect.
        if (!received) {
          clearTimeout(pongTimer);
          pongTimer = setTimeout(() => {
            if (activeSocket && activeSocket.readyState === WebSocket.OPEN) activeSocket.close(4408, 'Pong timeout');
          }, PONG_TIMEOUT_MS);
        }
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: (e) => {
        activeSocket = null;
        clearTimeout(pongTimer);
        if (isCloseEvent(e) && e.code === WS_FORBIDDEN) {
          connection.update({ status: 'unauthorized', lastError: 'API key rejected' });
          onUnauthorized();
          return;
        }
        if (connection.get().status === 'live') {
          connection.update({ status: navigator.onLine === false ? 'offline' : 'reconnecting' });
        }
      },
    },
  });

  const onOffline = () => connection.update({ status: 'offline' });
  const onOnline = () => {
    if (connection.get().status === 'offline') connection.update({ status: 'reconnecting' });
  };
  window.addEventListener('offline', onOffline);
  window.addEventListener('online', onOnline);

  const authFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status === 401) onUnauthorized();
    return res;
  };

  const urql = new Client({
    url: GRAPHQL_PATH,
    // No document cache: this is a live dashboard; pages own their state and
    // the subscriptions keep it fresh.
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
    fetch: authFetch,
    fetchOptions: () => ({ headers: { Authorization: bearer(apiKey) } }),
    requestPolicy: 'network-only',
    preferGetMethod: false,
  });

  return {
    urql,
    ws,
    connection,
    dispose() {
      window.removeEventListener('offline', onOffline);
      window.removeEventListener('online', onOnline);
      clearTimeout(pongTimer);
      void ws.dispose();
    },
  };
}

export function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (isCloseEvent(e)) return `Connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`;
  if (Array.isArray(e)) return e.map(describe).join('; ');
  // GraphQL errors as sent (`{ message, path, ... }`) are plain objects, not Errors.
  if (typeof e === 'object' && e !== null) return 'message' in e && typeof e.message === 'string' ? e.message : JSON.stringify(e);
  return String(e);
}
