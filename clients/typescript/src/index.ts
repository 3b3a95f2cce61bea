// Conveyor's client kit (ADR-0024). What a frontend needs beyond the stock clients:
// - `createConveyorClient`: a graphql-ws client that sends the key in `connection_init` and
//   stops at once on an auth failure (graphql-ws retries 4403 for ~39 s by default);
// - `followJob` / `followWorkflowRun`: every event once, in order, across reconnects (graphql-ws
//   resubscribes with the original variables, so a plain subscription gets a new SNAPSHOT and
//   misses what happened while it was away);
// - `shouldRetry` / `isAuthFailure` for clients built elsewhere (Apollo's GraphQLWsLink,
//   urql's subscriptionExchange take the same graphql-ws client).
import { createClient, type Client, type ClientOptions, type FormattedExecutionResult } from 'graphql-ws';

/** What Conveyor's `JSON` scalar holds (payloads, results, event data). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Close codes of a credential the server refused (missing, wrong, revoked, expired). */
export const AUTH_FAILURE_CODES: readonly number[] = [4401, 4403];
/** Close codes no retry can fix: a bad request, no common subprotocol. */
const FATAL_CODES: readonly number[] = [4400, 4406];

interface CloseLike {
  code: number;
  reason?: string;
}

function isCloseLike(e: unknown): e is CloseLike {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as CloseLike).code === 'number';
}

/** Whether `e` (a graphql-ws close event or error) says the credential was refused. */
export function isAuthFailure(e: unknown): boolean {
  return isCloseLike(e) && AUTH_FAILURE_CODES.includes(e.code);
}

/** graphql-ws `shouldRetry`: retry a dropped connection, never a refused credential. */
export function shouldRetry(e: unknown): boolean {
  return !(isCloseLike(e) && (AUTH_FAILURE_CODES.includes(e.code) || FATAL_CODES.includes(e.code)));
}

/** Capped exponential backoff with full jitter: 0.5 s doubling up to 30 s. */
export function backoffMs(retries: number): number {
  return Math.random() * Math.min(30_000, 500 * 2 ** retries);
}

export interface ConveyorClientOptions extends Omit<ClientOptions, 'url' | 'connectionParams'> {
  /** `ws(s)://host/graphql`. */
  url: string;
  /** An API key or a token from `createToken`, or a function returning one (re-read on every connect). */
  apiKey: string | (() => string | Promise<string>);
}

/** A graphql-ws client for Conveyor: retries dropped connections for ever with backoff,
 * stops at once when the key is refused (the error reaches every subscription). */
export function createConveyorClient(options: ConveyorClientOptions): Client {
  const { apiKey, ...rest } = options;
  return createClient({
    retryAttempts: Infinity,
    shouldRetry,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, backoffMs(retries))),
    ...rest,
    connectionParams: async () => ({
      authorization: `Bearer ${typeof apiKey === 'function' ? await apiKey() : apiKey}`,
    }),
  });
}

/** One event of `jobEvents` as `followJob` selects it. */
export interface JobEvent {
  seq: number;
  type: string;
  status: string;
  progress: number | null;
  message: string | null;
  data: JsonValue | null;
  at: string;
}

export interface FollowOptions {
  /** Resume after this `seq` (no SNAPSHOT first); default: a SNAPSHOT, then every later event. */
  after?: number;
  /** Stop following (the iterator ends). */
  signal?: AbortSignal;
}

/** The GraphQL errors an operation ended with (not a connection problem). */
export class ConveyorError extends Error {
  constructor(readonly errors: readonly { message: string; extensions?: Record<string, unknown> }[]) {
    super(errors.map((e) => e.message).join('; ') || 'GraphQL error');
    this.name = 'ConveyorError';
  }

  get code(): string | undefined {
    const code = this.errors[0]?.extensions?.['code'];
    return typeof code === 'string' ? code : undefined;
  }
}

const JOB_EVENTS = `subscription FollowJob($id: ID!, $after: Int) {
  jobEvents(jobId: $id, after: $after) { seq type status progress message data at }
}`;

/** Every event of a job once, in `seq` order, until its terminal event, across reconnects. */
export function followJob(client: Client, jobId: string, options: FollowOptions = {}): AsyncGenerator<JobEvent> {
  return follow<JobEvent>(client, JOB_EVENTS, { id: jobId }, 'jobEvents', options);
}

/** Every event of a workflow run once, in `seq` order, until the run's terminal event.
 * `selection`: the fields of each event to fetch (`seq` is always added). */
export function followWorkflowRun<T extends { seq: number } = { seq: number }>(
  client: Client,
  runId: string,
  options: FollowOptions & { selection?: string } = {},
): AsyncGenerator<T> {
  const fields = options.selection ?? 'seq';
  const query = `subscription FollowWorkflowRun($id: ID!, $after: Int) {
  workflowEvents(runId: $id, after: $after) { seq ${fields} }
}`;
  return follow<T>(client, query, { id: runId }, 'workflowEvents', options);
}

async function* follow<T extends { seq: number }>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  field: string,
  options: FollowOptions,
): AsyncGenerator<T> {
  let last = options.after ?? null;
  // graphql-ws sends this same payload object again on every resubscribe after a reconnect:
  // keeping `after` current in it is what makes its own retries resume instead of restart.
  const payload = { query, variables: { ...variables, after: last } };
  for (let attempt = 0; ; attempt++) {
    const results = new Channel<FormattedExecutionResult<Record<string, T>>>();
    const dispose = client.subscribe<Record<string, T>>(payload, results);
    const stop = () => results.complete();
    options.signal?.addEventListener('abort', stop);
    try {
      for await (const result of results) {
        if (result.errors?.length) throw new ConveyorError(result.errors);
        const event = result.data?.[field];
        if (!event) continue;
        if (last !== null && event.seq <= last) continue; // seen before a reconnect
        last = event.seq;
        payload.variables.after = last;
        attempt = 0;
        yield event;
      }
      return; // completed after the terminal event, or stopped
    } catch (e) {
      // graphql-ws hands an `error` message's GraphQL errors over as a bare array.
      if (Array.isArray(e)) throw new ConveyorError(e as ConstructorParameters<typeof ConveyorError>[0]);
      if (e instanceof ConveyorError || isAuthFailure(e) || !isCloseLike(e) || !shouldRetry(e)) throw e;
      // A close graphql-ws gives up on (e.g. 4429, a subscriber too slow): subscribe again
      // from the last event seen.
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
    } finally {
      options.signal?.removeEventListener('abort', stop);
      dispose();
    }
  }
}

/** A graphql-ws sink as an async iterable. */
class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private failure: { error: unknown } | null = null;
  private wake: (() => void) | null = null;

  next = (value: T): void => {
    this.items.push(value);
    this.notify();
  };

  error = (error: unknown): void => {
    this.failure = { error };
    this.notify();
  };

  complete = (): void => {
    this.done = true;
    this.notify();
  };

  private notify(): void {
    this.wake?.();
    this.wake = null;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.failure) throw this.failure.error;
      if (this.done) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
