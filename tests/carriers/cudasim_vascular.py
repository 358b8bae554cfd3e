"""Run the CUDA intravascular packet kernel in Numba's CUDA simulator and compare it with Numba.

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/carriers/test_vascular.py (the
variable is read when ``numba.cuda`` is first imported); prints one line per case and exits
non-zero on a mismatch.

Both backends evaluate the same pointwise function (``vascular.move_packet``) on the same Philox
streams in float64: segments, states, positions and the counts must be equal exactly (the
simulator runs plain Python, so not even FMA contraction differs). Weights go through ``exp``
(Python's ``math.exp`` vs LLVM's): a few ulp per leg, so 64 ulp of the weight is allowed. The
per-segment ledger is summed in another order (thread rows vs atomics): 1e-12 of the largest
entry, far below any physical effect.
"""

import sys

import numpy as np

from nanosim.flow import solve_flow
from nanosim.kernels import vascular, vascular_cuda
from nanosim.kernels.compartments import LODGED, TISSUE, VESSEL
from nanosim.vasculature.generate import generate_liver_tumour
from nanosim.vasculature.network import VesselNetwork

N_PACKETS = 256
N_STEPS = 3


def tumour_case(rs):
    net = generate_liver_tumour()
    graph = vascular.build_graph(net, solve_flow(net))
    n = N_PACKETS
    seg = rs.integers(0, graph.n_segments, n)
    s = rs.random(n) * graph.seg_length_m[seg]
    state = rs.choice(np.array([VESSEL, VESSEL, VESSEL, TISSUE, LODGED], np.uint8), n)
    radius = np.where(rs.random(n) < 0.3, 6e-6, 0.0)  # some spheres wider than sinusoids
    rate = rs.random(graph.n_segments) * 2e-2
    return graph, seg, s, state, radius, rate, 4.0, vascular.MAX_CROSSINGS


def loop_case(rs):
    """A ring 0→1→2→0 (no exit: capped packets) fed from node 3, plus a node (5) whose only
    exit is stagnant (stuck packets) and a plain outlet (6), from prescribed flows."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [2, 0, 0], [3, 0, 0], [2, 1, 0],
                    [4, 0, 0]], float) * 1e-4
    nodes = np.array([[0, 1], [1, 2], [2, 0], [3, 0], [1, 4], [4, 5], [5, 7], [4, 6]])
    net = VesselNetwork(node_pos_m=pos, seg_nodes=nodes, seg_radius_m=np.full(8, 5e-6),
                        bc_nodes=np.array([3, 6]), bc_kind=np.zeros(2), bc_value=np.array([2e3, 1e3]))
    q = np.array([3.0, 2.0, 2.0, 1.0, 1.0, 0.5, 0.0, 0.5]) * 1e-13
    graph = vascular.build_graph(net, q)
    n = N_PACKETS
    seg = rs.integers(0, 6, n)
    s = rs.random(n) * graph.seg_length_m[seg]
    state = np.full(n, VESSEL, np.uint8)
    return graph, seg, s, state, None, np.full(8, 1e-2), 50.0, 9


def run(traverse, graph, seg, s, state, radius, rate, dt, max_cross, ids):
    arrays = [seg.copy(), s.copy(), np.ones(len(seg)), state.copy(), ids]
    ledger = np.zeros(graph.n_segments)
    totals = [traverse(*arrays, radius, 7 + k, dt_s=dt, seed=-3, graph=graph, rate_per_s=rate,
                       extravasated=ledger, max_crossings=max_cross) for k in range(N_STEPS)]
    return arrays, ledger, totals


def main():
    rs = np.random.default_rng(21)
    ok = True
    for name, case in (("liver tumour", tumour_case), ("ring, stagnant exit, cap", loop_case)):
        graph, seg, s, state, radius, rate, dt, max_cross = case(rs)
        ids = rs.choice(2**40, len(seg), replace=False).astype(np.int64)
        a, la, ta = run(vascular.numba_traverse, graph, seg, s, state, radius, rate, dt, max_cross, ids)
        b, lb, tb = run(vascular_cuda.traverse, graph, seg, s, state, radius, rate, dt, max_cross, ids)
        same = all(np.array_equal(a[k], b[k]) for k in (0, 1, 3))
        werr = float(np.max(np.abs(a[2] - b[2]) / a[2]))
        lerr = float(np.abs(la - lb).max() / max(la.max(), 1e-300))
        counts = all(x[key] == y[key] for x, y in zip(ta, tb) for key in vascular.TOTALS[1:])
        exits = all(abs(x["exited_weight"] - y["exited_weight"]) <= 1e-12 * max(x["exited_weight"], 1.0)
                    for x, y in zip(ta, tb))
        busy = {key: sum(t[key] for t in ta) for key in vascular.TOTALS}
        good = same and werr <= 64 * np.finfo(float).eps and lerr <= 1e-12 and counts and exits
        print(f"{name}: paths equal {same}, max rel weight diff {werr:.1e}, ledger diff {lerr:.1e}, "
              f"totals equal {counts and exits}, numba totals {busy}", "ok" if good else "MISMATCH")
        ok &= bool(good)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
