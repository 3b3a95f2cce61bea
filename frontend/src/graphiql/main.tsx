import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import './workers';
import 'graphiql/style.css';
import './graphiql.css';
import { getApiKey, bearer } from '../lib/auth';
import { GRAPHQL_PATH, wsUrl } from '../lib/client';
import { createConveyorFetcher } from './fetcher';
import { explorerStorage } from './storage';

const DEFAULT_QUERY = `# Conveyor API explorer.
# Your dashboard API key is pre-filled in the Headers tab below.
# Run with Ctrl-Enter. Subscriptions stream over WebSocket.

query Overview {
  me { name isAdmin }
  jobKinds { name queue description }
  jobs(first: 5) {
    totalCount
    edges { node { id kind status progress createdAt } }
  }
}

# subscription Live {
#   jobUpdates { jobId kind status progress at }
# }
`;

const key = getApiKey();
const headers = JSON.stringify(key ? { Authorization: bearer(key) } : { Authorization: 'Bearer <your API key>' }, null, 2);
const params = new URLSearchParams(window.location.search);
const initialQuery = params.get('query') ?? undefined;
const initialVariables = params.get('variables') ?? undefined;

const storage = explorerStorage();
const fetcher = createConveyorFetcher({ url: GRAPHQL_PATH, wsUrl: wsUrl(), defaultAuthorization: key ? bearer(key) : undefined });

function Explorer() {
  return (
    <div className="explorer">
      <header className="explorer-bar">
        <a href="/jobs" className="explorer-back">
          ← Dashboard
        </a>
        <span className="explorer-title">Conveyor API explorer</span>
        {!key && (
          <span className="explorer-warn" role="status">
            Not signed in: <a href="/signin?next=%2Fjobs">sign in to the dashboard</a> or set the Authorization header.
          </span>
        )}
      </header>
      <div className="explorer-main">
        <GraphiQL
          fetcher={fetcher}
          storage={storage}
          defaultQuery={DEFAULT_QUERY}
          initialHeaders={headers}
          defaultHeaders={headers}
          {...(initialQuery ? { initialQuery } : {})}
          {...(initialVariables ? { initialVariables } : {})}
          defaultEditorToolsVisibility="headers"
          shouldPersistHeaders={false}
        />
      </div>
    </div>
  );
}

createRoot(document.getElementById('graphiql')!).render(
  <StrictMode>
    <Explorer />
  </StrictMode>,
);
