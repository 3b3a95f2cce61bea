import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from 'react';
import { Provider } from 'urql';
import { clearApiKey, getApiKey, getSignOutReason, setApiKey, subscribeApiKey } from './auth';
import { createApiClients, type ApiClients } from './client';
import type { ConnectionState } from './connection';

interface ApiContextValue {
  apiKey: string | null;
  clients: ApiClients | null;
  signIn: (key: string) => void;
  signOut: (reason?: string) => void;
  signOutReason: string | null;
}

const ApiContext = createContext<ApiContextValue | null>(null);
const REJECTED = 'The API rejected this key. Sign in with a valid key.';

export function ApiProvider({ children }: { children: ReactNode }) {
  const apiKey = useSyncExternalStore(subscribeApiKey, getApiKey, () => null);
  const signOutReason = useSyncExternalStore(subscribeApiKey, getSignOutReason, () => null);

  const clients = useMemo(() => (apiKey ? createApiClients(apiKey, () => clearApiKey(REJECTED)) : null), [apiKey]);

  useEffect(() => () => clients?.dispose(), [clients]);

  const value = useMemo<ApiContextValue>(
    () => ({
      apiKey,
      clients,
      signIn: setApiKey,
      signOut: (reason) => clearApiKey(reason ?? null),
      signOutReason,
    }),
    [apiKey, clients, signOutReason],
  );

  const inner = clients ? <Provider value={clients.urql}>{children}</Provider> : children;
  return <ApiContext.Provider value={value}>{inner}</ApiContext.Provider>;
}

export function useApi(): ApiContextValue {
  const ctx = useContext(ApiContext);
  if (!ctx) throw new Error('useApi outside ApiProvider');
  return ctx;
}

/** Clients for a signed-in page (the router only renders those when signed in). */
export function useClients(): ApiClients {
  const { clients } = useApi();
  if (!clients) throw new Error('not signed in');
  return clients;
}

const OFFLINE: ConnectionState = { status: 'offline', retryAt: null, attempt: 0, reconnects: 0, lastError: null };
const noop = () => () => {};

export function useConnection(): ConnectionState {
  const { clients } = useApi();
  return useSyncExternalStore(
    clients ? clients.connection.subscribe : noop,
    clients ? clients.connection.get : () => OFFLINE,
  );
}
