"""The tables and CSV files the experiments write (claims.md/.csv, sosp.md, sosp_claims.md): formatting only,
from the results the science modules return."""
import csv
import io

import numpy as np

from NeuralNetworks import claims


def _ms(a, fmt="{:.3f}"):
    return f"{fmt.format(np.mean(a))} ± {fmt.format(np.std(a))}"


def claims_rows(results, k):
    """Rows for claims.csv / claims.md: strings keyed by column."""
    out = []
    for res in results:
        r = res["row"]
        out.append({"row": r.name, "claim": r.claim, "paper": r.statement,
                    "ratio_init": _ms(res["ratio_init"]), "ratio_final": _ms(res["ratio_final"]),
                    "perp_final": _ms(res["perp_final"], "{:.2f}"), "null": _ms(res["null"], "{:.2f}"),
                    "stable_rank": _ms(res["stable_rank"], "{:.2f}") + f" (k = {k})",
                    "test_mse": _ms(res["test_mse"], "{:.4f}"), "verdict": claims.verdict(res)})
    return out


COLUMNS = [("row", "row"), ("claim", "claim"), ("paper", "paper's statement"),
           ("ratio_init", "‖W⊥‖/‖W‖ init"), ("ratio_final", "‖W⊥‖/‖W‖ end"), ("perp_final", "‖W⊥‖_F end"),
           ("null", "null: same optimiser, loss gradient on W⊥ removed"), ("stable_rank", "stable rank"),
           ("test_mse", "test MSE"),
           ("verdict", "what drives the collapse")]


def claims_table(rows):
    """``claims.md``: the rows of :func:`claims_rows` as a markdown table."""
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def claims_csv(results):
    """``claims.csv``: one line per run (row, seed)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row", "claim", "seed_index", "ratio_init", "ratio_final", "perp_init", "perp_final",
                "null", "null_simulated", "null_kicks", "stable_rank", "test_mse",
                "verdict"])
    for res in results:
        for i in range(len(res["ratio_init"])):
            w.writerow([res["row"].name, res["row"].claim, i, f"{res['ratio_init'][i]:.6g}",
                        f"{res['ratio_final'][i]:.6g}", f"{res['perp_init'][i]:.6g}", f"{res['perp_final'][i]:.6g}",
                        f"{res['null'][i]:.6g}", bool(res["null_simulated"][i]), int(res["null_kicks"][i]),
                        f"{res['stable_rank'][i]:.6g}", f"{res['test_mse'][i]:.6g}", claims.verdict(res)])
    return buf.getvalue()


def sosp_table(points, pgd, grid) -> str:
    """The table of ``sosp.md``: per λ of the grid, over the seeds' *certified* points (type ``minimum``; how many
    of the λ's points that is), the worst (largest) ``‖W⊥‖/‖W‖`` with the bias trained and frozen, the largest
    ‖∇g‖ (its rule and the check rule), the smallest λ_min(∇²g), and the PGD runs (first seed)."""
    head = ("| λ | certified | ‖W⊥‖/‖W‖ bias trained (max over seeds) | bias frozen (max) | max ‖∇g‖ (check rule) "
            "| min λ_min(∇²g) | PGD after the last step: trained / frozen | PGD steps to collapse (trained) "
            "| regulariser alone |")
    lines = [head, "|" + "---|" * 9]
    def f(v, spec=".1e"):
        return "–" if v is None else format(v, spec)
    for lam in grid:
        pts = [p for p in points if p["lam"] == lam]
        cert = [p for p in pts if p["type"] == "minimum"]
        tr, fr = (max((p["perp_ratio"] for p in cert if p["bias"] == b), default=None) for b in ("trained", "frozen"))
        runs = {r["bias"]: r for r in pgd if r["lam"] == lam}
        t, fz = runs.get("trained"), runs.get("frozen")
        steps = "–" if t is None or t["steps_to_collapse"] is None else str(t["steps_to_collapse"])
        dec = "–" if t is None or t["decay_only_steps"] is None else str(t["decay_only_steps"])
        end = "–" if t is None else f"{t['ratio_end']:.3g} / {fz['ratio_end']:.3g}"
        grad = f"{f(max((p['grad_norm'] for p in cert), default=None))} " \
               f"({f(max((p['grad_norm_fine'] for p in cert), default=None))})"
        lines.append(f"| {lam:.3g} | {len(cert)}/{len(pts)} | {f(tr)} | {f(fr)} | {grad} | "
                     f"{f(min((p['lam_min_hessian'] for p in cert), default=None))} | {end} | {steps} | {dec} |")
    return "\n".join(lines) + "\n"


def sosp_claims_table(rows) -> str:
    """``sosp_claims.md``: the table of ``variants.summary_rows``."""
    def f(v):
        return "–" if v is None else f"{v:.1e}"
    lines = ["| row | claim | ‖W⊥‖/‖W‖ bias trained (max, all points) | bias frozen (max, all points) | max ‖∇g‖ "
             "| min λ_min(∇²g) | bound tightness (max, trained) | certified | verdict |", "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['row']} | {r['claim']} | {f(r['trained_max_ratio'])} | {f(r['frozen_max_ratio'])} | "
                     f"{f(r['max_grad_norm'])} | {f(r['min_lam_min_hessian'])} | {f(r['max_tightness'])} | "
                     f"{r['certified']}/{r['points']} | {r['verdict']} |")
    return "\n".join(lines) + "\n"
