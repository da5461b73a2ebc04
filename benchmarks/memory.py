"""Peak memory of one ``officer_metrics`` call, over the loaded input, in a fresh process.

    python benchmarks/memory.py                       # 10M loans, 1,000 officers, 2 threads
    python benchmarks/memory.py --loans 1000000 --threads 1 --json results/memory.json

The parent starts a child Python process that

1. imports metriccore and runs one small warm-up call (thread pool, lazy imports: one-time
   process costs, not per-call memory);
2. builds the synthetic loan snapshot (the input), then frees what generation left behind
   (``gc.collect``, Arrow's ``release_unused``, glibc's ``malloc_trim``) and reads its
   resident set size (VmRSS): the baseline, input loaded;
3. resets the kernel's peak-RSS mark (writes ``5`` to ``/proc/self/clear_refs``, Linux >= 4.0),
   makes the call, and reads the peak (VmHWM). Growth = peak - baseline: everything the call
   allocated and touched, the result included. A second call is measured the same way.

If ``clear_refs`` cannot be written, the peak is sampled from ``/proc/self/statm`` by a
thread every 0.2 ms instead (the engine releases the GIL), which can miss short spikes.

The child uses Arrow's ``system`` memory pool (``ARROW_DEFAULT_MEMORY_POOL=system``, i.e.
glibc malloc, which ``malloc_trim`` empties), so that memory freed before the call is given
back to the system and memory the call allocates shows up as RSS (a caching allocator could
otherwise hide it by reusing pages freed earlier). ``--pool default`` keeps pyarrow's own
allocator. The issue's target is a growth below 50 MB (50 * 10**6 bytes) at 10M loans.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

TARGET_BYTES = 50 * 10**6
MB = 10**6


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _rss_bytes() -> int:
    return _status_kb("VmRSS") * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _Sampler(threading.Thread):
    """Fallback peak tracker: polls the resident set size."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        with open("/proc/self/statm", "rb", buffering=0) as f:
            while not self.stop.is_set():
                f.seek(0)
                self.peak = max(self.peak, int(f.read().split()[1]) * self.page)
                time.sleep(0.0002)


def _measure(call: Any) -> dict[str, Any]:
    _trim()
    before = _rss_bytes()
    exact = _reset_peak()
    sampler = None
    if not exact:
        sampler = _Sampler()
        sampler.start()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    if sampler is not None:
        sampler.stop.set()
        sampler.join()
        peak = max(sampler.peak, _rss_bytes())
    else:
        peak = _status_kb("VmHWM") * 1024
    out = {"rss_before": before, "peak_rss": peak, "growth": peak - before,
           "method": "VmHWM after clear_refs" if exact else "sampled statm",
           "seconds": seconds, "result_rows": result.num_rows,
           "result_bytes": result.nbytes}
    del result
    return out


def child(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa

    import metriccore
    from metriccore.synthetic import loan_snapshot

    from_start = _rss_bytes()
    warm = loan_snapshot(1_000, n_officers=args.officers)
    metriccore.officer_metrics(warm, by=args.by, threads=args.threads)
    del warm
    _trim()
    before_input = _rss_bytes()

    table = loan_snapshot(args.loans, n_officers=args.officers, seed=args.seed)
    used = [args.by] + list(metriccore._schema.INPUT_COLUMNS)
    calls = []
    for _ in range(args.calls):
        calls.append(_measure(
            lambda: metriccore.officer_metrics(table, by=args.by, threads=args.threads)))
    return {
        "loans": args.loans, "officers": args.officers, "threads": args.threads,
        "by": args.by, "memory_pool": pa.default_memory_pool().backend_name,
        "rss_at_start": from_start, "rss_before_input": before_input,
        "input_bytes": table.nbytes, "used_input_bytes": table.select(used).nbytes,
        "rss_with_input": calls[0]["rss_before"],
        "calls": calls,
        "growth": max(c["growth"] for c in calls),
        "target_bytes": TARGET_BYTES,
    }


def _fmt(n: int) -> str:
    return f"{n / MB:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=10_000_000)
    parser.add_argument("--officers", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--by", default="officer_id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=2, help="measured calls (default 2)")
    parser.add_argument("--pool", choices=("system", "default"), default="system",
                        help="Arrow memory pool in the child (default: system)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args)))
        return 0

    env = dict(os.environ)
    if args.pool == "system":
        env["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           "--loans", str(args.loans), "--officers", str(args.officers),
           "--threads", str(args.threads), "--by", args.by, "--seed", str(args.seed),
           "--calls", str(args.calls)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        return proc.returncode
    info = json.loads(proc.stdout.strip().splitlines()[-1])

    print(f"metriccore.officer_metrics peak memory: {info['loans']:,} loans, "
          f"{info['officers']:,} officers, by={info['by']!r}, threads={info['threads']}, "
          f"Arrow pool {info['memory_pool']}")
    print(f"  input table {_fmt(info['input_bytes'])} (used columns "
          f"{_fmt(info['used_input_bytes'])}); RSS before the input "
          f"{_fmt(info['rss_before_input'])}, with it {_fmt(info['rss_with_input'])}")
    for i, c in enumerate(info["calls"], 1):
        print(f"  call {i}: peak RSS {_fmt(c['peak_rss'])}, growth over the loaded input "
              f"{_fmt(c['growth'])} ({c['method']}; {c['seconds'] * 1e3:,.1f} ms; result "
              f"{c['result_rows']:,} rows, {_fmt(c['result_bytes'])})")
    ok = info["growth"] < TARGET_BYTES
    print(f"  peak growth {_fmt(info['growth'])}: {'within' if ok else 'OVER'} the "
          f"{_fmt(TARGET_BYTES)} target")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
