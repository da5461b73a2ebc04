"""Turn a pytest-benchmark JSON of ``bench_officer_metrics.py`` into a chart and a table.

    python benchmarks/report.py benchmarks/results/bench.json \
        [--memory benchmarks/results/memory.json] [--readme benchmarks/README.md]

Writes ``chart.png`` (log-log: loans vs median time, one line per contender; 1,000 officers
solid, 100,000 officers dashed) and ``table.md`` (medians per data set and contender, the
issue's target ratios computed from this same run, and the machine the JSON came from) into
``--out-dir`` (default: ``results/`` next to this script). ``--readme`` also replaces the part
of that Markdown file between ``<!-- results:start -->`` and ``<!-- results:end -->`` with
the table and a link to the chart. ``--memory`` adds the figure of ``memory.py --json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from machine import one_line  # noqa: E402

CONTENDERS = ["metriccore-1t", "metriccore-2t", "reference", "pyarrow", "polars", "duckdb",
              "pandas", "floor"]
ENGINES = ("metriccore-1t", "metriccore-2t")
FAST_PEERS = ("pyarrow", "polars", "duckdb")
ALL_PEERS = ("pyarrow", "polars", "duckdb", "pandas")
BASE_OFFICERS = 1_000
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _label(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "K")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return f"{n:,}"


def fmt_time(s: float | None) -> str:
    if s is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{s} s"


def load(path: str) -> tuple[dict[tuple[int, int, str], dict[str, Any]], dict[str, Any]]:
    """{(loans, officers, contender): benchmark}, and the JSON's top level."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    runs: dict[tuple[int, int, str], dict[str, Any]] = {}
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info", {})
        if "contender" not in info:
            continue
        runs[(int(info["loans"]), int(info["officers"]), info["contender"])] = b
    return runs, doc


def median(runs: dict, loans: int, officers: int, contender: str) -> float | None:
    b = runs.get((loans, officers, contender))
    return None if b is None else float(b["stats"]["median"])


def _best(runs: dict, loans: int, names: Iterable[str],
          officers: int = BASE_OFFICERS) -> tuple[str | None, float | None]:
    found = [(median(runs, loans, officers, n), n) for n in names]
    found = [(t, n) for t, n in found if t is not None]
    if not found:
        return None, None
    t, n = min(found)
    return n, t


def targets(runs: dict, memory: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """(target, measured, required, verdict) rows."""
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, value: float | None, required: str, ok: bool | None,
            detail: str = "") -> None:
        if value is None:
            rows.append((what, "not in this run", required, "–"))
            return
        rows.append((what, f"{value:.3g}×{detail}", required,
                     "✅ met" if ok else "❌ not met"))

    ten_m = 10_000_000
    mc2 = median(runs, ten_m, BASE_OFFICERS, "metriccore-2t")
    mc1 = median(runs, ten_m, BASE_OFFICERS, "metriccore-1t")
    peer, peer_t = _best(runs, ten_m, FAST_PEERS)
    floor = median(runs, ten_m, BASE_OFFICERS, "floor")
    r = None if mc2 is None or peer_t is None else peer_t / mc2
    add("10M loans, 2 threads vs the fastest of polars, duckdb, pyarrow", r, "≥ 4×",
        r is not None and r >= 4, f" (vs {peer}: {fmt_time(peer_t)} / {fmt_time(mc2)})")
    r = None if mc2 is None or floor is None else mc2 / floor
    add("10M loans, 2 threads vs the read-once floor (time ratio)", r, "≤ 1.5×",
        r is not None and r <= 1.5, f" ({fmt_time(mc2)} / {fmt_time(floor)})")
    r = None if mc2 is None or mc1 is None else mc1 / mc2
    add("10M loans, 1 → 2 threads speed-up", r, "≥ 1.7×", r is not None and r >= 1.7,
        f" ({fmt_time(mc1)} / {fmt_time(mc2)})")

    name, t = _best(runs, 1_000, ENGINES)
    rows.append(("1K loans, one whole officer_metrics call",
                 "not in this run" if t is None else f"{fmt_time(t)} ({name})", "< 50 µs",
                 "–" if t is None else ("✅ met" if t < 50e-6 else "❌ not met")))
    pol = median(runs, 1_000, BASE_OFFICERS, "polars")
    r = None if t is None or pol is None else pol / t
    add("1K loans vs polars", r, "≥ 10×", r is not None and r >= 10,
        f" ({fmt_time(pol)} / {fmt_time(t)})")

    name, t = _best(runs, 100_000, ENGINES)
    ref = median(runs, 100_000, BASE_OFFICERS, "reference")
    r = None if t is None or ref is None else ref / t
    add("100K loans vs metriccore.reference", r, "≥ 200×", r is not None and r >= 200,
        f" ({fmt_time(ref)} / {fmt_time(t)}, {name})")
    peer, peer_t = _best(runs, 100_000, ALL_PEERS)
    r = None if t is None or peer_t is None else peer_t / t
    add("100K loans vs the fastest peer", r, "≥ 5×", r is not None and r >= 5,
        f" (vs {peer}: {fmt_time(peer_t)} / {fmt_time(t)}, {name})")

    if memory is None:
        rows.append(("Peak memory growth of a 10M-loan call", "run memory.py --json",
                     "< 50 MB", "–"))
    else:
        g = memory["growth"] / 1e6
        what = (f"Peak memory growth of a {_label(memory['loans'])}-loan call "
                f"({memory['threads']} threads)")
        rows.append((what, f"{g:,.1f} MB over the {memory['used_input_bytes'] / 1e6:,.0f} MB "
                     "input", "< 50 MB", "✅ met" if g < 50 else "❌ not met"))
    return rows


def markdown(runs: dict, doc: dict[str, Any], memory: dict[str, Any] | None,
             chart_name: str = "chart.png") -> str:
    info = doc.get("machine_info", {}).get("metriccore_bench")
    machine = one_line(info) if info else (
        f"{doc.get('machine_info', {}).get('cpu', {}).get('brand_raw', '?')} "
        "(no metriccore_bench machine info in this JSON)")
    data_sets = sorted({(line, o) for line, o, _ in runs})
    present = [c for c in CONTENDERS if any(c == k[2] for k in runs)]
    lines = [
        f"Machine: {machine}.",
        "",
        f"Run: {doc.get('datetime', '?')}. Medians; in brackets the time relative to "
        "metriccore with 2 threads (higher = slower). Peers use their own default thread "
        "pools (all CPUs). `floor`: one thread reading every used input buffer once.",
        "",
        "| loans | officers | groups | " + " | ".join(present) + " |",
        "|---:|---:|---:|" + "---:|" * len(present),
    ]
    for loans, officers in data_sets:
        base = median(runs, loans, officers, "metriccore-2t")
        groups = next((runs[k]["extra_info"].get("groups") for k in runs
                       if k[:2] == (loans, officers)), "?")
        cells = []
        for c in present:
            t = median(runs, loans, officers, c)
            if t is None:
                cells.append("–")
            elif base is None or c == "metriccore-2t":
                cells.append(fmt_time(t))
            else:
                cells.append(f"{fmt_time(t)} ({t / base:.3g}×)")
        lines.append(f"| {loans:,} | {officers:,} | {groups:,} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (from this run):", "",
              "| target | measured | required | |", "|---|---|---|---|"]
    for row in targets(runs, memory):
        lines.append("| " + " | ".join(row) + " |")
    if memory is not None:
        lines += ["", f"Memory: `memory.py` with {memory['loans']:,} loans, "
                  f"{memory['officers']:,} officers, {memory['threads']} threads, Arrow pool "
                  f"`{memory['memory_pool']}`; per call: "
                  + ", ".join(f"{c['growth'] / 1e6:,.1f} MB" for c in memory["calls"]) + "."]
    lines += ["", f"![median time per contender]({chart_name})", ""]
    return "\n".join(lines)


def chart(runs: dict, doc: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = doc.get("machine_info", {}).get("metriccore_bench") or {}
    fig, ax = plt.subplots(figsize=(10.5, 6), dpi=120)
    colours = plt.get_cmap("tab10")
    officers_all = sorted({o for _, o, _ in runs})
    for i, c in enumerate(CONTENDERS):
        for officers in officers_all:
            pts = sorted((ln, float(b["stats"]["median"])) for (ln, o, n), b in runs.items()
                         if n == c and o == officers)
            if not pts:
                continue
            base = officers == BASE_OFFICERS
            ax.plot([p[0] for p in pts], [p[1] for p in pts],
                    linestyle="-" if base else "--", marker="o" if base else "s",
                    markerfacecolor=None if base else "none", color=colours(i),
                    linewidth=2.2 if c.startswith("metriccore") else 1.4,
                    label=c if base else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("loans (rows)")
    ax.set_ylabel("median time per call (s)")
    ax.grid(True, which="both", alpha=0.3)
    title = "officer_metrics: per-group loan metrics from one Arrow table"
    sub = (f"{info.get('cpu_model', '?')}, {info.get('usable_cpus', '?')} CPUs; "
           f"solid: {BASE_OFFICERS:,} officers; log-log, lower is faster")
    ax.set_title(f"{title}\n{sub}", fontsize=10)
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    more = [f"{o:,}" for o in officers_all if o != BASE_OFFICERS]
    if more:
        handles.append(Line2D([], [], color="grey", linestyle="--", marker="s",
                              markerfacecolor="none",
                              label=f"dashed, hollow: {', '.join(more)} officers"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def update_readme(path: str, text: str) -> None:
    with open(path, encoding="utf-8") as f:
        content = f.read()
    if START not in content or END not in content:
        raise SystemExit(f"{path}: markers {START} / {END} not found")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="pytest-benchmark JSON (--benchmark-json=...)")
    parser.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    parser.add_argument("--memory", help="JSON written by memory.py --json")
    parser.add_argument("--readme", help="Markdown file whose results section to replace")
    args = parser.parse_args(argv)

    runs, doc = load(args.json)
    if not runs:
        raise SystemExit(f"{args.json}: no bench_officer_metrics benchmarks found")
    memory = None
    if args.memory:
        with open(args.memory, encoding="utf-8") as f:
            memory = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    chart_path = os.path.join(args.out_dir, "chart.png")
    chart(runs, doc, chart_path)
    table = markdown(runs, doc, memory)
    with open(os.path.join(args.out_dir, "table.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    print(f"wrote {chart_path} and {os.path.join(args.out_dir, 'table.md')}")
    if args.readme:
        rel = os.path.relpath(chart_path, os.path.dirname(os.path.abspath(args.readme)))
        update_readme(args.readme, markdown(runs, doc, memory, chart_name=rel))
        print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
