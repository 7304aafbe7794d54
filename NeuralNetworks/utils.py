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


def memory_problem(need_bytes, what, device, shrink=None):
    """Why a run needing ``need_bytes`` cannot run here (None if it can): over 80% of the free memory. The
    message names ``shrink``, the options that make the run smaller (and ``--device cpu`` on a GPU)."""
    if device.type == "cuda":
        free = torch.cuda.mem_get_info()[0]
    else:               # MemAvailable of /proc/meminfo (Linux), else the physical memory
        info = open("/proc/meminfo").read() if os.path.exists("/proc/meminfo") else ""
        free = (int(info.split("MemAvailable:")[1].split()[0]) * 1024 if "MemAvailable:" in info
                else os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    hints = [h for h in (shrink and f"a smaller {shrink} shrinks it", device.type == "cuda" and
                         "--device cpu runs it in the host's memory") if h]
    return None if need_bytes <= 0.8 * free else (
        f"{what}: this run needs about {need_bytes / 2 ** 30:.3g} GiB of memory, {free / 2 ** 30:.3g} GiB is free"
        + (f"; {'; '.join(hints)}" if hints else ""))


MANIFEST = "MANIFEST.json"     # in every folder the project writes: the files it wrote, with their SHA-256


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that a run's staging folder is removed on the way out."""


_RECEIVED = []      # the signals received since take_signals()


def _raise_for(signum, frame):
    import signal
    _RECEIVED.append(signum)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()


def _unraisable(hook):
    """``sys.unraisablehook`` that drops our own signal exceptions silently (:func:`raise_swallowed` acts on
    them) and passes anything else to ``hook``."""
    def quiet(info):
        if not issubclass(info.exc_type, (KeyboardInterrupt, Terminated)):
            hook(info)
    return quiet


def take_signals():
    """Ctrl-C raises KeyboardInterrupt and SIGTERM :class:`Terminated` from now on (main thread only); plots
    are files, so matplotlib draws with Agg whatever ``MPLBACKEND`` says; output the terminal's encoding cannot
    show is escaped."""
    import signal
    import sys
    import threading
    os.environ["MPLBACKEND"] = "agg"
    for stream in (sys.stdout, sys.stderr):        # a folder's name the terminal cannot show: escaped, not fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    _RECEIVED.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _raise_for)
        signal.signal(signal.SIGTERM, _raise_for)
        sys.unraisablehook = _unraisable(sys.__unraisablehook__)


def raise_swallowed(handled=False):
    """Raise again a signal whose exception Python dropped (one raised inside a garbage-collector callback is
    lost): SIGTERM always, a Ctrl-C unless ``handled`` (an optimiser caught it and stopped early)."""
    import signal
    if signal.SIGTERM in _RECEIVED:
        raise Terminated()
    if _RECEIVED and not handled:
        raise KeyboardInterrupt


def sha256_of(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder):
    """``{relative path: SHA-256}`` of the files ``folder/MANIFEST.json`` lists ({} when there is none or it is
    unreadable); only plain relative paths inside the folder count."""
    import json
    import stat
    path = os.path.join(folder, MANIFEST)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):    # a pipe or a link is not ours, and never opened
            return {}
        with open(path) as f:
            files = json.load(f)["files"]
        return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str) and k
                and not os.path.isabs(k) and os.path.normpath(k) == k and not k.startswith("..")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return {}


def add_to_manifest(folder, paths, writer):
    """Record ``paths`` (relative to ``folder``, files this process has just written) in its manifest, beside
    what it lists already; written to a temporary name and renamed."""
    files = read_manifest(folder)
    files.update({p: sha256_of(os.path.join(folder, p)) for p in paths})
    tmp = os.path.join(folder, f".{MANIFEST}.{os.getpid()}")
    write_json(tmp, {"written_by": writer, "files": dict(sorted(files.items()))})
    os.replace(tmp, os.path.join(folder, MANIFEST))


def files_under(folder, sub=""):
    """Every file under ``folder/sub``, as paths relative to ``folder``."""
    return [os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(os.path.join(folder, sub))
            for name in names]


def write_manifest(folder, writer):
    """``folder/MANIFEST.json``: every file under ``folder`` (what the run just wrote) with its SHA-256."""
    add_to_manifest(folder, [p for p in files_under(folder) if p not in (MANIFEST, ".staging")], writer)


def foreign_files(folder, hashes=True, listed=None):
    """What in ``folder`` this project did not write (relative paths, sorted): everything when it has no
    manifest; else every entry that is not a regular file the manifest (or ``listed``) lists (with the same
    SHA-256 when ``hashes``) and every folder that is not on the way to one. Nothing is opened but the listed
    files."""
    import stat
    listed = read_manifest(folder) if listed is None else listed
    dirs = {os.path.dirname(p) for p in listed}
    while any(d and os.path.dirname(d) not in dirs for d in dirs):
        dirs |= {os.path.dirname(d) for d in dirs}
    foreign = []
    for root, subdirs, names in os.walk(folder):
        for name in subdirs + names:
            rel = os.path.relpath(os.path.join(root, name), folder)
            mode = os.lstat(os.path.join(root, name)).st_mode
            ours = (rel in dirs and stat.S_ISDIR(mode)) or (rel == MANIFEST and listed and stat.S_ISREG(mode)) or (
                rel in listed and stat.S_ISREG(mode) and (not hashes or sha256_of(os.path.join(root, name))
                                                          == listed[rel]))
            if not ours:
                foreign.append(rel)
        subdirs[:] = [d for d in subdirs if os.path.relpath(os.path.join(root, d), folder) in dirs]
    return sorted(foreign)


def remove_run(folder):
    """Delete a run folder the project wrote: the files its manifest lists (where their SHA-256 still matches),
    then the manifest and the folders left empty. Anything else stays, and so does the folder then."""
    for rel, digest in read_manifest(folder).items():
        path = os.path.join(folder, rel)
        if os.path.isfile(path) and not os.path.islink(path) and sha256_of(path) == digest:
            os.remove(path)
    if not foreign_files(folder) and os.path.isfile(os.path.join(folder, MANIFEST)):
        os.remove(os.path.join(folder, MANIFEST))
    for root, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        try:
            os.rmdir(root)
        except OSError:
            pass


def redraw(folder, draw, writer):
    """``draw()`` the figures of the run in ``folder`` again -- only where the folder is a run this project wrote
    and its data are as the run wrote them (else ``ValueError``, nothing drawn) -- replacing only figures the
    manifest lists, which is brought up to date however ``draw`` ends."""
    listed, foreign = read_manifest(folder), foreign_files(folder)
    theirs = [f for f in foreign if f.endswith((".png", ".pdf"))]
    edited = [f for f in foreign if f in listed and f not in theirs]
    if theirs:
        raise ValueError(f"figures there that this project did not write ({', '.join(theirs[:3])}); it replaces "
                         "only its own")
    if edited:
        raise ValueError(f"{', '.join(edited[:3])} changed since the run wrote it: redrawn, the figures would not "
                         "be the run's")
    if not listed:
        raise ValueError("it has no MANIFEST.json (not a run folder of this version: rerun the experiment)")
    before = set(os.listdir(folder))
    try:
        draw()
        raise_swallowed()
    finally:
        add_to_manifest(folder, [f for f in os.listdir(folder) if f.endswith((".png", ".pdf"))
                                 and (f in listed or f not in before)], writer)


def ownership_problem(folder, what):
    """Why ``folder`` cannot be replaced by a new run (None if it can: absent, empty, or exactly a run this
    project wrote)."""
    if not os.path.lexists(folder):
        return None
    if os.path.islink(folder) or not os.path.isdir(folder):
        return f"{what} {folder} exists and is not a folder"
    foreign = foreign_files(folder)
    if not foreign:
        return None
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    return (f"{what} {folder} holds files this project did not write ({shown}); a run replaces its folder whole "
            "and never touches others' files: move them, or give a new or empty folder")


class RunFolder:
    """A run writes plainly into a staging folder beside ``final``; :meth:`commit` renames it in whole, so
    ``final`` always holds one complete run. An interrupted run goes to ``final.interrupted`` instead. Only a
    folder holding exactly what an earlier run wrote (its ``MANIFEST.json``) is ever replaced."""

    def __init__(self, final, writer):
        self.final, self.writer = os.path.realpath(final), writer     # a link to a folder: the folder
        for target, what in ((self.final, "--out-dir"), (self.final + ".interrupted", "the interrupted-run folder")):
            problem = ownership_problem(target, what)
            if problem:
                raise ValueError(problem)
        parent, name = os.path.split(self.final)
        os.makedirs(parent, exist_ok=True)
        for entry in os.listdir(parent):             # what killed runs left: .NAME.staging-PID.*, if bare
            pid = entry[len(name) + 10:].split(".")[0]
            if entry.startswith(f".{name}.staging-") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                _remove_if_bare(os.path.join(parent, entry))
        self.path = tempfile.mkdtemp(dir=parent, prefix=f".{name}.staging-{os.getpid()}.")
        open(os.path.join(self.path, ".staging"), "w").close()
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.path, 0o777 & ~mask)           # a run folder follows the umask like any other

    def commit(self, interrupted=False):
        """Rename the staging folder to ``final`` (or ``final.interrupted``), replacing an earlier run there;
        returns where it went. Should the folder there hold others' files by now, the new run is kept beside
        it (``final.new-PID``) and nothing is replaced."""
        write_manifest(self.path, self.writer)      # from here the manifest marks the staging folder ours
        os.remove(os.path.join(self.path, ".staging"))
        target = self.final + (".interrupted" if interrupted else "")
        if ownership_problem(target, "the folder"):
            target = f"{self.final}.new-{os.getpid()}"
        old = self.path + ".old"
        if os.path.exists(target):
            os.rename(target, old)
        try:
            os.rename(self.path, target)
        finally:                                      # a Ctrl-C between the two renames: the old run stays
            if os.path.exists(old) and not os.path.exists(target):
                os.rename(old, target)
        if os.path.exists(old):
            remove_run(old)
        if os.path.exists(old):                       # others' files appeared in it meanwhile: kept, in sight
            os.rename(old, f"{self.final}.previous-{os.getpid()}")
        return target

    def abandon(self):
        _remove_staging(self.path)


def _remove_if_bare(path):
    """A killed run's staging folder, removed only while it holds nothing but its mark: its files may have been
    looked at or added to since, so they are left for the user (who sees them named ``.NAME.staging-PID.*``)."""
    try:
        if os.listdir(path) in ([], [".staging"]) and not os.path.islink(path):
            if os.listdir(path):
                os.remove(os.path.join(path, ".staging"))
            os.rmdir(path)
    except OSError:
        pass


def _remove_staging(path):
    """A staging folder (hidden, named for its process, marked ``.staging`` when made): removed whole where it
    carries the mark or a complete manifest, else only when bare."""
    if not os.path.islink(path) and (os.path.isfile(os.path.join(path, ".staging"))
                                     or os.path.isfile(os.path.join(path, MANIFEST)) and not foreign_files(path)):
        shutil.rmtree(path, ignore_errors=True)
    else:
        _remove_if_bare(path)


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


def code_version():
    """``{"commit", "dirty"}`` of the git checkout holding this package (``git rev-parse HEAD``; dirty: ``git
    status --porcelain`` lists anything), None for both where there is no checkout or git does not answer."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, ".git")):
        return {"commit": None, "dirty": None}
    try:
        head, status = (subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True, timeout=20,
                                       check=True).stdout for cmd in (["rev-parse", "HEAD"], ["status", "--porcelain"]))
        return {"commit": head.strip() or None, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_version():
    """This folder's ``__version__`` (its ``__init__.py``): the code version where no git checkout names the commit."""
    import importlib
    return importlib.import_module(__package__).__version__


def library_versions():
    """The installed versions of the libraries a run may use (None for one not installed), and Python's."""
    from importlib import metadata
    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "scipy", "scikit-learn", "networkx", "matplotlib", "threadpoolctl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_config(folder, experiment, options: dict, device, inputs=()):
    """``config.json``: the experiment, the code version (git commit and dirty flag, or the package's name),
    every option as the run used it, library versions, device and threads, and each input file's absolute path
    and SHA-256 (this folder's experiments read none: ``inputs`` is empty)."""
    versions = library_versions()
    write_json(os.path.join(folder, "config.json"), {
        "package": __package__, "experiment": experiment,
        "code": {"package": __package__, "version": package_version(), **code_version()},
        "args": options, "device": str(device), "threads": torch.get_num_threads(), "versions": versions, **versions,
        "platform": platform.platform(),
        "inputs": [{"path": os.path.abspath(p), "sha256": sha256_of(p)} for p in inputs]})


def save_figure(fig, stem):
    """``stem.png`` and ``stem.pdf``, each written to a temporary name and renamed: never half a file."""
    import matplotlib.pyplot as plt
    try:
        for ext in ("png", "pdf"):
            tmp = f"{os.path.dirname(stem) or '.'}/.{os.path.basename(stem)}.{os.getpid()}.{ext}"
            try:
                fig.savefig(tmp, format=ext, bbox_inches="tight", dpi=150)
                os.replace(tmp, f"{stem}.{ext}")
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
    finally:
        plt.close(fig)
