"""Worker threads: one shared pool, and the rule that no call leaves while its workers run.

Every public function splits its work between the calling thread and workers of one shared
``ThreadPoolExecutor``; the compiled tasks release the GIL. The workers read buffers that
the call owns (imported Arrow arrays, columns it concatenated), so a call must not return
or unwind (an exception, or ``KeyboardInterrupt`` / a time-out raised by a signal handler
in the calling thread) while any of its workers may still read them. :class:`Crew` makes
that so: a worker registers before it touches anything, and :meth:`Crew.stop` refuses
workers that have not started yet and waits for the ones that have.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["Crew", "run_tasks"]

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
# Re-entrant: ``Crew.start`` holds it around ``_executor`` *and* its submits.
_pool_lock = threading.RLock()


def _executor(n: int) -> ThreadPoolExecutor:
    """A shared pool with at least ``n`` workers (grown, never shrunk)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="metriccore")
            _pool_size = n
            if old is not None:
                old.shutdown(wait=False)
        return _pool


class Crew:
    """The pool workers of one call.

    ``start`` submits workers; each runs only if the crew has not been stopped when it
    begins, and the crew counts the ones running; a worker that raises stops the crew.
    ``results`` waits for their return values (re-raising a worker's exception). ``stop``
    (on any exception leaving the call) makes workers that have not begun return at once,
    waits until every running one has returned, whatever interrupts arrive meanwhile, and
    only then lets the call unwind.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._running = 0
        self._stopped = False
        self._futures: list[Future[Any]] = []

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._cond:
            if self._stopped:
                return None
            self._running += 1
        try:
            return fn(*args)
        except BaseException:
            self._stopped = True      # the call fails: the others stop taking work
            raise
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def start(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> None:
        """Run ``fn(*a)`` for every ``a`` of ``args`` on pool workers."""
        if not args:
            return
        # Submit under the lock: a concurrent caller that needs a bigger pool replaces and
        # shuts down this one, and submitting to a shut-down pool raises RuntimeError.
        with _pool_lock:
            pool = _executor(len(args))
            for a in args:
                self._futures.append(pool.submit(self._guarded, fn, *a))

    @property
    def stopped(self) -> bool:
        return self._stopped

    def results(self) -> list[Any]:
        """The workers' return values, in start order."""
        return [f.result() for f in self._futures]

    def stop(self) -> None:
        """Refuse workers not yet begun and wait for the running ones (uninterruptibly)."""
        while True:
            try:
                with self._cond:
                    self._stopped = True
                    while self._running:
                        self._cond.wait()
                return
            except BaseException:
                # Another interrupt while waiting: keep waiting. The caller is unwinding
                # from an exception of its own, which is the one it raises.
                continue


def run_tasks(tasks: list[Callable[[], T]], threads: int) -> list[T]:
    """Run ``tasks`` on up to ``threads`` workers, the calling thread being one of them;
    the results in task order. The tasks release the GIL while they work.

    Workers take the next task from a shared counter; once the call is unwinding (an
    exception in a task, or an interrupt in the calling thread), none starts another task,
    and the call leaves only when the running tasks have returned.
    """
    results: list[Any] = [None] * len(tasks)
    workers = max(1, min(threads, len(tasks)))
    queue = iter(range(len(tasks)))
    lock = threading.Lock()
    crew = Crew()

    def worker() -> None:
        while not crew.stopped:
            with lock:
                i = next(queue, None)
            if i is None:
                return
            results[i] = tasks[i]()

    try:
        crew.start(worker, [()] * (workers - 1))
        worker()
        crew.results()
    except BaseException:
        crew.stop()
        raise
    return results
