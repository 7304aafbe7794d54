"""The whole G-set: every graph file in a folder, smallest first, each run as ``main.py --graph FILE --polish
--tabu 50`` (SDP embedding, pathwise derandomisation, then the polish step) in a process of its own under a time
budget, its result kept in ``OUT/graphs/<name>/`` so that an interrupted benchmark resumes where it stopped.

    python MAXCUT/benchmark.py --gset-dir DIR --out-dir OUT [--only G1,G22] [--budget 1800] [--jobs 2]

Three cuts per graph, kept apart: *derandomised* (the paper's method), *one-flip* (greedy one-flip local search
from every chain: the baseline polish) and *polished* (the stated polish step: tabu search from the best one-flip
cut, ``--tabu`` flips per node -- a stronger local search than one-flip, not the paper's; ``--tabu 0``: one-flip
only, and then polished = one-flip). Beside them the classic derandomisation of the same SDP vectors, the method of
conditional expectations (Mahajan & Ramesh 1999; conditional.py): its cut is at least the GW expectation.

Writes ``gset_all.csv`` (one line per graph), ``gset_all.md`` (the table and the targets) and the figure
``gset_all.png`` (% of the best known cut against the number of nodes, per family).
"""
import csv
import hashlib
import json
import os
import stat
import subprocess
import sys
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from MAXCUT.graphs import graph_digest, gset_name, gset_table, read_graph_file
from MAXCUT.utils import (MANIFEST, add_to_manifest, files_under, foreign_files, read_manifest, save_figure,
                          sha256_of, write_json)

HERE = os.path.dirname(os.path.abspath(__file__))

# Published cuts on the same graphs: the physics-inspired GNN of Schuetz, Brubaker & Katzgraber (Nature Machine
# Intelligence 4, 2022), and the SDP + rounding values quoted beside it.
PI_GNN = {"G14": 3026, "G15": 2990, "G22": 13181, "G49": 5918, "G50": 5820, "G55": 10138, "G70": 9421}
SDP_ROUNDING = {"G22": 12960, "G55": 9960, "G70": 9456}

# rudy's generators behind the G-set (Helmberg & Rendl 2000): the graph numbers of each kind; the weights
# (1 or ±1) are read from the file.
KINDS = {"random": [*range(1, 11), *range(22, 32), *range(43, 48), 55, 56, 60, 61, 70],
         "toroidal": [*range(11, 14), *range(32, 35), *range(48, 51), 57, 62, 65, 66, 67, 72, 77, 81],
         "planar": [*range(14, 22), *range(35, 43), *range(51, 55), 58, 59, 63, 64]}

TABU = 50             # tabu-search flips per node after the one-flip polish (main.py --tabu)
FULL_CHAINS_UP_TO = 3000   # nodes: main.py's 32 chains up to here; above, 32 · 3000 / n (at least 4), so that
                           # a derandomisation step costs about what it costs at 3000 nodes (chains · n · r)


NON_NEGATIVE = ("1", "real ≥ 0")    # the weights column's values inside Theorem 5.2 (GW's guarantee needs w ≥ 0)

COLUMNS = ("graph", "family", "nodes", "edges", "weights", "sdp", "gw_expectation", "best_of_1000",
           "conditional_expectations", "derandomised", "one_flip", "polished", "polish", "chains", "best_known",
           "conditional_expectations_pct", "derandomised_pct", "one_flip_pct", "polished_pct", "pi_gnn",
           "sdp_rounding", "sdp_seconds", "conditional_seconds", "derandomise_seconds", "one_flip_seconds",
           "tabu_seconds", "seconds", "peak_memory_mb", "status")


def chains_for(n):
    """The pathwise chains of a graph of ``n`` nodes (the per-graph budget's one size rule)."""
    return 32 if n <= FULL_CHAINS_UP_TO else max(4, round(32 * FULL_CHAINS_UP_TO / n))


class BenchmarkError(ValueError):
    """Bad input to the benchmark (a folder, a graph name): one line, exit 2."""


def best_known_table():
    """``{graph: best known cut}``: Breakout Local Search (Benlic & Hao 2013), the standard column."""
    return {r["graph"]: int(r["best_known_bls2013"]) for r in gset_table()}


def family(name, weights):
    """``random`` / ``toroidal`` / ``planar`` (G-set numbering; ``other`` for any other file), ``±1`` added when
    the weights are ±1."""
    num = int(name[1:]) if name[:1] == "G" and name[1:].isdigit() else None
    kind = next((k for k, nums in KINDS.items() if num in nums), "other")
    return kind + (" ±1" if weights == "±1" else "")


def graph_files(gset_dir, only=None):
    """``([(name, path)], skipped)``: the graph files in ``gset_dir`` (every ``*.txt`` that is a regular file or a
    link to one; ``only``: these names), smallest first by the ``n m`` of the first line, then by name; and the
    other ``*.txt`` entries (folders, FIFOs, sockets, broken links), skipped without being opened."""
    if not os.path.isdir(gset_dir):
        raise BenchmarkError(f"--gset-dir {gset_dir}: no such folder")
    files, skipped = {}, []
    for f in sorted(f for f in os.listdir(gset_dir) if f.endswith(".txt")):
        path = os.path.join(gset_dir, f)
        if _regular(path):
            files[os.path.splitext(f)[0]] = path
        else:
            skipped.append(f)
    if only:
        missing = [g for g in only if g not in files]
        if missing:
            raise BenchmarkError(f"--only: no {missing[0]}.txt in {gset_dir}" + (
                " that is a regular file" if f"{missing[0]}.txt" in skipped else ""))
        files, skipped = {g: files[g] for g in only}, []
    if not files:
        raise BenchmarkError(f"--gset-dir {gset_dir}: no .txt graph files there" + (
            f" (not regular files: {', '.join(skipped)})" if skipped else ""))

    def size(item):
        with open(item[1], "rb") as f:
            head = f.readline().split()
        nm = [int(t) for t in head[:2]] if len(head) == 2 and all(t.isdigit() for t in head) else [0, 0]
        return (*nm, len(item[0]), item[0])
    return sorted(files.items(), key=size), skipped


def _regular(path):
    """Whether ``path`` is a regular file, or a link to one: asked of its metadata (``os.stat``), never by opening
    it -- opening a FIFO waits for a writer forever."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _atomically(path, write):
    """``write(tmp)`` to a file beside ``path``, then renamed onto it: never a half-written file."""
    try:
        write(path + ".tmp")
        os.replace(path + ".tmp", path)
    finally:
        if os.path.exists(path + ".tmp"):
            os.remove(path + ".tmp")


WRITER = "StructureDiscovery MAXCUT/benchmark.py --gset-dir"
_RUNNING, _STOP, _LOCK = set(), threading.Event(), threading.Lock()   # the graphs' processes; Ctrl-C; the manifest


def _record(out_dir, paths):
    """Add what a graph's run wrote (paths relative to ``out_dir``; folders: every file in them) to OUT's
    manifest, so that a later run knows these as the benchmark's own."""
    files = [f for p in paths for f in (files_under(out_dir, p) if os.path.isdir(os.path.join(out_dir, p))
                                        else [p] if os.path.isfile(os.path.join(out_dir, p)) else [])]
    with _LOCK:
        add_to_manifest(out_dir, files, WRITER)


def _cached(stamp):
    """A graph's earlier record, or None where there is none or it cannot be read (it is then recomputed)."""
    try:
        with open(stamp) as f:
            rec = json.load(f)
        return rec if isinstance(rec, dict) and isinstance(rec.get("status"), str) else None
    except (OSError, ValueError):
        return None


def check_out_dir(out_dir):
    """OUT must be new, empty, or hold only what the benchmark wrote there, as it wrote it (its manifest; a
    record may differ: it is read again, or recomputed, :func:`_cached`): else a :class:`BenchmarkError` naming
    what it will not touch."""
    if os.path.lexists(out_dir) and (os.path.islink(out_dir) or not os.path.isdir(out_dir)):
        raise BenchmarkError(f"--out-dir {out_dir} exists and is not a folder")
    if os.path.isdir(out_dir):                # a record (graphs/NAME.json and its log) is a cache: if edited or
        listed = read_manifest(out_dir)       # cut short it is only recomputed; anything else must be as written
        graphs = os.path.join(out_dir, "graphs")
        for d in os.listdir(graphs) if os.path.isdir(graphs) else []:     # a graph's run folder is main.py's,
            run = os.path.join(graphs, d)                                    # as its own manifest says
            if read_manifest(run) and not foreign_files(run):
                listed.update({os.path.join("graphs", d, f): v for f, v in read_manifest(run).items()})
                listed[os.path.join("graphs", d, MANIFEST)] = sha256_of(os.path.join(run, MANIFEST))
        theirs = [f for f in foreign_files(out_dir, listed=listed) if f not in listed
                  or not f.startswith("graphs" + os.sep) or not f.endswith((".json", ".json.log"))
                  or f.count(os.sep) != 1]
        if theirs:
            raise BenchmarkError(f"--out-dir {out_dir} holds files this benchmark did not write "
                                 f"({', '.join(theirs[:5])}{' ...' if len(theirs) > 5 else ''}): give a new or "
                                 "empty folder, or an earlier benchmark's")


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def run_graph(name, path, out_dir, budget, tabu=TABU, chains=32):
    """One graph: its cached record in ``out_dir/graphs/name.json`` if the file and ``tabu`` are unchanged and it
    ran (or ran out of a budget at least as large; a failed run is tried again), else ``main.py --graph path
    --polish --tabu tabu`` in a process of its own (one thread), killed after ``budget`` seconds. Returns the
    record: main.py's ``results.json`` (without the partition), the file's digest, the budget, the process's
    peak memory and a ``status`` (ok, over budget, failed: …)."""
    folder = os.path.join(out_dir, "graphs", name)
    stamp = os.path.join(out_dir, "graphs", f"{name}.json")
    digest = _digest(path)
    rec = _cached(stamp)
    if rec is not None and (rec.get("digest"), rec.get("tabu"), rec.get("chains", 32)) == (digest, tabu, chains) and (
            rec["status"] == "ok" and {"gw_expectation", "conditional_expectations"} <= rec.keys()   # older: rerun
            or rec["status"].startswith("over budget") and rec.get("budget", 0) >= budget):
        return {**rec, "reused": True}
    cmd = [sys.executable, os.path.join(HERE, "main.py"), "--graph", path, "--polish", "--tabu", str(tabu),
           "--chains", str(chains), "--no-progress", "--threads", "1", "--out-dir", folder]
    t = time.perf_counter()
    rec = {"graph": name, "digest": digest, "budget": budget, "tabu": tabu, "chains": chains}
    os.makedirs(os.path.dirname(stamp), exist_ok=True)
    with open(stamp + ".log", "w") as log:
        with _LOCK:
            if _STOP.is_set():
                raise KeyboardInterrupt
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            _RUNNING.add(proc)
        try:
            status, usage = _wait(proc, budget)
        finally:
            _RUNNING.discard(proc)
    if status in (130, 143) or _STOP.is_set() and status != 0:    # stopped: no record of an unfinished run
        _record(out_dir, [os.path.relpath(stamp, out_dir) + ".log"])
        raise KeyboardInterrupt
    rec["peak_memory_mb"] = round(usage.ru_maxrss / 1024) if usage else None     # Linux: ru_maxrss in KiB
    if status is None:
        rec["status"] = f"over budget ({budget:g} s)"
    elif status:
        with open(stamp + ".log") as f:
            lines = f.read().strip().splitlines() or [f"exit status {status}"]
        rec["status"] = f"failed: {lines[-1]}"
    else:
        with open(os.path.join(folder, "results.json")) as f:
            res = json.load(f)
        res.pop("partition", None)
        rec.update(res, status="ok")
    rec["process_s"] = time.perf_counter() - t
    _atomically(stamp, lambda tmp: write_json(tmp, rec))
    _record(out_dir, [os.path.relpath(p, out_dir) for p in (stamp, stamp + ".log", folder)])
    return rec


def _wait(proc, budget):
    """``(exit status, resource usage)`` of ``proc``, or ``(None, usage)`` after killing it at ``budget`` s."""
    end = time.monotonic() + budget
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage
        if time.monotonic() > end:
            proc.kill()
            return None, os.wait4(proc.pid, 0)[2]
        time.sleep(0.2)


def table_row(rec, weights, best):
    """One line of ``gset_all.csv`` from a graph's record; ``best``: the best known cut of the G-set graph the
    file holds (matched by content, :func:`_weights`), or None."""
    name, ok = rec["graph"], rec["status"] == "ok"
    row = dict.fromkeys(COLUMNS)
    row.update(graph=name, family=family(name, weights), weights=weights, best_known=best,
               chains=rec.get("chains", 32),
               pi_gnn=PI_GNN.get(name), sdp_rounding=SDP_ROUNDING.get(name), status=rec["status"],
               peak_memory_mb=rec.get("peak_memory_mb"))
    if ok:
        row.update(nodes=rec["nodes"], edges=rec["edges"], sdp=round(rec["sdp_value"], 2),
                   gw_expectation=round(rec["gw_expectation"], 1), best_of_1000=rec["gw_best_of_k"],
                   derandomised=rec["cut"], one_flip=rec["cut_polished"], sdp_seconds=round(rec["sdp_s"], 1),
                   derandomise_seconds=round(rec["optimize_s"], 1), one_flip_seconds=round(rec["polish_s"], 1),
                   tabu_seconds=rec["tabu_s"] and round(rec["tabu_s"], 1), seconds=round(rec["wall_s"], 1),
                   conditional_expectations=(rec.get("conditional_expectations") or {}).get("cut"),
                   conditional_seconds=(rec.get("conditional_expectations") or {}).get("time_s"))
        row["conditional_seconds"] = row["conditional_seconds"] and round(row["conditional_seconds"], 1)
        tabu = rec.get("cut_tabu")
        row.update(polished=rec["cut_polished"] if tabu is None else tabu,
                   polish="one-flip" if tabu is None else f"tabu {rec['tabu_flips_per_node']}")
        if row["best_known"]:
            for col in ("conditional_expectations", "derandomised", "one_flip", "polished"):
                row[f"{col}_pct"] = None if row[col] is None else round(100 * row[col] / row["best_known"], 2)
    return row


def _weights(path):
    """``(n, weights, best)``: the nodes of a graph file (read as main.py reads it), its weights (``1``, ``±1``,
    ``real ≥ 0`` or ``real``) and the best known cut of the G-set graph it holds, by content
    (:func:`graphs.gset_name`; None if none on record)."""
    graph, _, _ = read_graph_file(path)
    vals = set(graph[2].tolist())
    kind = ("1" if vals == {1.0} else "±1" if vals <= {1.0, -1.0} else "real ≥ 0" if min(vals) >= 0 else "real")
    return graph[0], kind, gset_name(graph_digest(*graph))[1]


def targets(rows):
    """The benchmark's targets, each ``(statement, met)``, over the graphs that ran; a missed one names its graphs."""
    done = [r for r in rows if r["status"] == "ok"]
    loose = [r for r in done if r["gw_expectation"] < r["sdp"] * (1 - 1e-6)]      # the SDP is not tight
    plain = [r for r in done if r["weights"] in NON_NEGATIVE]                       # Theorem 5.2's setting
    signed = [r for r in done if r["weights"] not in NON_NEGATIVE]

    def every(what, bad):
        names = ", ".join(r["graph"] for r in bad)
        return (what + (f" (not: {names})" if bad else ""), not bad)

    out = [(f"graphs run: {len(done)} of {len(rows)}", len(done) == len(rows)),
           every(f"derandomised (pathwise: Adam, the best of the chains; not Theorem 5.2's algorithm) >= GW "
                 f"expectation on every graph with non-negative weights ({len(plain)}; Theorem 5.2's setting)",
                 [r for r in plain if r["derandomised"] < r["gw_expectation"]]),
           every(f"derandomised >= GW expectation on every graph with negative weights ({len(signed)}; outside "
                 "Theorem 5.2: GW's guarantee needs w >= 0)",
                 [r for r in signed if r["derandomised"] < r["gw_expectation"]]),
           every(f"conditional expectations (Mahajan & Ramesh) >= GW expectation on every graph ({len(done)})",
                 [r for r in done if r.get("conditional_expectations") is not None
                  and r["conditional_expectations"] < r["gw_expectation"]]),
           every(f"derandomised >= best of 1000 on every graph where the SDP is not tight ({len(loose)})",
                 [r for r in loose if r["derandomised"] < r["best_of_1000"]])]
    means = {}
    for col in ("one_flip", "polished"):
        pct = [r[f"{col}_pct"] for r in done if r[f"{col}_pct"] is not None]
        means[col] = (sum(pct) / len(pct) if pct else float("nan")), bool(pct)
    polish = ", ".join(sorted({r["polish"] for r in done})) or "–"
    out += [(f"polished ({polish}) >= 99% of best known on average: {means['polished'][0]:.2f}% (one-flip "
             f"baseline: {means['one_flip'][0]:.2f}%)" if means["polished"][1] else
             "polished >= 99% of best known on average: no graph with a best known cut ran (none is a G-set graph "
             "by content)", means["polished"][1] and means["polished"][0] >= 99.0)]
    for col, label in (("polished", f"polished ({polish})"), ("one_flip", "one-flip baseline")):
        out.append(every(f"{label} >= the published PI-GNN cut on every graph where one exists",
                         [r for r in done if r["pi_gnn"] is not None and r[col] < r["pi_gnn"]]))
    return out


def _g(x):
    return "–" if x is None else f"{x:g}"


def markdown(rows, wall, reused=0):
    """``gset_all.md``: the table (cuts, % of best known, published cuts, times) and the targets."""
    head = ("| graph | family | nodes | edges | SDP | GW exp. | best of 1000 | cond. exp. | derandomised | one-flip "
            "| polished | best known | % cond. exp. / derand. / one-flip / polished | PI-GNN | SDP+rounding "
            "| s: SDP / cond. exp. / derand. / one-flip / tabu |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['graph']} | {r['family']} | | | | | | | | | | {r['best_known'] or '–'} | "
                         f"{r['status']} | | | |")
            continue
        pct = " / ".join(f"{r[c]:.2f}" if r[c] is not None else "–" for c in (
            "conditional_expectations_pct", "derandomised_pct", "one_flip_pct", "polished_pct"))
        secs = " / ".join(f"{r[c]:.0f}" if r[c] is not None else "–" for c in (
            "sdp_seconds", "conditional_seconds", "derandomise_seconds", "one_flip_seconds", "tabu_seconds"))
        lines.append(f"| {r['graph']} | {r['family']} | {r['nodes']} | {r['edges']} | {r['sdp']:.2f} | "
                     f"{r['gw_expectation']:.1f} | {r['best_of_1000']:g} | {_g(r['conditional_expectations'])} | "
                     f"{r['derandomised']:g} | {r['one_flip']:g} | {r['polished']:g} | "
                     f"{r['best_known'] or '–'} | {pct} | {r['pi_gnn'] or '–'} | {r['sdp_rounding'] or '–'} | "
                     f"{secs} |")
    unknown = ", ".join(r["graph"] for r in rows if r["best_known"] is None)
    if unknown:
        lines.append(f"\nbest known –: the file holds no G-set graph on record (matched by content: the digest "
                     f"column of data/gset/best_known.csv): {unknown}")
    checks = "\n".join(f"- [{'x' if ok else ' '}] {what}" for what, ok in targets(rows))
    return "\n".join(lines) + f"\n\n{checks}\n\nwall-clock: {wall:.0f} s ({len(rows) - reused} graphs run, {reused} " \
                                   "from earlier records)\n"


def write_outputs(out_dir, rows, text):
    """``gset_all.csv``, ``gset_all.md`` (``text``), the figure, and their record in OUT's manifest: all or none
    (Ctrl-C and SIGTERM held meanwhile), so that a stopped benchmark resumes."""
    from MAXCUT.plot import plot_gset_all         # matplotlib loads once take_signals has chosen Agg

    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)

    def write_md(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    figure = plot_gset_all(rows)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        _atomically(os.path.join(out_dir, "gset_all.csv"), write_csv)
        _atomically(os.path.join(out_dir, "gset_all.md"), write_md)
        save_figure(figure, os.path.join(out_dir, "gset_all"))
        _record(out_dir, ["gset_all.csv", "gset_all.md", "gset_all.png", "gset_all.pdf"])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def run(gset_dir, out_dir, only=None, budget=1800.0, jobs=2, tabu=TABU, echo=print):
    """The benchmark: every graph (``jobs`` at a time), then the CSV, the table and the figure in ``out_dir``.
    Returns the rows."""
    files, skipped = graph_files(gset_dir, only)
    if skipped:
        echo(f"skipped (not regular files, left unopened): {', '.join(skipped)}")
    weights = {}
    for name, path in files:               # every file read before any runs: a bad one is bad input
        try:
            weights[name] = _weights(path)
        except (ValueError, OSError) as e:
            raise BenchmarkError(str(e)) from None
    check_out_dir(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
        add_to_manifest(out_dir, [], WRITER)
    except OSError as e:
        raise BenchmarkError(f"--out-dir {out_dir}: cannot write there ({e.strerror or e})") from None
    _STOP.clear()
    t, reused = time.perf_counter(), []

    def one(item):
        name, path = item
        n, w, best = weights[name]
        rec = run_graph(name, path, out_dir, budget, tabu, chains_for(n))
        reused.append(rec.get("reused", False))
        row = table_row(rec, w, best)
        echo(f"{name}: {row['status']}" + (f", derandomised {row['derandomised']:g}, one-flip {row['one_flip']:g}, "
                                           f"polished {row['polished']:g} of "
                                           f"{row['best_known'] or 'no best known (not a G-set graph)'}, "
                                           f"{row['seconds']:.0f} s"
                                           if row["status"] == "ok" else ""))
        return row
    pool = ThreadPoolExecutor(max_workers=jobs)      # each graph runs in its own process
    try:
        rows = list(pool.map(one, files))
    except BaseException:                  # Ctrl-C, SIGTERM: the graphs' processes end too, no record is kept
        with _LOCK:
            _STOP.set()
            for proc in _RUNNING:
                proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    text = markdown(rows, time.perf_counter() - t, sum(reused))
    write_outputs(out_dir, rows, text)
    echo(text)
    return rows
