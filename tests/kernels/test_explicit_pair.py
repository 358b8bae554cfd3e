"""Two uniform explicit steps in one pass (temporal blocking): bitwise two single steps."""

import itertools

import numpy as np
import pytest

from nanosim.backends import get_backend
from nanosim.geometry import Grid
from nanosim.kernels import explicit as E
from nanosim.transport import TransportOperator
from nanosim.transport import operator as operator_module

ARGS = (2e-10, 0.05)  # D (m²/s), k (1/s)
H, DT = 5e-6, 0.01  # voxel (m), step (s): α = D dt/h² = 0.08, stable


def _two_singles(c, bck, bcv, total_in=None):
    """Two single steps as the operator chains them: the second takes the first's total."""
    tmp, out = np.zeros_like(c), np.zeros_like(c)
    la, lb = np.zeros(6), np.zeros(6)
    total = E.numba_uniform_step(c, tmp, *ARGS, bck, bcv, H, DT, la, total_in=total_in)
    total = E.numba_uniform_step(tmp, out, *ARGS, bck, bcv, H, DT, lb, total_in=total)
    return out, la, lb, total


# odd sizes, one-voxel axes, fewer planes than the chunks' halos, several chunks (64 planes)
SHAPES = [(40, 33, 17), (1, 20, 20), (2, 5, 7), (3, 4, 1), (17, 1, 9), (64, 24, 24), (9, 16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pair_is_bitwise_two_single_steps(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    for kx, ky in itertools.product((0, 1), (0, 1)):  # no-flux or periodic x and y; no-flux z
        c = rng.random(shape).astype(dtype)
        bck, bcv = np.array([kx, ky, 0]), np.zeros(3)
        ref, la, lb, total = _two_singles(c, bck, bcv)
        out, pa, pb = np.zeros_like(c), np.zeros(6), np.zeros(6)
        assert E.numba_uniform_pair_step(c, out, *ARGS, bck, bcv, H, DT, pa, pb) == total
        assert np.array_equal(out, ref), (kx, ky)
        assert np.array_equal(pa, la) and np.array_equal(pb, lb), (kx, ky)
        # given the input's total (a later sub-step of the operator), the same once more
        given = float(np.sum(c, dtype=np.float64)) * 1.25
        ref, la, lb, total = _two_singles(c, bck, bcv, total_in=given)
        out, pa, pb = np.zeros_like(c), np.zeros(6), np.zeros(6)
        assert E.numba_uniform_pair_step(c, out, *ARGS, bck, bcv, H, DT, pa, pb, total_in=given) == total
        assert np.array_equal(out, ref) and np.array_equal(pb, lb), (kx, ky)
        assert np.array_equal(pa, la), (kx, ky)
        # the loss is k dt (in the field's precision, as the kernel applies it) times the total given
        assert pa[2] == float(dtype(ARGS[1] * DT)) * given, (kx, ky)


def test_pair_works_with_one_thread_and_many_chunks():
    import numba

    c = np.random.default_rng(3).random((48, 10, 12))
    bck, bcv = np.zeros(3, np.int64), np.zeros(3)
    ref, la, lb, _ = _two_singles(c, bck, bcv)
    old = numba.get_num_threads()
    try:
        for threads in (1, old):
            numba.set_num_threads(threads)
            out, pa, pb = np.zeros_like(c), np.zeros(6), np.zeros(6)
            E.numba_uniform_pair_step(c, out, *ARGS, bck, bcv, H, DT, pa, pb)
            assert np.array_equal(out, ref) and np.array_equal(pa, la) and np.array_equal(pb, lb)
    finally:
        numba.set_num_threads(old)


@pytest.mark.parametrize("bc", [(2, 0, 0), (0, 2, 0), (0, 0, 2), (0, 0, 1)])
def test_walls_the_pair_cannot_take_are_refused(bc):
    assert not E.pair_supported(bc)
    c = np.ones((4, 4, 4))
    with pytest.raises(ValueError, match="numba_uniform_step"):
        E.numba_uniform_pair_step(c, np.zeros_like(c), *ARGS, np.array(bc), np.zeros(3), H, DT,
                                  np.zeros(6), np.zeros(6))


@pytest.mark.parametrize("bc", [(0, 0, 0), (1, 1, 0), (0, 0, 1), (2, 0, 0)])
@pytest.mark.parametrize("substeps", [1, 2, 3, 5])
def test_operator_with_pairs_equals_single_sub_steps(bc, substeps, monkeypatch):
    # the operator uses pairs where the walls allow (on large fields: here every field): the same
    # fields and ledger as single steps
    monkeypatch.setattr(operator_module, "PAIR_MIN_BYTES", 0)
    grid = Grid((12, 10, 16), H, (0.0, 0.0, 0.0))
    region = np.zeros(grid.shape_zyx, np.uint8)

    def make():
        op = TransportOperator(get_backend("numba"), grid, region, [ARGS[0]] * 3, [ARGS[1]] * 3,
                               [0.0] * 3, [0.0] * 3, list(bc), [0.5, 0.0, 0.0], np.float64)
        op.c[...] = np.random.default_rng(7).random(grid.shape_zyx)
        return op

    paired, single = make(), make()
    assert (paired._pair_fn is not None) == E.pair_supported(bc)
    single._pair_fn = None
    dt = 0.99 * substeps * 0.8 * single.explicit_dt_limit()
    assert paired.substeps(dt) == substeps
    for _ in range(3):
        la = paired.step(dt, 0.0).copy()
        lb = single.step(dt, 0.0).copy()
        assert np.array_equal(la, lb)
        assert np.array_equal(np.asarray(paired.c), np.asarray(single.c))


def test_small_fields_take_single_steps():
    grid = Grid((8, 8, 8), H, (0.0, 0.0, 0.0))
    op = TransportOperator(get_backend("numba"), grid, np.zeros(grid.shape_zyx, np.uint8), [ARGS[0]] * 3,
                           [ARGS[1]] * 3, [0.0] * 3, [0.0] * 3, [0, 0, 0], [0.0] * 3, np.float64)
    assert op._pair_fn is None  # 4 KiB: in cache, where one step per pass is as fast


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_given_its_input_total_books_what_one_summing_its_input_books(dtype):
    # the operator hands each sub-step the total the previous one returned instead of summing the
    # input again: the ledger must not depend on which way the total was found
    c = np.random.default_rng(7).random((20, 18, 33)).astype(dtype)
    bck, bcv = np.array([0, 1, 0]), np.zeros(3)
    tmp, out_a, out_b = np.zeros_like(c), np.zeros_like(c), np.zeros_like(c)
    total = E.numba_uniform_step(c, tmp, *ARGS, bck, bcv, H, DT, np.zeros(6))
    summed, given = np.zeros(6), np.zeros(6)
    E.numba_uniform_step(tmp, out_a, *ARGS, bck, bcv, H, DT, summed)
    E.numba_uniform_step(tmp, out_b, *ARGS, bck, bcv, H, DT, given, total_in=total)
    assert np.array_equal(out_a, out_b)
    # both totals are float64 sums of the same values in the same row order: equal to round-off
    # of the float64 sum (n·ε relative for n = 11 880 terms is a bound; measured: bitwise)
    np.testing.assert_allclose(given, summed, rtol=c.size * np.finfo(np.float64).eps, atol=0)
    # and the total handed over is the float64 sum of the field it describes
    np.testing.assert_allclose(total, np.sum(tmp, dtype=np.float64), rtol=c.size * np.finfo(np.float64).eps)
