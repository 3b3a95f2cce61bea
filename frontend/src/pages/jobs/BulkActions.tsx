import { formatCount } from '../../lib/format';
import type { JobAction } from '../../lib/jobActions';
import type { JobBulkActions } from './useJobBulkActions';

/**
 * "Cancel/Retry all matching…" and its inline confirmation ("… every job matching these
 * filters (N)? Yes / No"): acting on a filter can touch thousands of jobs, so it asks first.
 */
export function MatchingActions({ total, bulk }: { total: number; bulk: JobBulkActions }) {
  const { confirming, askMatching, runMatching, busy } = bulk;
  return (
    <div className="bulk-filter" role="group" aria-label="Act on every job matching the filters">
      {confirming ? (
        <ConfirmMatching action={confirming} total={total} onYes={() => void runMatching(confirming)} onNo={() => askMatching(null)} />
      ) : (
        <>
          <button type="button" className="btn btn-sm btn-danger" onClick={() => askMatching('cancel')} disabled={busy !== null}>
            Cancel all matching…
          </button>
          <button type="button" className="btn btn-sm" onClick={() => askMatching('retry')} disabled={busy !== null}>
            Retry all matching…
          </button>
        </>
      )}
    </div>
  );
}

function ConfirmMatching({ action, total, onYes, onNo }: { action: JobAction; total: number; onYes: () => void; onNo: () => void }) {
  return (
    <>
      <span className="bulk-confirm" role="alert">
        {action === 'cancel' ? 'Cancel' : 'Retry'} every job matching these filters ({formatCount(total)})?
      </span>
      <button type="button" className={`btn btn-sm ${action === 'cancel' ? 'btn-danger' : 'btn-primary'}`} onClick={onYes}>
        Yes, {action} all
      </button>
      <button type="button" className="btn btn-ghost btn-sm" onClick={onNo}>
        No
      </button>
    </>
  );
}

/** Shown while jobs are selected: cancel/retry those the action applies to. */
export function SelectionBar({ bulk }: { bulk: JobBulkActions }) {
  const { selected, canCancel, canRetry, busy, runSelected, clearSelection } = bulk;
  return (
    <div className="selection-bar" role="region" aria-label="Selection">
      <span>
        <strong>{selected.size}</strong> selected
      </span>
      <button type="button" className="btn btn-sm btn-danger" disabled={!canCancel.length || busy !== null} onClick={() => void runSelected('cancel', canCancel)}>
        {busy === 'cancel' ? 'Cancelling…' : `Cancel ${canCancel.length}`}
      </button>
      <button type="button" className="btn btn-sm" disabled={!canRetry.length || busy !== null} onClick={() => void runSelected('retry', canRetry)}>
        {busy === 'retry' ? 'Retrying…' : `Retry ${canRetry.length}`}
      </button>
      <button type="button" className="btn btn-ghost btn-sm" onClick={clearSelection}>
        Clear selection
      </button>
    </div>
  );
}
