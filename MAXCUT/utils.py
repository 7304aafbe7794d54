"""Run helpers, repeated on purpose in each folder: device and threads, memory, the run folder, JSON, figures.
Nothing here is part of the paper."""
import json
import math
import os
import platform
import shutil
import tempfile

import numpy as np
import torch


def resolve_device(name):
    """``auto``: cuda when available, else cpu; ``cuda`` without a GPU is a ``ValueError``."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def available_cores():
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(n):
    """torch's kernels and the BLAS pools of numpy/scipy on ``n`` threads."""
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(n)
    threadpool_limits(n)


def memory_problem(need_bytes, what, device):
    """Why a run needing ``need_bytes`` cannot run here (None if it can): over 80% of the free memory."""
    if device.type == "cuda":
        free = torch.cuda.mem_get_info()[0]
    else:               # MemAvailable of /proc/meminfo (Linux), else the physical memory
        info = open("/proc/meminfo").read() if os.path.exists("/proc/meminfo") else ""
        free = (int(info.split("MemAvailable:")[1].split()[0]) * 1024 if "MemAvailable:" in info
                else os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return None if need_bytes <= 0.8 * free else (
        f"{what}: this run needs about {need_bytes / 2 ** 30:.3g} GiB of memory, {free / 2 ** 30:.3g} GiB is free")


class RunFolder:
    """A run writes plainly into a staging folder beside ``final``; :meth:`commit` renames it in whole, so
    ``final`` always holds one complete run. An interrupted run goes to ``final.interrupted`` instead."""

    def __init__(self, final):
        self.final = os.path.realpath(final)
        parent, name = os.path.split(self.final)
        if os.path.exists(self.final) and not os.path.isdir(self.final):
            raise ValueError(f"--out-dir {final} exists and is not a folder")
        if os.path.isdir(self.final) and os.listdir(self.final) and "config.json" not in os.listdir(self.final):
            raise ValueError(f"--out-dir {final} holds files that are not a run's (no config.json); a run replaces "
                          "its folder whole: give a new, empty or earlier run's folder")
        os.makedirs(parent, exist_ok=True)
        for entry in os.listdir(parent):             # what killed runs left: .NAME.staging-PID.*
            pid = entry[len(name) + 10:].split(".")[0]
            if entry.startswith(f".{name}.staging-") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
        self.path = tempfile.mkdtemp(dir=parent, prefix=f".{name}.staging-{os.getpid()}.")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.path, 0o777 & ~mask)           # a run folder follows the umask like any other

    def commit(self, interrupted=False):
        """Rename the staging folder to ``final`` (or ``final.interrupted``); returns where it went."""
        target = self.final + (".interrupted" if interrupted else "")
        old = self.path + ".old"
        if os.path.exists(target):
            os.rename(target, old)
        try:
            os.rename(self.path, target)
        finally:                                      # a Ctrl-C between the two renames: the old run stays
            if os.path.exists(old) and not os.path.exists(target):
                os.rename(old, target)
        shutil.rmtree(old, ignore_errors=True)
        return target

    def abandon(self):
        shutil.rmtree(self.path, ignore_errors=True)


def plain(obj):
    """``obj`` in strict-JSON types: numpy and torch values converted, NaN and infinities as None."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [plain(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(plain(obj), indent=2, allow_nan=False) + "\n")


def write_config(folder, experiment, options: dict, device):
    """``config.json``: the experiment, every option, library versions, device and threads."""
    import matplotlib
    write_json(os.path.join(folder, "config.json"), {
        "package": __package__, "experiment": experiment, "args": options, "device": str(device),
        "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "matplotlib": matplotlib.__version__, "platform": platform.platform()})


def save_figure(fig, stem):
    import matplotlib.pyplot as plt
    for ext in ("png", "pdf"):
        fig.savefig(f"{stem}.{ext}", bbox_inches="tight", dpi=150)
    plt.close(fig)
