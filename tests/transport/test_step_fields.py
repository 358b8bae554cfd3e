"""TransportOperator.step_fields: one operator stepping fields it does not own (several species)."""

import numpy as np
import pytest

from test_operator import make_op  # same directory


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_step_fields_is_the_operator_stepping_its_own_fields(scheme):
    """Two species stepped in turn by one operator equal, bitwise, each stepped by an operator of
    its own (explicit: an odd and an even number of sub-steps, so the result lands in the spare
    arrays one time and not the other); fixed-value walls per species through set_boundary_values."""
    rng = np.random.default_rng(3)
    shared = make_op((12, 10, 8), 5e-6, scheme=scheme, bc=(2, 0, 0), bcv=(1.0, 0, 0), k=1e-3)
    fields = [(rng.random(shared.c.shape), np.zeros(shared.c.shape)) for _ in range(2)]
    own = []
    for s, (c, cb) in enumerate(fields):
        op = make_op((12, 10, 8), 5e-6, scheme=scheme, bc=(2, 0, 0), bcv=(1.0 + s, 0, 0), k=1e-3)
        op.c[...], op.cb[...] = c, cb
        own.append(op)
    lim = shared.explicit_dt_limit()
    for dt in (0.5 * lim, 2.5 * lim, 1.7 * lim):
        for s, (c, cb) in enumerate(fields):
            shared.set_boundary_values((1.0 + s, 0.0, 0.0))
            led = shared.step_fields(c, cb, dt, 0.0)
            np.testing.assert_array_equal(led, own[s].step(dt, 0.0))
    for (c, cb), op in zip(fields, own):
        np.testing.assert_array_equal(c, op.c)
        np.testing.assert_array_equal(cb, op.cb)
