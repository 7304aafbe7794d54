"""Regenerate the README's gallery: run each figure's command (unless its results already exist, or with
``--rerun`` always) and write a small copy of every figure to ``docs/``.

    python docs/gallery.py [--rerun] [NAME ...]      (NAME: only these images, e.g. fig7_distortion)

The sosp runs take about 3 minutes and 1 minute, the claims grid 2.5 minutes, G1 20 s; the others seconds.
The three experiment folders are run as a user would, each through its own main.py.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
WIDTH = 560    # pixels of a gallery image

# (gallery name, the command's arguments, the figure it writes, relative to the project root)
FIGURES = [
    ("fig3_weights", ["NeuralNetworks/main.py"], "NeuralNetworks/results/fig3/fig3_weights.png"),
    ("fig3_perp", ["NeuralNetworks/main.py"], "NeuralNetworks/results/fig3/fig3_perp.png"),
    ("fig2_bias", ["NeuralNetworks/main.py", "--experiment", "fig2"], "NeuralNetworks/results/fig2/fig2_bias.png"),
    ("sosp", ["NeuralNetworks/main.py", "--experiment", "sosp"], "NeuralNetworks/results/sosp/sosp.png"),
    ("sosp_bias", ["NeuralNetworks/main.py", "--experiment", "sosp", "--width", "200", "--a-init", "constant",
                   "--offset", "1", "--out-dir", "NeuralNetworks/results/sosp_offset"],
     "NeuralNetworks/results/sosp_offset/sosp_bias.png"),
    ("claims_end", ["NeuralNetworks/main.py", "--experiment", "claims"],
     "NeuralNetworks/results/claims/claims_end.png"),
    ("gset_cut", ["MAXCUT/main.py", "--graph", "MAXCUT/data/gset/G1.txt", "--polish"],
     "MAXCUT/results/derandomise-G1-596858f5/gset_cut.png"),
    ("fig5_cut", ["MAXCUT/main.py"], "MAXCUT/results/fig5/fig5_cut.png"),
    ("fig7_distortion", ["JohnsonLindenstrauss/main.py"], "JohnsonLindenstrauss/results/fig7/fig7_distortion.png"),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rerun", action="store_true", help="run every command even where its figure exists")
    p.add_argument("names", nargs="*", help="only these gallery images (default: all)")
    args = p.parse_args(argv)
    unknown = set(args.names) - {name for name, _, _ in FIGURES}
    if unknown:
        p.error(f"no gallery image named {sorted(unknown)[0]!r}; choose from "
                + ", ".join(n for n, _, _ in FIGURES))
    from PIL import Image
    chosen = [f for f in FIGURES if not args.names or f[0] in args.names]
    done = set()
    for name, cmd, figure in chosen:       # every run first: a run made after docs/ changed would be 'dirty'
        if (args.rerun or not os.path.isfile(os.path.join(ROOT, figure))) and tuple(cmd) not in done:
            print("running: python " + " ".join(cmd), flush=True)
            subprocess.run([sys.executable, *cmd, "--no-progress"], cwd=ROOT, check=True)
            done.add(tuple(cmd))
    for name, cmd, figure in chosen:
        with Image.open(os.path.join(ROOT, figure)) as im:
            small = im.convert("RGB")
            small.thumbnail((WIDTH, WIDTH * 2))
            small.save(os.path.join(DOCS, f"{name}.png"), optimize=True)
        print(f"docs/{name}.png <- {figure}")


if __name__ == "__main__":
    main()
