import { useCallback, useState } from 'react';
import { useClients } from '../../lib/ApiProvider';
import { summarize } from '../../lib/bulk';
import { describe } from '../../lib/client';
import { useKeyedState } from '../../lib/hooks';
import { runBulkJobAction, type JobAction } from '../../lib/jobActions';
import type { JobRow } from '../../lib/jobsList';
import { CancelJobsMutation, RetryJobsMutation } from '../../lib/operations';
import type { JobFilter } from '../../gql/graphql';
import { CANCELLABLE, RETRYABLE } from '../../components/ui';
import { useToast } from '../../components/Toasts';
import type { JobsList } from './useJobsList';

const NONE: ReadonlySet<string> = new Set();

export interface JobBulkActions {
  selected: ReadonlySet<string>;
  allSelected: boolean;
  someSelected: boolean;
  /** Selected rows each action applies to (by status). */
  canCancel: JobRow[];
  canRetry: JobRow[];
  toggle: (id: string) => void;
  toggleAll: () => void;
  clearSelection: () => void;
  /** The action running (buttons show it and wait), or null. */
  busy: JobAction | null;
  runSelected: (action: JobAction, rows: JobRow[]) => Promise<void>;
  /** The "every job matching the filters" action awaiting confirmation, or null. */
  confirming: JobAction | null;
  askMatching: (action: JobAction | null) => void;
  runMatching: (action: JobAction) => Promise<void>;
}

/**
 * Multi-select cancel/retry (one mutation per job, results patched into the list) and
 * cancel/retry of every job matching the filter (`cancelJobs`/`retryJobs`), after an
 * inline confirmation. Selection and confirmation belong to one filter.
 */
export function useJobBulkActions(
  list: Pick<JobsList, 'state' | 'dispatch' | 'reload'>,
  filter: JobFilter,
  filterKey: string,
): JobBulkActions {
  const { urql } = useClients();
  const toast = useToast();
  const { state, dispatch, reload } = list;
  const [selected, setSelected] = useKeyedState<ReadonlySet<string>>(filterKey, NONE);
  const [confirming, askMatching] = useKeyedState<JobAction | null>(filterKey, null);
  const [busy, setBusy] = useState<JobAction | null>(null);

  const selectedRows = [...selected].map((id) => state.rows.get(id)).filter((r): r is JobRow => !!r);
  const allSelected = state.ids.length > 0 && selected.size === state.ids.length;

  const toggle = useCallback(
    (id: string) =>
      setSelected((sel) => {
        const next = new Set(sel);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      }),
    [setSelected],
  );

  async function runSelected(action: JobAction, rows: JobRow[]) {
    if (!rows.length) return;
    setBusy(action);
    // A row that gets a live update while the mutations run keeps that fresher state.
    const ifSeq = new Map(rows.map((r) => [r.id, r.seq]));
    const outcome = await runBulkJobAction(urql, action, rows.map((r) => r.id));
    setBusy(null);
    dispatch({ type: 'patch', jobs: outcome.ok, ifSeq });
    setSelected((sel) => {
      const next = new Set(sel);
      outcome.ok.forEach((j) => next.delete(j.id));
      return next;
    });
    toast(summarize(action === 'cancel' ? 'Cancel requested for' : 'Retried', outcome), outcome.failed.length ? 'error' : 'success');
  }

  async function runMatching(action: JobAction) {
    askMatching(null);
    setBusy(action);
    const res =
      action === 'cancel'
        ? await urql.mutation(CancelJobsMutation, { filter }).toPromise()
        : await urql.mutation(RetryJobsMutation, { filter }).toPromise();
    setBusy(null);
    if (res.error) {
      toast(`${action === 'cancel' ? 'Cancel' : 'Retry'} failed: ${describe(res.error)}`, 'error');
      return;
    }
    const data = res.data as { cancelJobs?: { count: number }; retryJobs?: { count: number } } | undefined;
    const n = (action === 'cancel' ? data?.cancelJobs?.count : data?.retryJobs?.count) ?? 0;
    toast(`${action === 'cancel' ? 'Cancel requested for' : 'Retried'} ${n} matching job${n === 1 ? '' : 's'}`, 'success');
    reload('merge');
  }

  return {
    selected,
    allSelected,
    someSelected: selected.size > 0 && !allSelected,
    canCancel: selectedRows.filter((r) => CANCELLABLE.has(r.status)),
    canRetry: selectedRows.filter((r) => RETRYABLE.has(r.status)),
    toggle,
    toggleAll: () => setSelected(allSelected ? NONE : new Set(state.ids)),
    clearSelection: () => setSelected(NONE),
    busy,
    runSelected,
    confirming,
    askMatching,
    runMatching,
  };
}
