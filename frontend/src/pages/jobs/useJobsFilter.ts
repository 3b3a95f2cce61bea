import { useCallback, useMemo } from 'react';
import { useSearchParams } from 'react-router-dom';
import type { JobFilter, JobStatus } from '../../gql/graphql';
import { JOB_STATUSES } from '../../components/ui';

export interface JobsFilterChoice {
  status: JobStatus[];
  kind: string | null;
}

export interface JobsFilter extends JobsFilterChoice {
  /** The `jobs(filter:)` argument; the same object until the URL changes. */
  filter: JobFilter;
  /** `filter` as text, for state that belongs to one filter (selection, confirmation). */
  key: string;
  active: boolean;
  set: (choice: JobsFilterChoice) => void;
  toggleStatus: (status: JobStatus) => void;
}

/** The Jobs page's filter, kept in the URL (`?status=RUNNING,QUEUED&kind=demo.sleep`). */
export function useJobsFilter(): JobsFilter {
  const [params, setParams] = useSearchParams();
  const statusParam = params.get('status') ?? '';
  const kind = params.get('kind');
  const status = useMemo(
    () => statusParam.split(',').filter((s): s is JobStatus => (JOB_STATUSES as string[]).includes(s)),
    [statusParam],
  );
  const filter = useMemo<JobFilter>(() => {
    const f: JobFilter = {};
    if (status.length) f.status = status;
    if (kind) f.kind = [kind];
    return f;
  }, [status, kind]);
  const set = useCallback(
    (choice: JobsFilterChoice) => {
      const next = new URLSearchParams();
      if (choice.status.length) next.set('status', choice.status.join(','));
      if (choice.kind) next.set('kind', choice.kind);
      setParams(next, { replace: true });
    },
    [setParams],
  );
  const toggleStatus = useCallback(
    (s: JobStatus) => set({ status: status.includes(s) ? status.filter((x) => x !== s) : [...status, s], kind }),
    [set, status, kind],
  );
  return { filter, key: JSON.stringify(filter), status, kind, active: status.length > 0 || !!kind, set, toggleStatus };
}
