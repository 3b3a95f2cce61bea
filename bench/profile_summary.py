"""Summarize a py-spy speedscope profile: where the CPU samples went.

Why: a flame graph is for exploring; a report needs the few numbers that say where to look.
For every function this computes its *self* share (samples where it is the innermost frame)
and its *inclusive* share (samples where it is anywhere on the stack, counted once per
sample), plus self time per package (``sqlalchemy``, ``asyncpg``, ``strawberry``,
``conveyor``, ...).
py-spy samples only threads that are running (not idle in ``epoll``), so shares are of CPU
time, not wall time.

Run: ``.venv/bin/python -m bench.profile_summary bench/results/profiles/worker.speedscope.json``
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

_SITE = re.compile(r"(?:site-packages|dist-packages)/([^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/([^/]+)")


def package_of(path: str) -> str:
    """A short owner for a source file: the installed package, ``conveyor``, ``bench`` or stdlib."""
    if m := _SITE.search(path):
        name = m.group(1)
        return name.removesuffix(".py").split(".")[0]
    norm = path.replace("\\", "/")
    for local in ("conveyor", "bench"):
        if f"/{local}/" in norm or norm.startswith(f"{local}/"):
            return local
    if m := _STDLIB.search(norm):
        return f"stdlib:{m.group(1).removesuffix('.py')}"
    return "other"


def _short(path: str) -> str:
    norm = path.replace("\\", "/")
    norm = re.sub(r"^.*/cvbench-app-[^/]+/", "", norm)  # a bench.run --app-ref snapshot
    for marker in ("site-packages/", "dist-packages/", "/work/main/"):
        if marker in norm:
            return norm.split(marker, 1)[1]
    if m := re.search(r"/lib/python3\.\d+/(.+)$", norm):
        return m.group(1)
    return norm


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    labels = [
        f"{f.get('name', '?')} ({_short(f.get('file', '?'))}:{f.get('line', '?')})" for f in frames
    ]
    packages = [package_of(f.get("file", "")) for f in frames]
    self_counts: Counter[int] = Counter()
    incl_counts: Counter[int] = Counter()
    pkg_counts: Counter[str] = Counter()
    total = 0.0
    count = 0
    for profile in data.get("profiles", []):
        samples = profile.get("samples", [])
        weights = profile.get("weights") or [1] * len(samples)
        for stack, weight in zip(samples, weights, strict=False):
            if not stack:
                continue
            count += 1
            total += weight
            self_counts[stack[-1]] += weight
            pkg_counts[packages[stack[-1]]] += weight
            for index in set(stack):
                incl_counts[index] += weight
    seconds = total
    total = total or 1.0

    def rows(counter: Counter[int]) -> list[dict[str, Any]]:
        return [
            {"frame": labels[i], "share": round(100.0 * c / total, 1)}
            for i, c in counter.most_common(top)
        ]

    return {
        "samples": count,
        "sampled_seconds": round(seconds, 1),
        "self": rows(self_counts),
        "inclusive": rows(incl_counts),
        "packages": [
            {"package": p, "share": round(100.0 * c / total, 1)}
            for p, c in pkg_counts.most_common(top)
        ],
    }


def inclusive_share(path: Path, pattern: str) -> float:
    """Share of samples (%) with any frame whose name or file matches ``pattern`` (regex)."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    rx = re.compile(pattern)
    hit = {i for i, f in enumerate(frames) if rx.search(f"{f.get('name')} {f.get('file')}")}
    total = matched = 0.0
    for profile in data.get("profiles", []):
        samples = profile.get("samples", [])
        weights = profile.get("weights") or [1] * len(samples)
        for stack, weight in zip(samples, weights, strict=False):
            total += weight
            if hit.intersection(stack):
                matched += weight
    return 100.0 * matched / total if total else 0.0


def refresh(results_path: Path) -> None:
    """Re-summarize the profiles recorded in a ``latest.json`` (after changing the highlight
    patterns in ``bench.run``) without re-measuring."""
    from bench.run import summarize_profiles

    results = json.loads(results_path.read_text())
    record = results.get("profiles") or {}
    files = {n: s["file"] for n, s in (record.get("processes") or {}).items() if "file" in s}
    record["processes"] = summarize_profiles(files)
    results_path.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    print(f"re-summarized {', '.join(files)} in {results_path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "profile", type=Path, help="a speedscope file, or latest.json with --refresh"
    )
    parser.add_argument("--refresh", action="store_true", help="re-summarize a latest.json")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--match", action="append", default=[], help="regex: inclusive share")
    args = parser.parse_args(argv)
    if args.refresh:
        refresh(args.profile)
        return
    summary = summarize(args.profile, args.top)
    print(f"{summary['samples']} samples ({summary['sampled_seconds']} s)")
    for title in ("packages", "self", "inclusive"):
        print(f"\n== {title}")
        for row in summary[title]:
            print(f"{row['share']:5.1f}%  {row.get('frame') or row.get('package')}")
    for pattern in args.match:
        print(f"\n{inclusive_share(args.profile, pattern):5.1f}%  stacks matching {pattern!r}")


if __name__ == "__main__":
    main()
