import { useMemo } from 'react';
import dagre from '@dagrejs/dagre';

interface Box {
  x: number;
  y: number;
}

export interface DagNode {
  key: string;
  label: string;
  sub: string;
  status: string;
}

const W = 170;
const H = 54;

/** A workflow's DAG: laid out by dagre (top to bottom), drawn as our own SVG so that it is
 * styled like the rest of the dashboard and each node is a focusable button. */
export function DagView({
  nodes,
  edges,
  selected,
  onSelect,
}: {
  nodes: DagNode[];
  edges: { from: string; to: string }[];
  selected?: string | null;
  onSelect?: (key: string) => void;
}) {
  const layout = useMemo(() => {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: 'TB', nodesep: 30, ranksep: 44, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of nodes) g.setNode(n.key, { width: W, height: H });
    for (const e of edges) if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to);
    dagre.layout(g);
    const graph = g.graph() as { width?: number; height?: number };
    const at = new Map<string, Box>(nodes.map((n) => [n.key, g.node(n.key) as Box]));
    const paths = g.edges().map((e) => ({
      id: `${e.v}->${e.w}`,
      points: ((g.edge(e) as { points?: Box[] }).points ?? []).map((pt) => `${pt.x},${pt.y}`).join(' '),
    }));
    return { width: (graph.width ?? W) + 16, height: (graph.height ?? H) + 16, at, paths };
  }, [nodes, edges]);

  return (
    <svg
      className="dag"
      role="group"
      aria-label="Workflow steps"
      viewBox={`0 0 ${layout.width} ${layout.height}`}
      width="100%"
      style={{ maxWidth: layout.width }}
    >
      <defs>
        <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" fill="currentColor" />
        </marker>
      </defs>
      {layout.paths.map((p) => (
        <polyline
          key={p.id}
          className="dag-edge"
          fill="none"
          stroke="currentColor"
          markerEnd="url(#dag-arrow)"
          points={p.points}
        />
      ))}
      {nodes.map((n) => {
        const at = layout.at.get(n.key);
        if (!at) return null;
        return (
          <g
            key={n.key}
            className={`dag-node status-${n.status.toLowerCase()}${selected === n.key ? ' selected' : ''}`}
            data-step={n.key}
            data-status={n.status}
            transform={`translate(${at.x - W / 2},${at.y - H / 2})`}
            role="button"
            tabIndex={0}
            aria-label={`${n.label}: ${n.status.toLowerCase()}, ${n.sub}`}
            onClick={() => onSelect?.(n.key)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault();
                onSelect?.(n.key);
              }
            }}
          >
            <rect width={W} height={H} rx="8" />
            <text x="12" y="22" className="dag-title">
              {n.label}
            </text>
            <text x="12" y="41" className="dag-sub">
              {n.sub}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
