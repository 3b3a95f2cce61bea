import type { ReactNode } from 'react';
import type { JobKindsQuery } from '../../gql/graphql';
import { JOB_STATUSES, statusLabel } from '../../components/ui';
import type { JobsFilter } from './useJobsFilter';

/** Status chips, the kind menu and "Clear filters"; `children` go at the end of the row. */
export function JobsFilters({ filter, kinds, children }: { filter: JobsFilter; kinds: JobKindsQuery['jobKinds']; children?: ReactNode }) {
  const { status, kind, set, toggleStatus, active } = filter;
  return (
    <div className="filters" role="group" aria-label="Filters">
      <div className="chip-group" role="group" aria-label="Status">
        {JOB_STATUSES.map((s) => (
          <button
            key={s}
            type="button"
            className={`chip status-chip-${s.toLowerCase()}`}
            aria-pressed={status.includes(s)}
            onClick={() => toggleStatus(s)}
          >
            {statusLabel(s)}
          </button>
        ))}
      </div>
      <div className="filter-kind">
        <label htmlFor="kind-filter" className="sr-only">
          Kind
        </label>
        <select id="kind-filter" className="input input-sm" value={kind ?? ''} onChange={(e) => set({ status, kind: e.target.value || null })}>
          <option value="">All kinds</option>
          {kinds.map((k) => (
            <option key={k.name} value={k.name}>
              {k.name}
            </option>
          ))}
          {kind && !kinds.some((k) => k.name === kind) && <option value={kind}>{kind}</option>}
        </select>
      </div>
      {active && (
        <button type="button" className="btn btn-ghost btn-sm" onClick={() => set({ status: [], kind: null })}>
          Clear filters
        </button>
      )}
      {children}
    </div>
  );
}
