"""Render ``bench/results/latest.json`` as docs-ready markdown and PNG plots.

Why separate from ``bench.run``: the report can be re-rendered (wording, plots) without
re-measuring, and the product docs (``docs/benchmarks.md``) are produced from recorded figures
only. Every table cell is "median (min-max)" over the recorded runs; the machine facts and the
exact commands are part of the report because figures without them are not comparable.

Run: ``.venv/bin/python -m bench.report`` (reads ``bench/results/latest.json``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR

NOT_MEASURED = "not yet measured"
DASH = "\u2013"  # en dash, for ranges and empty cells
TIMES = "\u00d7"
EM_DASH = "\u2014"
MINUS = "\u2212"
ARROW = "\u2192"


def _fmt(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:,.{digits}f}"


def _cell(summary: dict[str, float] | None, digits: int) -> str:
    if not summary or not summary.get("n"):
        return DASH
    median = _fmt(summary["median"], digits)
    if summary["n"] == 1 or summary["min"] == summary["max"]:
        return median
    return f"{median} ({_fmt(summary['min'], digits)}{DASH}{_fmt(summary['max'], digits)})"


def _side_cell(side: dict[str, Any], metric: dict[str, Any]) -> str:
    if side["status"] == NOT_MEASURED:
        return NOT_MEASURED
    return _cell(side.get("summary", {}).get(metric["key"]), metric["digits"])


def _ratio(bench: dict[str, Any], metric: dict[str, Any]) -> str:
    base = bench["sides"]["baseline"].get("summary", {}).get(metric["key"])
    conv = bench["sides"]["conveyor"].get("summary", {}).get(metric["key"])
    if not base or not conv or not base.get("n") or not conv.get("n") or not base["median"]:
        return DASH
    return f"{conv['median'] / base['median']:.2f}{TIMES}"


def _machine_table(machine: dict[str, Any], app_code: dict[str, str] | None = None) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in sorted(machine.get("packages", {}).items()))
    rows = [
        (
            "CPU",
            (
                f"{machine['cpu_model']} {EM_DASH} {machine['logical_cores']} logical cores "
                f"({machine['physical_cores']} physical)"
            ),
        ),
        ("Memory", f"{machine['memory_gib']} GiB"),
        ("OS", machine["os"]),
        ("Python", machine["python"]),
        ("Redis", machine["redis"]),
        ("PostgreSQL", machine["postgresql"]),
        ("Libraries", packages),
        ("Commit", f"`{machine['git_commit']}`"),
    ]
    if app_code and app_code.get("commit"):
        rows.append(
            (
                "Conveyor code measured",
                (
                    f"`{app_code['commit']}` ({app_code.get('subject', '')}): `conveyor/` and "
                    "`migrations/` exported with `git archive` at the start, so edits made to "
                    "the working tree during the session are not measured"
                ),
            )
        )
    elif machine.get("app_worktree"):
        rows.append(("Conveyor code measured", f"the working tree: {machine['app_worktree']}"))
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _runs_note(side: dict[str, Any]) -> str:
    runs = side.get("runs", [])
    ok = sum(1 for r in runs if r.get("ok"))
    failed = [r.get("error", "failed") for r in runs if not r.get("ok")]
    note = f"{ok} of {len(runs)} runs succeeded"
    loads = [r["load_1m_before"] for r in runs if "load_1m_before" in r]
    if loads:
        note += f", 1-min load average before runs {min(loads):.1f}{DASH}{max(loads):.1f}"
    if failed:
        note += f" (failures: {'; '.join(failed)})"
    return note


NOTES_FILE = Path(__file__).resolve().parent / "report_notes.md"


def _med(bench: dict[str, Any] | None, side: str, key: str) -> float | None:
    if bench is None:
        return None
    summary = bench["sides"][side].get("summary", {}).get(key)
    if not summary or not summary.get("n"):
        return None
    value = summary["median"]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _status(ok: bool | None) -> str:
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**not met**"


def goal_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(goal, measured, status) for every target of the benchmark issue. Goals, not gates."""
    by_key = {b["key"]: b for b in results["benchmarks"]}
    rows: list[tuple[str, str, str]] = []
    for key, name, against, goal in (
        ("throughput", "Throughput", "raw taskiq", 0.6),
        ("throughput_drain", "Drain", "raw taskiq", 0.6),
        ("throughput_celery", "Throughput", "Celery 5", 1.5),
        ("throughput_drain_celery", "Drain", "Celery 5", 1.5),
    ):
        bench = by_key.get(key)
        if bench is None:
            continue
        conv, base = _med(bench, "conveyor", "jobs_per_s"), _med(bench, "baseline", "jobs_per_s")
        title = f"{name}: Conveyor >= {goal}{TIMES} {against}"
        if conv is None or not base:
            rows.append((title, DASH, _status(None)))
            continue
        ratio = conv / base
        rows.append(
            (
                title,
                f"{conv:,.0f} vs {base:,.0f} jobs/s = {ratio:.2f}{TIMES}",
                _status(ratio >= goal),
            )
        )
    submit = by_key.get("per_request_submit")
    if submit is not None:
        rate, p99 = _med(submit, "conveyor", "requests_per_s"), _med(submit, "conveyor", "p99_ms")
        floor = _med(submit, "baseline", "requests_per_s")
        rows.append(
            (
                "Single `submitJob` mutations, one API process: >= 1,000/s, p99 <= 30 ms",
                DASH if rate is None or p99 is None else f"{rate:,.0f}/s, p99 {p99:,.1f} ms",
                _status(None if rate is None or p99 is None else rate >= 1000 and p99 <= 30),
            )
        )
        if rate is not None and floor:
            rows.append(
                (
                    "Single `submitJob` >= 0.4" + TIMES + " the process's `{ __typename }` floor",
                    f"{rate:,.0f} vs {floor:,.0f}/s = {rate / floor:.2f}{TIMES}",
                    _status(rate / floor >= 0.4),
                )
            )
    for bench in results["benchmarks"]:
        if bench.get("group") != "latency":
            continue
        rate = bench["params"]["rate"]
        conv, base = _med(bench, "conveyor", "done_p99_ms"), _med(bench, "baseline", "done_p99_ms")
        answered = _med(bench, "conveyor", "achieved_per_s")
        goal_ms = 25 if rate <= 50 else 50
        measured = DASH if conv is None else f"p99 {conv:,.1f} ms"
        if conv is not None and base is not None:
            measured += f" (raw taskiq {base:,.1f} ms)"
        if answered is not None:
            measured += f", {answered:,.0f} submits/s answered"
        ok = None if conv is None else conv <= goal_ms
        if ok and answered is not None:
            ok = answered >= 0.98 * rate
        rows.append(
            (
                f"Latency at {rate:g} jobs/s: every submit answered, p99 submit {ARROW} "
                f"SUCCEEDED <= {goal_ms} ms",
                measured,
                _status(ok),
            )
        )
    for bench in sorted(
        (b for b in results["benchmarks"] if b.get("group") == "fanout"),
        key=lambda b: b["params"]["subscribers"],
    ):
        n = bench["params"]["subscribers"]
        connected = _med(bench, "conveyor", "connected")
        errors = _med(bench, "conveyor", "errors")
        missing = _med(bench, "conveyor", "messages_missing")
        if connected is None:
            held = None
            measured = DASH
        else:
            held = connected >= n and not errors and not missing
            measured = (
                f"{connected:,.0f} of {n:,.0f} connected, {errors or 0:,.0f} errors, "
                f"{missing or 0:,.0f} messages missing"
            )
        rows.append((f"Fan-out {n:,.0f}: held without errors", measured, _status(held)))
        conv, base = (
            _med(bench, "conveyor", "latency_p99_ms"),
            _med(bench, "baseline", "latency_p99_ms"),
        )
        if conv is not None and base:
            rows.append(
                (
                    f"Fan-out {n:,.0f}: p99 within 2{TIMES} the relay's",
                    f"{conv:,.1f} vs {base:,.1f} ms = {conv / base:.2f}{TIMES}",
                    _status(conv <= 2 * base),
                )
            )
        rss = _med(bench, "conveyor", "rss_per_sub_kib")
        if rss is not None:
            rows.append(
                (
                    f"Fan-out {n:,.0f}: < 20 KB (19.5 KiB) RSS per idle subscription",
                    f"{rss:,.1f} KiB",
                    _status(rss * 1024 < 20_000),
                )
            )
    queries = by_key.get("queries")
    if queries is not None:
        for metric in queries["metrics"]:
            key = metric["key"]
            if not key.endswith("_p99_ms"):
                continue
            conv = _med(queries, "conveyor", key)
            base = _med(queries, "baseline", key)
            label = metric["label"].removesuffix(", p99")
            measured = DASH if conv is None else f"p99 {conv:,.1f} ms"
            if conv is not None and base is not None:
                measured += f" (same SQL: {base:,.2f} ms)"
            goal_ms = 8 if key == "first_page_p99_ms" else 20
            rows.append(
                (
                    f"Query p99 <= {goal_ms} ms: {label}",
                    measured,
                    _status(None if conv is None else conv <= goal_ms),
                )
            )
        first = _med(queries, "conveyor", "first_page_p50_ms")
        deep = _med(queries, "conveyor", "page_1000_p50_ms")
        if first and deep:
            rows.append(
                (
                    "Deep pages as fast as the first (page 1,000 p50 within 1.25" + TIMES + ")",
                    f"{deep:,.2f} vs {first:,.2f} ms = {deep / first:.2f}{TIMES}",
                    _status(deep <= 1.25 * first),
                )
            )
    return rows


def _first_config(bench: dict[str, Any], side: str) -> dict[str, Any]:
    for run in bench["sides"][side].get("runs", []):
        if run.get("ok") and run.get("config"):
            config: dict[str, Any] = run["config"]
            return config
    return {}


def _explain_section(bench: dict[str, Any]) -> list[str]:
    config = _first_config(bench, "baseline")
    plans = config.get("explain") or {}
    if not plans:
        return []
    lines = [
        "Query plans: `EXPLAIN (ANALYZE, BUFFERS)` of each statement the API runs, as the 7th "
        "execution of a prepared statement (when PostgreSQL may have switched to a generic "
        "plan, as it can for the API's prepared statements):",
        "",
        "| Query | Indexes used | Seq Scan | Sort |",
        "|---|---|---|---|",
    ]
    flags = config.get("plan_flags", {})
    for name in plans:
        f = flags.get(name, {})
        lines.append(
            f"| `{name}` | {', '.join(f.get('index_scans', [])) or DASH} | "
            f"{'yes' if f.get('seq_scan') else 'no'} | {'yes' if f.get('sort') else 'no'} |"
        )
    lines.append("")
    statements = config.get("statements", {})
    for name, texts in plans.items():
        lines += [f"<details><summary><code>{name}</code></summary>", ""]
        for sql, plan in zip(statements.get(name, [""] * len(texts)), texts, strict=False):
            lines += ["```sql", sql.strip(), "```", "", "```", plan, "```", ""]
        lines += ["</details>", ""]
    return lines


def _profile_section(results: dict[str, Any]) -> list[str]:
    profiles = results.get("profiles")
    if not profiles:
        return []
    lines = ["## Where the CPU goes (py-spy)", ""]
    if profiles.get("skipped"):
        return [*lines, f"Not profiled: {profiles['skipped']}.", ""]
    metrics = profiles.get("metrics") or {}
    lines += [
        (
            f"One extra Conveyor throughput run (not part of the tables above) with `py-spy "
            f"record` (100 Hz) attached to the API and the worker for the measured phase: "
            f"`{profiles['command']}`"
            + (
                f" {EM_DASH} {metrics.get('jobs_per_s', 0):,.0f} jobs/s under the profiler."
                if metrics
                else f" {EM_DASH} failed: {profiles.get('error')}."
            )
        ),
        (
            "Speedscope files are written next to `latest.json` (`profiles/`, not committed): "
            "open them at https://www.speedscope.app or with `python -m bench.profile_summary`."
        ),
        "",
        (
            "py-spy runs with `--gil`: a sample is taken only when the thread holds the GIL, i.e. "
            "executes Python. Time in system calls (which release the GIL) and time spent "
            "waiting for a core on this shared machine are left out, so the shares are of the "
            "process's Python CPU (the kernel's part of its CPU is in the throughput table). "
            "Without `--gil`, samples of a process preempted inside `send()` on a loopback "
            'socket swamp the profile on a busy machine. The "stack contains" rows '
            "(inclusive shares) say which operation the Python time went to."
        ),
        "",
    ]
    for name, summary in profiles.get("processes", {}).items():
        title = {
            "api": "API (`python -m conveyor serve`) during the throughput run",
            "worker": "Worker (`python -m conveyor worker`) during the throughput run",
            "api_fanout": (
                f"API during a fan-out run (`{profiles.get('fanout_command', '')}`), "
                "from the first event to the end"
            ),
        }
        seconds = summary.get("sampled_seconds")
        count = f"{summary['samples']:,} samples" + (f" ({seconds:,.1f} s)" if seconds else "")
        lines += [f"### {title.get(name, name)}", "", f"{count}.", ""]
        lines += ["| Stack contains | Share of samples |", "|---|---:|"]
        highlights = summary.get("highlights", {})
        for label, share in sorted(highlights.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {label} | {share:.1f} % |")
        lines += ["", "| Innermost frame (self) | Share |", "|---|---:|"]
        for row in summary["self"][:10]:
            lines.append(f"| `{row['frame']}` | {row['share']:.1f} % |")
        lines += ["", "| Package (self time) | Share |", "|---|---:|"]
        for row in summary["packages"][:8]:
            lines.append(f"| {row['package']} | {row['share']:.1f} % |")
        lines.append("")
    return lines


def _notes_section(results: dict[str, Any]) -> list[str]:
    if not NOTES_FILE.exists():
        return []
    text = NOTES_FILE.read_text().strip()
    first, _, body = text.partition("\n")
    run = first.removeprefix("for-run:").strip() if first.startswith("for-run:") else ""
    if run and run == results.get("generated_at"):
        return ["## Reading this run", "", body.strip(), ""]
    return [
        "## Notes from an earlier run",
        "",
        (
            f"*Written for the run of {run or 'an unknown date'}; the figures above come from "
            f"{results.get('generated_at')} and may differ.*"
        ),
        "",
        body.strip(),
        "",
    ]


def render_markdown(results: dict[str, Any], plots: list[Path]) -> str:
    scale = results["scale"]
    lines = [
        "# Benchmarks",
        "",
        (
            f"Generated {results['generated_at']} with `{results['harness_command']}` "
            f"(scale: {scale['name']}, {results['runs_per_side']} run(s) per side). Each cell is "
            f"the median over runs, with the min{DASH}max spread in parentheses. The last column "
            "is Conveyor's median divided by the baseline's."
        ),
        "",
        (
            "Benchmarks never fail on time: these figures are context for design decisions, not "
            "pass/fail thresholds. Baseline and Conveyor run on the same machine, interleaved, "
            "with clients and servers sharing its cores."
        ),
        "",
        "## Machine",
        "",
        *_machine_table(results["machine"], results.get("app_code")),
        "",
    ]
    goals = goal_rows(results)
    if goals:
        lines += [
            "## Goals",
            "",
            (
                "The targets of the benchmark issue, read against the medians below. They are "
                "goals to report against, not pass/fail gates."
            ),
            "",
            "| Goal | Measured (median) | |",
            "|---|---|---|",
            *(f"| {g} | {m} | {st} |" for g, m, st in goals),
            "",
        ]
    lines += _notes_section(results)
    plot_names = {p.name for p in plots}
    for bench in results["benchmarks"]:
        base = bench["sides"]["baseline"]
        conv = bench["sides"]["conveyor"]
        lines += [
            f"## {bench['title']}",
            "",
            bench["what"],
            "",
            f"| Metric | {base['label']} | {conv['label']} | Conveyor / baseline |",
            "|---|---:|---:|---:|",
        ]
        for metric in bench["metrics"]:
            unit = f" ({metric['unit']})" if metric["unit"] else ""
            better = "higher is better" if metric["higher_is_better"] else "lower is better"
            lines.append(
                f"| {metric['label']}{unit}, {better} | {_side_cell(base, metric)} | "
                f"{_side_cell(conv, metric)} | {_ratio(bench, metric)} |"
            )
        lines += ["", "Commands (from the repository root):", ""]
        for side in (base, conv):
            if side["command"]:
                lines.append(f"- {side['label']}: `{side['command']}` {EM_DASH} {_runs_note(side)}")
            else:
                lines.append(f"- {side['label']}: {NOT_MEASURED}")
        lines.append("")
        if bench["key"] == "throughput_drain" and "throughput.png" in plot_names:
            lines += ["![Throughput](throughput.png)", ""]
        if bench["key"] == "queries":
            if "queries.png" in plot_names:
                lines += ["![Query latency](queries.png)", ""]
            lines += _explain_section(bench)
        latency_keys = [b["key"] for b in results["benchmarks"] if b.get("group") == "latency"]
        if latency_keys and bench["key"] == latency_keys[-1] and "latency.png" in plot_names:
            lines += ["![Latency](latency.png)", ""]
    if "fanout_latency.png" in plot_names:
        lines += [
            "## Fan-out at a glance",
            "",
            "![Fan-out latency](fanout_latency.png)",
            "",
            "![Fan-out memory](fanout_memory.png)",
            "",
        ]
    lines += _profile_section(results)
    lines += [
        "## How the figures are measured",
        "",
        (
            "- Throughput: completion is read from Redis (`XINFO GROUPS` entries-read minus "
            "pending, polled every 10 ms); the concurrent run starts after one warm-up job, the "
            "drain run's clock starts at the first acknowledgement. CPU is psutil user+system "
            "time of the worker process tree."
        ),
        (
            "- Fan-out: latency is receipt `time.time()` minus the publisher's `time.time()` in "
            'the message, for every message on every connection; "every subscriber" is the '
            "slowest delivery of an event. RSS per subscriber is (RSS with all subscribers idle "
            f"{MINUS} RSS before any) / subscribers. CPU covers the server process and its "
            "children."
        ),
        (
            "- Conveyor runs as users run it: a private database (`cvbench_*`, created by "
            "`python -m conveyor migrate` and dropped afterwards), a private Redis key prefix "
            "(`cvbench-*`), `python -m conveyor serve` and `python -m conveyor worker` ("
            "`--concurrency 100` for throughput, the raw baseline's `max_async_tasks`, so both "
            "hold as many jobs in flight; 16 elsewhere) as separate processes configured "
            "through their environment "
            "(`bench/conveyor.py`). Throughput completion is read from PostgreSQL "
            "(`count(*) ... WHERE status = 'SUCCEEDED'` every 50 ms) and every job is checked "
            "at the end (SUCCEEDED, one SUCCEEDED attempt, SUBMITTED/STARTED/SUCCEEDED events). "
            "PostgreSQL CPU is that of the backends serving the benchmark's database (the "
            "polling connection excluded)."
        ),
        (
            "- Fan-out, Conveyor: each event is a real `demo.noop` job finishing in the worker; "
            "subscribers run the dashboard's `jobUpdates` selection filtered to that kind and "
            "status SUCCEEDED; latency is receipt minus the update's `at` (the time of the "
            "finishing transaction in PostgreSQL). Server RSS and CPU are the API process's."
        ),
        "",
    ]
    return "\n".join(lines)


def _summary(bench: dict[str, Any], side: str, key: str) -> dict[str, float] | None:
    summary = bench["sides"][side].get("summary", {}).get(key)
    return summary if summary and summary.get("n") else None


def _pair_bars(
    plt: Any,
    benches: list[dict[str, Any]],
    metric: str,
    unit: str,
    colors: dict[str, str],
    path: Path,
) -> None:
    """Baseline and Conveyor side by side for each benchmark of a group: median bars with
    min-max whiskers, each side labelled under its bar."""
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    width = 0.38
    for x, bench in enumerate(benches):
        for offset, side in ((-width / 2, "baseline"), (width / 2, "conveyor")):
            summary = _summary(bench, side, metric)
            label = None if x else side
            if summary is None:
                ax.bar(x + offset, 0, width, color=colors[side], label=label)
                continue
            err = [[summary["median"] - summary["min"]], [summary["max"] - summary["median"]]]
            ax.bar(
                x + offset,
                summary["median"],
                width,
                yerr=err,
                capsize=5,
                color=colors[side],
                label=label,
            )
            ax.annotate(
                f"{summary['median']:,.0f}\n{bench['sides'][side]['label']}",
                (x + offset, summary["max"]),
                ha="center",
                va="bottom",
                fontsize=6,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(benches)), [b["title"].split(":", 1)[-1][:40] for b in benches])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel(f"{unit} (median, min{DASH}max)")
    ax.margins(y=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    colors = {"baseline": "#4c72b0", "conveyor": "#dd8452"}

    for group, metric, unit, filename in (
        ("throughput", "jobs_per_s", "jobs/s", "throughput.png"),
        ("throughput_celery", "jobs_per_s", "jobs/s", "throughput_celery.png"),
        ("per_request", "requests_per_s", "requests/s", "per_request.png"),
    ):
        benches = [b for b in results["benchmarks"] if b.get("group") == group]
        if benches:
            path = out_dir / filename
            _pair_bars(plt, benches, metric, unit, colors, path)
            written.append(path)

    latencies = [b for b in results["benchmarks"] if b.get("group") == "latency"]
    if latencies:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        width = 0.2
        bars = (
            ("baseline", "done_p50_ms", -1.5, "p50"),
            ("baseline", "done_p99_ms", -0.5, "p99"),
            ("conveyor", "done_p50_ms", 0.5, "p50"),
            ("conveyor", "done_p99_ms", 1.5, "p99"),
        )
        for side, key, offset, pct in bars:
            label = f"{latencies[0]['sides'][side]['label']} {pct}"
            for x, bench in enumerate(latencies):
                summary = _summary(bench, side, key)
                if summary is None:
                    continue
                ax.bar(
                    x + offset * width,
                    summary["median"],
                    width,
                    color=colors[side],
                    alpha=0.55 if pct == "p50" else 1.0,
                    label=label if x == 0 else None,
                )
                ax.annotate(
                    f"{summary['median']:,.0f}",
                    (x + offset * width, summary["median"]),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.axhline(50, color="grey", linestyle=":", linewidth=1, label="goal: p99 < 50 ms")
        ax.set_yscale("log")
        ax.set_xticks(
            range(len(latencies)), [f"{b['params']['rate']:g} jobs/s offered" for b in latencies]
        )
        ax.set_ylabel("submit → SUCCEEDED observed (ms, log)")
        ax.set_title("Latency under steady load (median of runs)", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "latency.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    queries = next((b for b in results["benchmarks"] if b.get("group") == "queries"), None)
    if queries is not None:
        names = [
            m["key"].removesuffix("_p50_ms") for m in queries["metrics"] if "_p50_" in m["key"]
        ]
        fig, ax = plt.subplots(figsize=(7.5, 3.8))
        width = 0.2
        for side, offset in (("baseline", -1), ("conveyor", 1)):
            for pct, shift in (("p50", -0.5), ("p99", 0.5)):
                xs, ys = [], []
                for x, name in enumerate(names):
                    summary = _summary(queries, side, f"{name}_{pct}_ms")
                    if summary is not None:
                        xs.append(x + (offset + shift) * width)
                        ys.append(summary["median"])
                if xs:
                    ax.bar(
                        xs,
                        ys,
                        width,
                        color=colors[side],
                        alpha=0.55 if pct == "p50" else 1.0,
                        label=f"{queries['sides'][side]['label']} {pct}",
                    )
        ax.axhline(20, color="grey", linestyle=":", linewidth=1, label="goal: p99 < 20 ms")
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
        ax.set_ylabel("ms (log)")
        ax.set_title(
            f"Queries, {queries['params']['jobs']:,.0f} jobs (median of runs)", fontsize=10
        )
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "queries.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    fanouts = sorted(
        (b for b in results["benchmarks"] if b.get("group") == "fanout"),
        key=lambda b: b["params"]["subscribers"],
    )
    if fanouts:
        for name, keys, ylabel, title in (
            (
                "fanout_latency.png",
                ("latency_p50_ms", "latency_p99_ms"),
                "ms",
                "Publish → receipt latency",
            ),
            (
                "fanout_memory.png",
                ("rss_per_sub_kib",),
                "KiB per subscriber",
                "Server RSS per idle subscriber",
            ),
        ):
            fig, ax = plt.subplots(figsize=(6, 3.5))
            plotted = False
            for side in ("baseline", "conveyor"):
                for key in keys:
                    xs, ys, lo, hi = [], [], [], []
                    for bench in fanouts:
                        summary = _summary(bench, side, key)
                        if summary is None:
                            continue
                        xs.append(bench["params"]["subscribers"])
                        ys.append(summary["median"])
                        lo.append(summary["median"] - summary["min"])
                        hi.append(summary["max"] - summary["median"])
                    if not xs:
                        continue
                    label = fanouts[0]["sides"][side]["label"]
                    suffix = f" {key.split('_')[1]}" if len(keys) > 1 else ""
                    ax.errorbar(
                        xs,
                        ys,
                        yerr=[lo, hi],
                        marker="o",
                        capsize=4,
                        color=colors[side],
                        linestyle="-" if "p99" not in key else "--",
                        label=f"{label}{suffix}",
                    )
                    plotted = True
            if fanouts[0]["sides"]["conveyor"]["status"] == NOT_MEASURED:
                ax.plot([], [], " ", label=f"Conveyor: {NOT_MEASURED}")
            sizes = [b["params"]["subscribers"] for b in fanouts]
            ax.set_xscale("log")
            ax.set_xticks(sizes, [f"{n:,.0f}" for n in sizes])
            ax.minorticks_off()
            ax.set_xlabel("subscribers")
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=10)
            if plotted:
                ax.legend(fontsize=8)
            fig.tight_layout()
            path = out_dir / name
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written


def write_report(results: dict[str, Any], out_dir: Path = RESULTS_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = render_plots(results, out_dir)
    markdown = out_dir / "benchmarks.md"
    markdown.write_text(render_markdown(results, plots))
    return [markdown, *plots]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    results = json.loads(args.input.read_text())
    for path in write_report(results, args.output_dir or args.input.parent):
        print(path)


if __name__ == "__main__":
    main()
