import { useConnection } from '../lib/ApiProvider';
import { useNow } from '../lib/hooks';

export function ConnectionIndicator() {
  const c = useConnection();
  const now = useNow(500);
  let text: string;
  switch (c.status) {
    case 'live':
      text = 'Live';
      break;
    case 'connecting':
      text = 'Connecting…';
      break;
    case 'reconnecting': {
      const s = c.retryAt ? Math.max(0, Math.ceil((c.retryAt - now) / 1000)) : 0;
      text = s > 0 ? `Reconnecting in ${s}s` : 'Reconnecting…';
      break;
    }
    case 'offline':
      text = 'Offline';
      break;
    case 'unauthorized':
      text = 'Key rejected';
      break;
  }
  return (
    <div
      className={`conn conn-${c.status}`}
      role="status"
      aria-live="polite"
      title={c.lastError ?? undefined}
      data-connection={c.status}
    >
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-text">{text}</span>
    </div>
  );
}
