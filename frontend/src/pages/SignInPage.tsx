import { useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { useApi } from '../lib/ApiProvider';
import { bearer } from '../lib/auth';
import { GRAPHQL_PATH } from '../lib/client';
import { useDocumentTitle } from '../lib/hooks';

export function SignInPage() {
  useDocumentTitle('Sign in');
  const { signIn, signOutReason } = useApi();
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(signOutReason);
  const [busy, setBusy] = useState(false);
  const [params] = useSearchParams();
  const navigate = useNavigate();

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    const k = key.trim();
    if (!k) {
      setError('Enter an API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const res = await fetch(GRAPHQL_PATH, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: bearer(k) },
        body: JSON.stringify({ query: 'query SignInCheck { me { id name } }' }),
      });
      const body = (await res.json().catch(() => null)) as { data?: { me?: unknown }; errors?: Array<{ message: string }> } | null;
      if (res.status === 401) {
        setError('That key was not accepted. Check it and try again.');
      } else if (!res.ok || !body?.data?.me) {
        setError(body?.errors?.[0]?.message ?? `The API answered ${res.status}.`);
      } else {
        signIn(k);
        const next = params.get('next');
        void navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/jobs', { replace: true });
        return;
      }
    } catch {
      setError('Could not reach the API. Is the server running?');
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin" id="main">
      <form className="signin-card" onSubmit={(e) => void onSubmit(e)} noValidate aria-describedby="signin-help">
        <div className="brand brand-lg">
          <svg width="36" height="36" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#4f46e5" />
            <path d="M7 11h18M7 16h13M7 21h8" stroke="#fff" strokeWidth="3" strokeLinecap="round" />
          </svg>
          <h1>Conveyor</h1>
        </div>
        <p id="signin-help" className="muted">
          Sign in with an API key. It is kept in this browser tab only and cleared when you sign out or close the tab.
        </p>
        <div className={`field ${error ? 'field-invalid' : ''}`}>
          <label htmlFor="api-key" className="field-label">
            API key
          </label>
          <input
            id="api-key"
            name="api-key"
            className="input mono"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={key}
            onChange={(e) => setKey(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? 'api-key-error' : undefined}
            autoFocus
          />
          {error && (
            <p id="api-key-error" className="field-error" role="alert">
              {error}
            </p>
          )}
        </div>
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <p className="muted small">
          Create a key with <code>conveyor create-api-key --name you</code>.
        </p>
      </form>
    </main>
  );
}
