import type { Client } from 'urql';
import { CancelJobMutation, RetryJobMutation } from './operations';
import { describe } from './client';
import { describePolicyDenied } from './access';
import { mapLimit, type BulkOutcome } from './bulk';
import type { JobRowFragment } from '../gql/graphql';

export type JobAction = 'cancel' | 'retry';

export async function runJobAction(client: Client, action: JobAction, id: string): Promise<{ job?: JobRowFragment; error?: string }> {
  if (action === 'cancel') {
    const res = await client.mutation(CancelJobMutation, { id }).toPromise();
    if (res.error) return { error: describe(res.error) };
    const r = res.data?.cancelJob;
    if (!r) return { error: 'No answer' };
    if (r.__typename === 'Job') return { job: r };
    return { error: r.message };
  }
  const res = await client.mutation(RetryJobMutation, { id }).toPromise();
  if (res.error) return { error: describe(res.error) };
  const r = res.data?.retryJob;
  if (!r) return { error: 'No answer' };
  if (r.__typename === 'Job') return { job: r };
  if (r.__typename === 'PolicyDenied') return { error: describePolicyDenied(r) };
  return { error: r.message };
}

export async function runBulkJobAction(client: Client, action: JobAction, ids: string[]): Promise<BulkOutcome<JobRowFragment>> {
  const results = await mapLimit(ids, 6, async (id) => ({ id, ...(await runJobAction(client, action, id)) }));
  return {
    ok: results.filter((r) => r.job).map((r) => r.job!),
    failed: results.filter((r) => !r.job).map((r) => ({ id: r.id, message: r.error ?? 'failed' })),
  };
}
