"""NeuralNetworks benchmark: the batched claims grid against running the same (row, seed) runs one by one,
and the Fig. 3 training loop's speed.

    python NeuralNetworks/benchmark.py [--steps 1000] [--seeds 3]

Both sides run the same rows, seeds and steps (every run draws its data from its own generator, so the
batched and one-by-one results agree, which the script also checks). Wall-clock seconds on this machine.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from NeuralNetworks.claims import ROWS, run_claims  # noqa: E402
from NeuralNetworks.model import Teacher, init_student, make_subspace  # noqa: E402
from NeuralNetworks.train import TrainConfig, train  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="steps per run (the default grid uses 10 000)")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    cpu, seeds = torch.device("cpu"), list(range(args.seeds))
    t = time.perf_counter()
    batched = run_claims(seeds, 20, 2, args.steps, 1.0, cpu)
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    single = [run_claims([s], 20, 2, args.steps, 1.0, cpu, rows=[r])[0] for r in ROWS for s in seeds]
    t_single = time.perf_counter() - t
    diff = max(float(np.max(np.abs(b["ratio_final"][i] - single[j * args.seeds + i]["ratio_final"])))
               for j, b in enumerate(batched) for i in range(args.seeds))
    print(f"claims grid, {len(ROWS)} rows x {args.seeds} seeds x {args.steps} steps, threads {torch.get_num_threads()}:")
    print(f"  batched by architecture: {t_batched:.1f} s; one run at a time: {t_single:.1f} s; "
          f"speed-up {t_single / t_batched:.1f}x; largest difference in final ||W_perp||/||W||: {diff:.1e}")
    g = torch.Generator().manual_seed(0)
    s = init_student(1, 2, 1000, 1, g)
    t = time.perf_counter()
    train(s, Teacher(make_subspace(2, 1, g)), TrainConfig(steps=20_000), g, progress=False)
    print(f"Fig. 3 training loop (20 000 steps, width 1000, closed-form backward): {time.perf_counter() - t:.1f} s "
          f"(the authors' loop measured 10.6 s on this machine when this was written)")


if __name__ == "__main__":
    main()
