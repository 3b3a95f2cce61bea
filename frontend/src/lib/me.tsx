import { createContext, useContext, useMemo, type ReactNode } from 'react';
import { useQuery } from 'urql';
import { MeQuery } from './operations';
import { capabilities, NO_CAPABILITIES, type Capabilities } from './access';
import { describe } from './client';
import type { MeQuery as MeResult } from '../gql/graphql';

export interface MeState {
  me: MeResult['me'] | null;
  caps: Capabilities;
  fetching: boolean;
  error: string | null;
}

const MeContext = createContext<MeState>({ me: null, caps: NO_CAPABILITIES, fetching: false, error: null });

/** Asks the API who the caller is, once per key, and shares it (role → which controls show). */
export function MeProvider({ children }: { children: ReactNode }) {
  const [{ data, error, fetching }] = useQuery({ query: MeQuery });
  const me = data?.me ?? null;
  const value = useMemo<MeState>(
    () => ({ me, caps: capabilities(me), fetching, error: error ? describe(error) : null }),
    [me, fetching, error],
  );
  return <MeContext.Provider value={value}>{children}</MeContext.Provider>;
}

export function useMe(): MeState {
  return useContext(MeContext);
}
