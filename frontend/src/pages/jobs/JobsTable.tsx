import { memo, useEffect, useRef } from 'react';
import { Link } from 'react-router-dom';
import { useVirtualizer } from '@tanstack/react-virtual';
import { formatAge, jobDuration, shortId } from '../../lib/format';
import { useMediaQuery, useNow } from '../../lib/hooks';
import type { JobRow, JobsListState } from '../../lib/jobsList';
import { ProgressBar, StatusBadge } from '../../components/ui';

/** Rows left below the viewport when the next page is asked for (infinite scroll). */
const NEAR_END_ROWS = 25;

/** The virtualised jobs table: only the rows in view (plus overscan) are in the DOM. */
export function JobsTable({
  state,
  selectable,
  selected,
  allSelected,
  someSelected,
  onToggle,
  onToggleAll,
  onNearEnd,
}: {
  state: JobsListState;
  /** False for read-only callers (viewers, tokens): no selection checkboxes. */
  selectable: boolean;
  selected: ReadonlySet<string>;
  allSelected: boolean;
  someSelected: boolean;
  onToggle: (id: string) => void;
  onToggleAll: () => void;
  onNearEnd: () => void;
}) {
  const now = useNow(1000);
  const compact = useMediaQuery('(max-width: 760px)');
  const rowHeight = compact ? 88 : 52;
  const scrollRef = useRef<HTMLDivElement>(null);
  const headerCheck = useRef<HTMLInputElement>(null);
  // eslint-disable-next-line react-hooks/incompatible-library -- a notice for the React Compiler, which this build does not run; nothing memoizes the virtualizer's functions
  const virtualizer = useVirtualizer({
    count: state.ids.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan: 12,
    getItemKey: (i) => state.ids[i] ?? i,
  });
  useEffect(() => {
    virtualizer.measure();
  }, [rowHeight, virtualizer]);
  useEffect(() => {
    if (headerCheck.current) headerCheck.current.indeterminate = someSelected;
  }, [someSelected]);

  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1]!.index : 0;
  useEffect(() => {
    if (state.hasNextPage && lastIndex >= state.ids.length - NEAR_END_ROWS) onNearEnd();
  }, [lastIndex, state.ids.length, state.hasNextPage, onNearEnd]);

  return (
    <div className="jt" role="table" aria-label="Jobs" aria-rowcount={state.ids.length + 1}>
      <div className="jt-head" role="rowgroup">
        <div className="jt-row jt-header-row" role="row" aria-rowindex={1}>
          <div className="jt-cell jt-check" role="columnheader">
            {selectable ? (
              <input
                ref={headerCheck}
                type="checkbox"
                className="checkbox"
                checked={allSelected}
                onChange={onToggleAll}
                aria-label="Select all loaded jobs"
              />
            ) : (
              <span className="sr-only">Row</span>
            )}
          </div>
          <div className="jt-cell jt-job" role="columnheader">
            Job
          </div>
          <div className="jt-cell jt-status" role="columnheader">
            Status
          </div>
          <div className="jt-cell jt-progress" role="columnheader">
            Progress
          </div>
          <div className="jt-cell jt-attempts" role="columnheader">
            Attempts
          </div>
          <div className="jt-cell jt-age" role="columnheader">
            Age
          </div>
          <div className="jt-cell jt-duration" role="columnheader">
            Duration
          </div>
        </div>
      </div>
      <div className="jt-body" role="rowgroup" ref={scrollRef} data-testid="jobs-scroll">
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((v) => {
            const id = state.ids[v.index]!;
            const row = state.rows.get(id);
            if (!row) return null;
            return (
              <JobRowView
                key={id}
                row={row}
                index={v.index}
                start={v.start}
                height={rowHeight}
                now={row.finishedAt ? 0 : now}
                ageNow={now}
                selectable={selectable}
                selected={selected.has(id)}
                onToggle={onToggle}
              />
            );
          })}
        </div>
      </div>
    </div>
  );
}

const JobRowView = memo(function JobRowView({
  row,
  index,
  start,
  height,
  now,
  ageNow,
  selectable,
  selected,
  onToggle,
}: {
  row: JobRow;
  index: number;
  start: number;
  height: number;
  /** 0 for a finished row: its duration is fixed, so it need not re-render every second. */
  now: number;
  ageNow: number;
  selectable: boolean;
  selected: boolean;
  onToggle: (id: string) => void;
}) {
  const pctText = `${Math.round((row.progress > 1 ? row.progress / 100 : row.progress) * 100)}%`;
  return (
    <div
      className={`jt-row jt-data-row ${selected ? 'is-selected' : ''}`}
      role="row"
      aria-rowindex={index + 2}
      aria-selected={selected}
      data-job-id={row.id}
      data-status={row.status}
      style={{ transform: `translateY(${start}px)`, height }}
    >
      <div className="jt-cell jt-check" role="cell">
        {selectable && (
          <input
            type="checkbox"
            className="checkbox"
            checked={selected}
            onChange={() => onToggle(row.id)}
            aria-label={`Select job ${shortId(row.id)} (${row.kind})`}
          />
        )}
      </div>
      <div className="jt-cell jt-job" role="cell">
        <Link to={`/jobs/${row.id}`} className="job-link">
          <span className="job-kind">{row.kind}</span>
          <span className="job-id mono">{shortId(row.id)}</span>
        </Link>
        <span className="job-queue">{row.queue}</span>
      </div>
      <div className="jt-cell jt-status" role="cell">
        <StatusBadge status={row.status} />
      </div>
      <div className="jt-cell jt-progress" role="cell">
        <ProgressBar value={row.progress} status={row.status} label={`Progress of job ${shortId(row.id)}`} />
        <span className="progress-text">
          <span className="mono">{pctText}</span>
          {row.progressMessage && <span className="progress-msg"> {row.progressMessage}</span>}
        </span>
      </div>
      <div className="jt-cell jt-attempts" role="cell">
        <span className="cell-label">Attempts </span>
        {row.attempt}
        {row.maxAttempts != null && <span className="muted">/{row.maxAttempts}</span>}
      </div>
      <div className="jt-cell jt-age" role="cell">
        <span className="cell-label">Age </span>
        <time dateTime={row.createdAt}>{formatAge(row.createdAt, ageNow)}</time>
      </div>
      <div className="jt-cell jt-duration" role="cell">
        <span className="cell-label">Took </span>
        {jobDuration(row.startedAt, row.finishedAt, now)}
      </div>
    </div>
  );
});
