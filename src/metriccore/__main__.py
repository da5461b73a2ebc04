"""Command line: ``python -m metriccore COMMAND ...``.

Commands
--------
demo
    Generate the embedded synthetic loan book (:mod:`metriccore.synthetic`), compute the
    officer and portfolio metrics and print a plain-text report::

        python -m metriccore demo [--loans N] [--officers K] [--threads T] [--seed S]

info
    Print the version, how the compiled core was built (compiler, flags, Cython and NumPy
    versions, free-threading), its Arrow C interface support and the default thread count::

        python -m metriccore info [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

import metriccore
from metriccore import synthetic
from metriccore._checks import resolve_threads

DQI_BANDS = ("green", "watch", "flag")
RISK_BANDS = ("green", "watch", "amber", "red")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m metriccore",
        description="metriccore: exact, parallel loan-portfolio risk metrics over Arrow data.")
    parser.add_argument("--version", action="version",
                        version=f"metriccore {getattr(metriccore, '__version__', 'unknown')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="compute the metrics of a synthetic loan book and print a report",
        description="Generate a synthetic loan snapshot (metriccore.synthetic), run "
                    "officer_metrics and portfolio_metrics on it and print a report.")
    demo.add_argument("--loans", type=_int_at_least(0), default=100_000, metavar="N",
                      help="number of loans (default: 100000)")
    demo.add_argument("--officers", type=_int_at_least(1), default=1000, metavar="K",
                      help="number of loan officers (default: 1000)")
    demo.add_argument("--threads", type=_int_at_least(1), default=None, metavar="T",
                      help="engine worker threads (default: METRICCORE_NUM_THREADS, "
                           "else the number of CPUs)")
    demo.add_argument("--seed", type=_int_at_least(0), default=synthetic.DEFAULT_SEED,
                      metavar="S", help=f"generator seed (default: {synthetic.DEFAULT_SEED})")
    demo.set_defaults(handler=_demo)

    info = commands.add_parser(
        "info", help="print the version, build, Arrow support and default thread count",
        description="Print the metriccore version, the compiler and flags the compiled core "
                    "was built with, its Arrow C Data / C Stream interface support and the "
                    "default number of worker threads.")
    info.add_argument("--json", action="store_true", help="print the facts as JSON")
    info.set_defaults(handler=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = args.handler(args)
        return code
    except (TypeError, ValueError, OverflowError) as exc:
        print(f"{parser.prog}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------

def _demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    table = synthetic.loan_snapshot(args.loans, args.officers, seed=args.seed)
    generate_s = time.perf_counter() - start

    threads = resolve_threads(args.threads)
    start = time.perf_counter()
    officers = metriccore.officer_metrics(table, threads=threads)
    engine_s = time.perf_counter() - start

    portfolio = metriccore.portfolio_metrics(table, threads=threads)
    print(format_report(officers, portfolio, loans=args.loans, officers_requested=args.officers,
                        threads=threads, seed=args.seed, engine_s=engine_s,
                        generate_s=generate_s))
    return 0


# ---------------------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------------------

def _info(args: argparse.Namespace) -> int:
    from metriccore._info import build_info, format_info

    facts = build_info()
    print(json.dumps(facts, indent=2) if args.json else format_info(facts))
    return 0


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _officer_rows(rows: list[dict[str, Any]]) -> list[str]:
    """A small text table: id and loans right-aligned, each metric as ``value band``."""
    metrics: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
        ("FIMR", "fimr", _pct), ("slippage", "slippage", _pct), ("roll", "roll", _pct),
        ("AYR", "ayr", lambda x: f"{x:.3f}"), ("DQI", "dqi", str),
        ("risk score", "risk_score", str))
    bands = ("fimr_band", "slippage_band", "roll_band", "ayr_band", "dqi_band", "risk_band")
    ids = [str(r["officer_id"]) for r in rows]
    loans = [f"{r['loans']:,}" for r in rows]
    columns: list[tuple[str, list[str], list[str] | None]] = [("officer", ids, None),
                                                              ("loans", loans, None)]
    for (title, name, fmt), band in zip(metrics, bands):
        columns.append((title, [fmt(r[name]) for r in rows], [r[band] for r in rows]))

    header: list[str] = []
    rule: list[str] = []
    body: list[list[str]] = [[] for _ in rows]
    for title, values, band_values in columns:
        value_width = max(len(v) for v in values)
        if band_values is None:
            width = max(len(title), value_width)
            cells = [v.rjust(width) for v in values]
            header.append(title.rjust(width))
        else:
            band_width = max(len(b) for b in band_values)
            width = max(len(title), value_width + 1 + band_width)
            cells = [(v.rjust(value_width) + " " + b).ljust(width)
                     for v, b in zip(values, band_values)]
            header.append(title.ljust(width))
        rule.append("-" * width)
        for line, cell in zip(body, cells):
            line.append(cell)
    return ["  " + "  ".join(cells).rstrip() for cells in (header, rule, *body)]


def _band_counts(officers: pa.Table, column: str, names: Sequence[str]) -> str:
    values = officers.column(column).to_pylist()
    total = len(values)
    parts = []
    for name in names:
        n = values.count(name)
        share = f" ({100.0 * n / total:.1f}%)" if total else ""
        parts.append(f"{name} {n:,}{share}")
    return ", ".join(parts)


def format_report(officers: pa.Table, portfolio: dict[str, Any], *, loans: int,
                  officers_requested: int, threads: int, seed: int, engine_s: float,
                  generate_s: float | None = None) -> str:
    """The demo's plain-text report.

    Parameters
    ----------
    officers : pyarrow.Table
        ``officer_metrics(table)``: one row per officer, keyed by ``officer_id``.
    portfolio : dict
        ``portfolio_metrics(table)``.
    loans, officers_requested, threads, seed
        The demo's arguments, for the header (``threads`` as resolved).
    engine_s : float
        Seconds taken by the ``officer_metrics`` call.
    generate_s : float, optional
        Seconds taken to generate the data.
    """
    p = portfolio
    lines = [
        "metriccore demo: synthetic loan book",
        "====================================",
        f"loans {loans:,}   officers {officers_requested:,} ({officers.num_rows:,} with loans)"
        f"   seed {seed}",
        f"threads {threads}",
    ]
    if generate_s is not None:
        lines.append(f"data generated in {1000.0 * generate_s:,.1f} ms")
    lines += [
        f"officer_metrics (engine): {1000.0 * engine_s:,.1f} ms",
        "",
        "Portfolio",
        "---------",
        f"  loans             {p['loans']:,}   (active {p['active_loans']:,})",
        f"  portfolio         {_money(p['portfolio'])}",
        f"  PAR balance       {_money(p['par_balance'])}",
        f"  FIMR              {_pct(p['fimr'])}   {p['fimr_band']}",
        f"  slippage          {_pct(p['slippage'])}   {p['slippage_band']}",
        f"  roll              {_pct(p['roll'])}   {p['roll_band']}",
        f"  PORR (PAR ratio)  {_pct(p['porr'])}",
        f"  AYR               {p['ayr']:.3f}   {p['ayr_band']}",
        f"  DQI               {p['dqi']}   {p['dqi_band']}",
        f"  risk score        {p['risk_score']}   {p['risk_band']}",
        "",
    ]
    if officers.num_rows == 0:
        lines.append("No officer has loans.")
        return "\n".join(lines)

    shown = min(5, officers.num_rows)
    worst = officers.sort_by([("dqi", "ascending"), ("officer_id", "ascending")])
    best = officers.sort_by([("dqi", "descending"), ("officer_id", "ascending")])
    for title, ranked in ((f"Worst {shown} officers by DQI", worst),
                          (f"Best {shown} officers by DQI", best)):
        lines += [title, "-" * len(title)]
        lines += _officer_rows(ranked.slice(0, shown).to_pylist())
        lines.append("")
    lines += [
        "Officers per band",
        "-----------------",
        f"  DQI   {_band_counts(officers, 'dqi_band', DQI_BANDS)}",
        f"  risk  {_band_counts(officers, 'risk_band', RISK_BANDS)}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
