"""Small run helpers for MAXCUT: device choice, atomic output files, run metadata.

Repeated (on purpose, by the project's design) in each experiment folder.
"""
import json
import os
import platform
import tempfile

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu. ``cuda`` without a GPU raises ``ValueError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


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


def check_writable(folder) -> str | None:
    """Why ``folder`` cannot receive a run's outputs (None if it can): created if missing, then a probe file
    written and removed (and folders made for the probe removed again) -- checked before any work, so that no
    run ends in a failed write. Stale ``.tmp-*`` files that a killed run left there are removed."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"--out-dir {folder} exists and is not a folder"
    folder = os.path.abspath(folder)
    created, up = [], folder
    while not os.path.exists(up):              # the folders a run would create; removed again after the probe
        created.append(up)
        up = os.path.dirname(up)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        return f"--out-dir {folder}: cannot write there ({e.strerror or e.__class__.__name__})"
    finally:
        for d in created:
            try:
                os.rmdir(d)
            except OSError:
                pass
    if created:
        return None
    for name in os.listdir(folder):
        if name.startswith(".tmp-"):
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                pass
    return None


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
    return {"args": vars(args), "device": str(device), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "matplotlib": matplotlib.__version__,
            "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "platform": platform.platform()}


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
