"""Save checkpoints forever, announcing each one after save_checkpoint returns.

Usage: python _kill_checkpointer.py CHECKPOINT.h5
Checkpoint k holds array "x" = arange(N) + k and attrs {"k": k}; N is large enough that a
kill often lands in the middle of a write.
"""

import sys

import numpy as np

from nanosim.io import save_checkpoint

N = 200_000


def main(path: str) -> None:
    base = np.arange(N, dtype=np.float64)
    for k in range(1_000_000):
        save_checkpoint(path, {"x": base + k, "k": np.array(k)}, {"k": k})
        print(k, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
