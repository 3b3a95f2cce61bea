import { useCallback, useEffect, useRef, useState } from 'react';
import { print } from 'graphql';
import { useClients } from './ApiProvider';
import { useKeyedState } from './hooks';
import { describe } from './client';
import { createFrameBatcher } from './frameBatcher';
import { JobEventsHistoryQuery, JobEventsSubscription } from './operations';
import type { JobEventFieldsFragment } from '../gql/graphql';
import {
  applyHistory,
  applyLive,
  emptyTimeline,
  isFinished,
  resumeAfter,
  type MergeResult,
  type TimelineEvent,
  type TimelineState,
} from './timeline';

/** Events per history request; a full page means there may be more. */
const HISTORY_PAGE = 500;

export type LiveStatus = 'connecting' | 'live' | 'ended' | 'error';

const SUBSCRIPTION_TEXT = print(JobEventsSubscription);

function toEvent(e: JobEventFieldsFragment): TimelineEvent {
  return { seq: e.seq, type: e.type, status: e.status, progress: e.progress, message: e.message, data: e.data, at: e.at };
}

/**
 * The Job page's live timeline: history over HTTP + `jobEvents` over the socket,
 * merged by the pure functions in ./timeline. On a dropped connection graphql-ws
 * resubscribes with the same payload object; its `after` variable is a getter, so
 * the resubscription asks for `after: <last contiguous seq>` and nothing is missed.
 */
export function useJobTimeline(jobId: string) {
  const { urql, ws } = useClients();
  const [state, setState] = useState<TimelineState>(emptyTimeline);
  const stateRef = useRef(state);
  const [epoch, setEpoch] = useState(0);
  // Per subscription: a new job or a resubscription starts 'connecting', with no error.
  const subscriptionKey = `${jobId}#${epoch}`;
  const [liveStatus, setLiveStatus] = useKeyedState<LiveStatus>(subscriptionKey, 'connecting');
  const [liveError, setLiveError] = useKeyedState<string | null>(subscriptionKey, null);
  const [historyError, setHistoryError] = useState<string | null>(null);
  const [historyLoaded, setHistoryLoaded] = useState(false);
  const inFlight = useRef(false);
  const historyLoadedRef = useRef(false);
  const pendingGap = useRef(false);
  const alive = useRef(true);

  // Reset when the job changes.
  useEffect(() => {
    alive.current = true;
    stateRef.current = emptyTimeline();
    setState(stateRef.current);
    historyLoadedRef.current = false;
    setHistoryLoaded(false);
    setHistoryError(null);
    return () => {
      alive.current = false;
    };
  }, [jobId]);

  const fetchHistory = useCallback(
    (from: number, upTo?: number) => {
      const fetchFrom = async (after: number, upTo?: number): Promise<void> => {
        if (inFlight.current) {
          pendingGap.current = true;
          return;
        }
        inFlight.current = true;
        const res = await urql
          .query(JobEventsHistoryQuery, { id: jobId, after, first: HISTORY_PAGE }, { requestPolicy: 'network-only' })
          .toPromise();
        inFlight.current = false;
        if (!alive.current) return;
        if (res.error || !res.data?.job) {
          setHistoryError(res.error ? describe(res.error) : 'Job not found');
          return;
        }
        setHistoryError(null);
        historyLoadedRef.current = true;
        setHistoryLoaded(true);
        const before = stateRef.current;
        const events = res.data.job.events.map(toEvent);
        // Treat the answer as possibly paged first; if it moved nothing forward, the
        // missing seqs do not exist (confirmed hole), so mark them known up to `upTo`.
        let merged = applyHistory(before, events, { after });
        const progressed = merged.state.knownThrough > before.knownThrough;
        if (!progressed && upTo !== undefined) merged = applyHistory(before, events, { after, upTo });
        stateRef.current = merged.state;
        setState(merged.state);
        const s = stateRef.current;
        const newest = events.reduce((m, e) => Math.max(m, e.seq), after);
        if (events.length >= HISTORY_PAGE && newest > after) {
          // Full page: fetch the next one straight away.
          await fetchFrom(newest, upTo);
        } else if ((progressed || pendingGap.current) && s.maxSeq > s.knownThrough) {
          pendingGap.current = false;
          await fetchFrom(s.knownThrough, s.maxSeq);
        }
      };
      return fetchFrom(from, upTo);
    },
    [jobId, urql],
  );

  const commit = useCallback(
    (result: MergeResult) => {
      stateRef.current = result.state;
      setState(result.state);
      // Before the first history page lands, gaps are expected: that page fills them.
      if (result.gap && historyLoadedRef.current) void fetchHistory(result.gap.after, result.gap.upTo);
    },
    [fetchHistory],
  );

  // Initial history.
  useEffect(() => {
    void fetchHistory(0);
  }, [fetchHistory]);

  // Live subscription (resubscribes when `epoch` changes, e.g. after a retry).
  useEffect(() => {
    const batcher = createFrameBatcher<TimelineEvent>((items) => {
      if (alive.current) commit(applyLive(stateRef.current, items));
    });
    const variables = {
      jobId,
      get after(): number | null {
        return resumeAfter(stateRef.current) ?? null;
      },
    };
    const dispose = ws.subscribe<{ jobEvents: JobEventFieldsFragment }>(
      { query: SUBSCRIPTION_TEXT, variables },
      {
        next(result) {
          if (result.errors?.length) {
            setLiveError(describe(result.errors));
            setLiveStatus('error');
            return;
          }
          const ev = result.data?.jobEvents;
          if (!ev) return;
          setLiveStatus('live');
          batcher.push(toEvent(ev));
        },
        error(err) {
          batcher.flushNow();
          setLiveError(describe(err));
          setLiveStatus('error');
        },
        complete() {
          batcher.flushNow();
          setLiveStatus((s) => (s === 'error' ? s : 'ended'));
        },
      },
    );
    return () => {
      batcher.cancel();
      dispose();
    };
    // setLiveStatus/setLiveError are per subscription key: a new epoch subscribes again.
  }, [jobId, ws, commit, setLiveStatus, setLiveError]);

  const resubscribe = useCallback(() => setEpoch((e) => e + 1), []);

  return {
    state,
    finished: isFinished(state),
    liveStatus,
    liveError,
    historyError,
    historyLoaded,
    resubscribe,
    refetchHistory: () => void fetchHistory(0),
  };
}
