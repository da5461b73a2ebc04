"""Command line: ``python -m metriccore COMMAND ...``.

Commands
--------
demo
    Generate the embedded synthetic loan book (:mod:`metriccore.synthetic`), compute the
    officer and portfolio metrics and print a plain-text report::

        python -m metriccore demo [--loans N] [--officers K] [--threads T] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

import pyarrow as pa

import metriccore
from metriccore import synthetic

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.handler(args)
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

    start = time.perf_counter()
    officers = metriccore.officer_metrics(table, threads=args.threads)
    engine_s = time.perf_counter() - start

    portfolio = metriccore.portfolio_metrics(table, threads=args.threads)
    print(format_report(officers, portfolio, loans=args.loans, officers_requested=args.officers,
                        threads=args.threads, seed=args.seed, engine_s=engine_s,
                        generate_s=generate_s))
    return 0


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _cell(value: str, band: str) -> str:
    return f"{value} {band}"


def _officer_rows(rows: list[dict]) -> list[str]:
    header = ("officer", "loans", "FIMR", "slippage", "roll", "AYR", "DQI", "risk score")
    cells = [header]
    for r in rows:
        cells.append((
            str(r["officer_id"]),
            f"{r['loans']:,}",
            _cell(_pct(r["fimr"]), r["fimr_band"]),
            _cell(_pct(r["slippage"]), r["slippage_band"]),
            _cell(_pct(r["roll"]), r["roll_band"]),
            _cell(f"{r['ayr']:.3f}", r["ayr_band"]),
            _cell(str(r["dqi"]), r["dqi_band"]),
            _cell(str(r["risk_score"]), r["risk_band"]),
        ))
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for k, row in enumerate(cells):
        first = [row[0].rjust(widths[0]), row[1].rjust(widths[1])]
        rest = [c.ljust(w) for c, w in zip(row[2:], widths[2:])]
        lines.append("  " + "  ".join(first + rest).rstrip())
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def _band_counts(officers: pa.Table, column: str, names: Sequence[str]) -> str:
    values = officers.column(column).to_pylist()
    total = len(values)
    parts = []
    for name in names:
        n = values.count(name)
        share = f" ({100.0 * n / total:.1f}%)" if total else ""
        parts.append(f"{name} {n:,}{share}")
    return ", ".join(parts)


def format_report(officers: pa.Table, portfolio: dict, *, loans: int, officers_requested: int,
                  threads: int | None, seed: int, engine_s: float,
                  generate_s: float | None = None) -> str:
    """The demo's plain-text report.

    Parameters
    ----------
    officers : pyarrow.Table
        ``officer_metrics(table)``: one row per officer, keyed by ``officer_id``.
    portfolio : dict
        ``portfolio_metrics(table)``.
    loans, officers_requested, threads, seed
        The demo's arguments, for the header (``threads`` None: the engine default).
    engine_s : float
        Seconds taken by the ``officer_metrics`` call.
    generate_s : float, optional
        Seconds taken to generate the data.
    """
    p = portfolio
    threads_text = str(threads) if threads is not None else "default (METRICCORE_NUM_THREADS or CPUs)"
    lines = [
        "metriccore demo: synthetic loan book",
        "=" * 36,
        f"loans {loans:,}   officers {officers_requested:,} ({officers.num_rows:,} with loans)"
        f"   seed {seed}",
        f"threads {threads_text}",
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
    lines += [f"Worst {shown} officers by DQI", "-" * 26]
    lines += _officer_rows(worst.slice(0, shown).to_pylist())
    lines += ["", f"Best {shown} officers by DQI", "-" * 25]
    lines += _officer_rows(best.slice(0, shown).to_pylist())
    lines += [
        "",
        "Officers per band",
        "-----------------",
        f"  DQI   {_band_counts(officers, 'dqi_band', DQI_BANDS)}",
        f"  risk  {_band_counts(officers, 'risk_band', RISK_BANDS)}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
