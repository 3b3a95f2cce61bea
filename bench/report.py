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


def _machine_table(machine: dict[str, Any]) -> list[str]:
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
        *_machine_table(results["machine"]),
        "",
    ]
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
    if "fanout_latency.png" in plot_names:
        lines += [
            "## Fan-out at a glance",
            "",
            "![Fan-out latency](fanout_latency.png)",
            "",
            "![Fan-out memory](fanout_memory.png)",
            "",
        ]
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
        "",
    ]
    return "\n".join(lines)


def _summary(bench: dict[str, Any], side: str, key: str) -> dict[str, float] | None:
    summary = bench["sides"][side].get("summary", {}).get(key)
    return summary if summary and summary.get("n") else None


def render_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    colors = {"baseline": "#4c72b0", "conveyor": "#dd8452"}

    throughputs = [b for b in results["benchmarks"] if b.get("group") == "throughput"]
    if throughputs:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        width = 0.38
        for offset, side in ((-width / 2, "baseline"), (width / 2, "conveyor")):
            label = throughputs[0]["sides"][side]["label"]
            if throughputs[0]["sides"][side]["status"] == NOT_MEASURED:
                label = f"{label}: {NOT_MEASURED}"
            for x, bench in enumerate(throughputs):
                summary = _summary(bench, side, "jobs_per_s")
                if summary is None:
                    ax.bar(
                        x + offset, 0, width, color=colors[side], label=label if x == 0 else None
                    )
                    continue
                err = [[summary["median"] - summary["min"]], [summary["max"] - summary["median"]]]
                ax.bar(
                    x + offset,
                    summary["median"],
                    width,
                    yerr=err,
                    capsize=5,
                    color=colors[side],
                    label=label if x == 0 else None,
                )
                ax.annotate(
                    f"{summary['median']:,.0f}",
                    (x + offset, summary["max"]),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        ax.set_xticks(range(len(throughputs)), [b["title"].split(":")[0] for b in throughputs])
        ax.set_ylabel(f"jobs/s (median, min{DASH}max)")
        ax.set_title(f"{throughputs[0]['params']['jobs']:,.0f} no-op jobs, one worker", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "throughput.png"
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
