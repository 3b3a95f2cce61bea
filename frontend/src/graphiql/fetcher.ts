import type { Fetcher, FetcherOpts, FetcherParams } from '@graphiql/toolkit';
import { createClient, type Client } from 'graphql-ws';
import { Kind, OperationTypeNode, parse, type OperationDefinitionNode } from 'graphql';

/** True when the operation GraphiQL is about to run is a subscription. */
export function isSubscription(query: string, operationName?: string | null): boolean {
  try {
    const doc = parse(query);
    const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const op = operationName ? ops.find((o) => o.name?.value === operationName) : ops[0];
    return op?.operation === OperationTypeNode.SUBSCRIPTION;
  } catch {
    return false;
  }
}

function headerValue(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key ? headers[key] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/**
 * Queries and mutations go over HTTP with the headers from GraphiQL's header editor;
 * subscriptions go over graphql-ws (graphql-transport-ws) and pass the editor's
 * Authorization header in connection_init. One socket per distinct Authorization value.
 */
export function createConveyorFetcher(opts: { url: string; wsUrl: string; defaultAuthorization?: string | undefined }): Fetcher {
  const sockets = new Map<string, Client>();
  const wsFor = (authorization: string | undefined): Client => {
    const k = authorization ?? '';
    let c = sockets.get(k);
    if (!c) {
      c = createClient({
        url: opts.wsUrl,
        lazy: true,
        retryAttempts: 3,
        connectionParams: authorization ? { authorization } : {},
      });
      sockets.set(k, c);
    }
    return c;
  };

  return (params: FetcherParams, fetcherOpts?: FetcherOpts) => {
    // GraphiQL's own requests (schema introspection on load) may come before the header
    // editor is ready: fall back to the dashboard's key then.
    const headers = { ...((fetcherOpts?.headers ?? {}) as Record<string, unknown>) };
    if (!headerValue(headers, 'authorization') && opts.defaultAuthorization) headers.Authorization = opts.defaultAuthorization;
    if (isSubscription(params.query, params.operationName)) {
      const client = wsFor(headerValue(headers, 'authorization'));
      return client.iterate({
        query: params.query,
        variables: (params.variables ?? undefined) as Record<string, unknown> | undefined,
        operationName: params.operationName ?? undefined,
      }) as ReturnType<Fetcher>;
    }
    return fetch(opts.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...(headers as Record<string, string>) },
      body: JSON.stringify(params),
    }).then((r) => r.json());
  };
}
