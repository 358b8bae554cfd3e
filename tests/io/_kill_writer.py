"""Write output steps forever, announcing each one after it is flushed; killed by the test.

Usage: python _kill_writer.py RESULTS.h5
Step k holds field "c" = base + 1000 k and "d" = -k, metric "m" = 0.5 k, at time 0.25 k s.
"""

import sys

import numpy as np

from nanosim.io import ResultsWriter

SHAPE_ZYX = (4, 5, 6)


def expected_fields(k: int) -> dict[str, np.ndarray]:
    base = np.arange(np.prod(SHAPE_ZYX), dtype=np.float32).reshape(SHAPE_ZYX)
    return {"c": base + 1000.0 * k, "d": np.full(SHAPE_ZYX, -float(k), dtype=np.float32)}


def region() -> np.ndarray:
    return (np.arange(np.prod(SHAPE_ZYX)).reshape(SHAPE_ZYX) % 3).astype(np.uint8)


def main(path: str) -> None:
    writer = ResultsWriter(
        path,
        shape_zyx=SHAPE_ZYX,
        voxel_size_m=1e-5,
        origin_m=(0.0, 0.0, 0.0),
        field_names=["c", "d"],
        dtype="float32",
        scenario_text="kill test",
        scenario_json="{}",
        provenance={"backend": "numpy", "seed": 0},
    )
    writer.write_static("region", region())
    for k in range(1_000_000):
        writer.write_step(0.25 * k, expected_fields(k), {"m": 0.5 * k})
        print(k, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
