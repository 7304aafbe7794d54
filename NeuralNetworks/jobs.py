"""Running many independent jobs (certified points, paths) in worker processes: the process pool, its
workers' settings (one thread each, glibc keeping freed memory for reuse) and Ctrl-C. Nothing here is part of
the paper."""
import time

import torch

def timed(fn, *args):
    """``(fn(*args), seconds)``."""
    t = time.perf_counter()
    return fn(*args), time.perf_counter() - t


def keep_freed_memory():
    """glibc's allocator in this process: every block from the heap (none mapped on its own) and freed memory
    kept for reuse, never handed back, so that arrays a search allocates and frees thousands of times (gradient
    intermediates, Hessians) are not mapped and page-faulted in afresh each time. The process keeps its peak
    memory. A no-op where the C library is not glibc."""
    import ctypes
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    mallopt(M_MMAP_THRESHOLD, 1 << 30)
    mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)
    mallopt(M_TOP_PAD, 64 << 20)


def _worker_init():
    """A sweep worker: one thread everywhere (the workers are the parallelism), freed memory kept for reuse
    (:func:`keep_freed_memory`), and Ctrl-C left to the parent, which ends the workers itself."""
    import signal
    import threading
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm
    tqdm.set_lock(threading.RLock())   # not tqdm's multiprocessing lock: a terminated worker would leak it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    threadpool_limits(1)
    keep_freed_memory()


def run_jobs(jobs, workers: int = 1, progress: bool = False, desc: str = "sosp"):
    """Run ``jobs`` -- ``(fn, args)`` pairs -- and yield ``(index, result)`` as each finishes.

    ``workers = 1``: one after another in this process. ``workers > 1``: in that many fresh single-threaded
    processes (spawned: torch's thread pools do not survive a fork), each taking the next job as soon as it is
    free, in the order given (longest first balances best). A Ctrl-C ends the workers at once and propagates as
    KeyboardInterrupt after the results received so far."""
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), disable=None if progress else True, desc=desc)
    try:
        if workers <= 1:
            keep_freed_memory()
            for i, (fn, args) in enumerate(jobs):
                yield i, fn(*args)
                bar.update()
            return
        import multiprocessing as mp
        import signal
        ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)   # the workers start with Ctrl-C ignored (kept
        try:                                                       # across exec): none is hit while importing
            pool = mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_worker_init)
        finally:
            signal.signal(signal.SIGINT, ignored)
        try:
            for i, res in pool.imap_unordered(_indexed, list(enumerate(jobs)), chunksize=1):
                yield i, res
                bar.update()
        except BaseException:
            pool.terminate()
            raise
        else:
            pool.close()
        finally:
            pool.join()
    finally:
        bar.close()


def _indexed(item):
    """A job run in a worker, returned with its index."""
    i, (fn, args) = item
    return i, fn(*args)
