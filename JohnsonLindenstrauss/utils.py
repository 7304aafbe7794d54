"""Small run helpers for JohnsonLindenstrauss: device choice, atomic output files, run metadata.

Repeated (on purpose, by the project's design) in each experiment folder.
"""
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu. ``cuda`` without a GPU raises ``ValueError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def available_memory() -> int:
    """Bytes of memory a new allocation can use now (``MemAvailable`` of /proc/meminfo; elsewhere the physical
    memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 ** 62


def memory_problem(need_bytes: float, what: str, device=None) -> str | None:
    """Why a run estimated to need ``need_bytes`` cannot run here (None if it can): more than 80% of the memory
    available now (on CUDA: of the GPU's free memory). Checked before anything is allocated, so that an
    impossible size ends in one line rather than an allocator's traceback or a machine swapping to a halt."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        free = torch.cuda.mem_get_info()[0]
    else:
        free = available_memory()
    if need_bytes <= 0.8 * free:
        return None
    return (f"{what}: this run needs about {need_bytes / 2 ** 30:.3g} GiB of memory, {free / 2 ** 30:.3g} GiB is "
            "available")


def set_threads(n: int) -> None:
    """Run torch's CPU kernels, and the BLAS/OpenMP pools numpy and scipy use, on ``n`` threads.

    With more threads than free cores every small kernel waits for a descheduled thread: on 2 cores, two threads
    made Fig. 3, 5 and 7 4-50x slower beside one or two busy processes (one thread: at most 1.8x), and were no
    faster idle. Where more threads are asked for, waiting threads sleep instead of spinning
    (``OMP_WAIT_POLICY=PASSIVE``, which main.py sets before torch loads unless the user has set it)."""
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(n)
    threadpool_limits(n)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


STAGING = ".staging-"      # a run's outputs are written to the sibling folder .<name>.staging-<pid>, then swapped in


class _Interrupt:
    deferred = False       # the optimisation has ended: a first Ctrl-C lets the outputs of the work done be written
    seen = False


def _on_sigint(signum, frame):
    if _Interrupt.deferred and not _Interrupt.seen:
        _Interrupt.seen = True
        print("\ninterrupted: writing the outputs of the work already done (Ctrl-C again abandons them)",
              file=sys.stderr, flush=True)
        return
    raise KeyboardInterrupt


def optimisation_over() -> None:
    """Called by a run when its optimisation has ended (finished or interrupted): from here a first Ctrl-C no
    longer stops the run but lets it write the outputs of what it computed (see :func:`run_staged`)."""
    _Interrupt.deferred = True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_stale(parent, name):
    """Remove what a killed run left beside ``parent/name``: its staging folder, and -- when the kill came between
    the two renames of a swap -- put the previous run's folder back."""
    prefix = f".{name}{STAGING}"
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        pid = entry[len(prefix):].split(".")[0]
        if not entry.startswith(prefix) or not pid.isdigit() or _alive(int(pid)):
            continue
        path = os.path.join(parent, entry)
        if entry.endswith(".old") and not os.path.exists(os.path.join(parent, name)):
            os.rename(path, os.path.join(parent, name))
        else:
            shutil.rmtree(path, ignore_errors=True)


def check_writable(folder) -> str | None:
    """Why ``folder`` cannot receive a run's outputs (None if it can), checked before any work.

    A run writes its outputs into a staging folder beside ``folder`` and then swaps it in whole, so ``folder``
    must be new, empty or an earlier run's (it holds a ``config.json``) -- never a folder of other files, which the
    swap would remove -- and its parent must be writable (probed by making and removing a folder there). What a
    killed run left there is cleaned up first (see :func:`_clean_stale`)."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"--out-dir {folder} exists and is not a folder"
    folder = os.path.realpath(folder)
    parent, name = os.path.split(folder)
    if not name:
        return f"--out-dir {folder}: a run needs a folder of its own"
    _clean_stale(parent, name)
    try:
        for entry in os.listdir(folder) if os.path.isdir(folder) else ():
            if entry.startswith(".tmp-"):              # a temporary file an older, killed run left
                os.remove(os.path.join(folder, entry))
        foreign = os.path.isdir(folder) and bool(os.listdir(folder)) and not os.path.isfile(
            os.path.join(folder, "config.json"))
    except OSError as e:
        return f"--out-dir {folder}: cannot be read ({e.strerror or e.__class__.__name__})"
    if foreign:
        return (f"--out-dir {folder} holds files that are not a run's outputs (no config.json); a run replaces its "
                "folder whole: give a new, empty or earlier run's folder")
    created, up = [], parent
    while not os.path.exists(up):              # the folders a run would create; removed again after the probe
        created.append(up)
        up = os.path.dirname(up)
    try:
        os.makedirs(parent, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=f".{name}{STAGING}probe"))
        if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        return f"--out-dir {folder}: cannot write there ({e.strerror or e.__class__.__name__})"
    finally:
        for d in created:
            try:
                os.rmdir(d)
            except OSError:
                pass
    return None


def run_staged(args, runner):
    """``runner(args)`` with every output staged: ``args.out_dir`` points, while it runs, to a new folder beside
    the requested one (``args.final_out_dir``), which replaces the requested folder only once the run has written
    everything. So a run folder always holds one complete run -- this one, or the one before it -- never a mix:
    an error or a Ctrl-C before the optimisation has ended removes the staging folder and leaves the old run in
    place. After the optimisation (:func:`optimisation_over`) a first Ctrl-C lets the outputs be written (the
    result says ``interrupted``: :func:`interrupt_seen`); a second abandons them. Returns ``runner(args)``.
    An ``OSError`` while writing leaves the requested folder as it was; :func:`write_failed` reports it."""
    final = os.path.realpath(args.out_dir)            # a symlinked run folder: its target is the one replaced
    parent, name = os.path.split(final)
    os.makedirs(parent, exist_ok=True)
    stage = os.path.join(parent, f".{name}{STAGING}{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    os.mkdir(stage)
    _Interrupt.deferred = _Interrupt.seen = False
    main_thread = threading.current_thread() is threading.main_thread()    # signals reach the main thread only
    main_thread = main_thread and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN   # nohup & co: respected
    previous = signal.signal(signal.SIGINT, _on_sigint) if main_thread else None
    args.out_dir, args.final_out_dir = stage, args.out_dir
    try:
        res = runner(args)
        _Interrupt.deferred = True                       # the run is complete: a Ctrl-C now cannot lose it
        if main_thread:                                  # the swap is never cut between its two renames
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            old = stage + ".old"
            if os.path.exists(final):
                os.rename(final, old)
            os.rename(stage, final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            if main_thread:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        args.out_dir = args.final_out_dir
        if main_thread:
            signal.signal(signal.SIGINT, previous)
        _Interrupt.deferred = False
    return res


def interrupt_seen() -> bool:
    """Whether a Ctrl-C came after the optimisation ended (the run then finishes its outputs and says so)."""
    return _Interrupt.seen


def write_failed(args, err: OSError):
    """One line and exit status 1 for an output that could not be written (disk full, folder removed...)."""
    print(f"{os.path.basename(sys.argv[0]) or 'main.py'}: error: cannot write the outputs to {args.out_dir} "
          f"({err.strerror or err}); nothing was changed there", file=sys.stderr)
    sys.exit(1)


def _atomic(path, write):
    """Write through a temporary file in the same folder, then rename: no half-written files."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())      # mkstemp makes 0600; a result file follows the umask like any other
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _plain(obj):
    """``obj`` in plain JSON types: numpy scalars and arrays, tuples and torch devices converted, and every NaN or
    infinite number replaced by None (strict JSON has no NaN/Infinity; most readers reject Python's tokens)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, torch.device):
        return str(obj)
    return obj


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(_plain(obj), f, indent=2, allow_nan=False)
            f.write("\n")
    _atomic(path, write)


def write_npz(path, **arrays):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    _atomic(path, write)


def write_npy(path, array):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
    _atomic(path, write)


def write_text(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    _atomic(path, write)


def save_figure(fig, path_stem):
    """Save ``fig`` as ``path_stem.png`` and ``.pdf`` (tight bounding box), then close it."""
    import matplotlib.pyplot as plt
    for ext in ("png", "pdf"):
        _atomic(f"{path_stem}.{ext}", lambda tmp: fig.savefig(tmp, format=ext, bbox_inches="tight", dpi=150))
    plt.close(fig)


def run_metadata(args, device) -> dict:
    """Every argument plus library versions and the device, for ``config.json``."""
    import matplotlib
    plain = {k: v for k, v in vars(args).items() if k != "final_out_dir"}
    plain["out_dir"] = getattr(args, "final_out_dir", None) or args.out_dir     # the run's folder, not its staging
    return {"args": plain, "device": str(device), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "matplotlib": matplotlib.__version__,
            "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "platform": platform.platform()}


def write_run_record(args, device, res):
    """The last outputs of a run: ``config.json`` (:func:`run_metadata`) and ``results.json``, whose
    ``interrupted`` also says whether a Ctrl-C came after the optimisation (:func:`interrupt_seen`)."""
    res["interrupted"] = bool(res.get("interrupted")) or interrupt_seen()
    write_json(os.path.join(args.out_dir, "config.json"), run_metadata(args, device))
    write_json(os.path.join(args.out_dir, "results.json"), res)


def saved_run(folder, files):
    """``(config, results, {name: npz arrays})`` of an earlier run saved in ``folder`` (for ``--plot-only``);
    ``files``: the ``.npz`` names it must hold, or a function of the saved config giving them. Raises
    ``ValueError`` naming what is missing or unreadable."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: no such folder")
    out = []
    for name in ("config.json", "results.json"):
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                out.append(json.load(f))
        except OSError:
            raise ValueError(f"{path}: missing or unreadable; --plot-only needs a folder an earlier run wrote") from None
        except ValueError:
            raise ValueError(f"{path}: not valid JSON") from None
    arrays = {}
    for name in (files(out[0]) if callable(files) else files):
        path = os.path.join(folder, name)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays[name] = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: missing or unreadable ({e.__class__.__name__})") from None
    return out[0], out[1], arrays


def given_options(parser, args, among=None):
    """The options of ``args`` (names, in parser order) set to something other than their default, among
    ``among`` (default: all)."""
    return [k for k, v in vars(args).items()
            if (among is None or k in among) and v != parser.get_default(k)]


def refuse_with_plot_only(parser, args):
    """``--plot-only`` redraws from saved files: any other option given is refused (one line, exit 2)."""
    other = [k for k in given_options(parser, args) if k != "plot_only"]
    if other:
        parser.error(f"--plot-only redraws an earlier run's figures and takes no other option "
                     f"(got --{other[0].replace('_', '-')})")
