r"""Pointwise transport terms shared by the explicit step on every backend.

The per-axis face exchange of one voxel (see :mod:`nanosim.kernels.physics` for the flux
convention) is written once here, on flat arrays, and compiled for CPU and CUDA. Flat indexing
keeps one code path for the three axes: voxel ``idx`` has coordinate ``q`` along an axis of
length ``n`` and stride ``s`` (x: 1, y: nx, z: nx·ny); ``a`` is the axis number (x 0, y 1, z 2)
selecting the face-velocity component ``uf[a]``.

Domain boundaries per axis (``kind``): 0 no-flux (zero flux through the wall), 1 periodic
(wrap-around neighbour), 2 fixed value ``v`` (mirror ghost: diffusive flux ``2 D_i (v − c)/h``,
convective inflow carries ``v``, outflow carries ``c``). The lower wall takes the velocity of
the voxel's own +face (uniform-flow case); on a no-flux wall the flux is zero whatever ``u``.
"""

from __future__ import annotations

from ._compile import pointwise
from .physics import bound_rate, face_diffusivity, face_flux, free_rate

# Ledger slots (float64, amounts in mol/m³ × voxels; multiply by the voxel volume for mol).
LEDGER_BOUNDARY = 0  #: inflow through fixed-value domain faces
LEDGER_VESSEL = 1  #: supply from fixed-concentration (vessel) voxels
LEDGER_LOSS = 2  #: first-order loss (uptake + decay)
LEDGER_EXCHANGE = 3  #: wall exchange into tissue, ps·(cp − c)
LEDGER_SOURCE = 4  #: volumetric sources
LEDGER_TOTAL = 5  #: Σ(c + cb) after the step
LEDGER_SIZE = 6


@pointwise
def axis_rate(cf, reg, dtab, uf, has_u, idx, q, n, s, a, kind, v, inv_h):
    """Net transport rate into voxel ``idx`` along one axis, and the part through the domain wall.

    Returns ``(rate, boundary_rate)`` in mol m⁻³ s⁻¹.
    """
    ci = cf[idx]
    di = dtab[reg[idx]]
    zero = 0.0 * ci
    f_in = zero
    f_out = zero
    bnd = zero
    # lower face
    if q > 0:
        j = idx - s
        ul = uf[a, j] if has_u else zero
        f_in = face_flux(cf[j], ci, face_diffusivity(dtab[reg[j]], di), ul, inv_h)
    elif kind == 1:
        j = idx + (n - 1) * s
        ul = uf[a, j] if has_u else zero
        f_in = face_flux(cf[j], ci, face_diffusivity(dtab[reg[j]], di), ul, inv_h)
    elif kind == 2:
        ul = uf[a, idx] if has_u else zero
        f_in = face_flux(v, ci, 2.0 * di, ul, inv_h)
        bnd += f_in
    # upper face
    if q < n - 1:
        j = idx + s
        uu = uf[a, idx] if has_u else zero
        f_out = face_flux(ci, cf[j], face_diffusivity(di, dtab[reg[j]]), uu, inv_h)
    elif kind == 1:
        j = idx - (n - 1) * s
        uu = uf[a, idx] if has_u else zero
        f_out = face_flux(ci, cf[j], face_diffusivity(di, dtab[reg[j]]), uu, inv_h)
    elif kind == 2:
        uu = uf[a, idx] if has_u else zero
        f_out = face_flux(ci, v, 2.0 * di, uu, inv_h)
        bnd -= f_out
    return (f_in - f_out) * inv_h, bnd * inv_h


@pointwise
def interior_face_rate(c_lo, c0, c_hi, f_lo, f_hi, u_lo, u0, inv_h):
    """Net transport rate (mol m⁻³ s⁻¹) into a voxel from its two neighbours along one axis.

    ``f_lo``, ``f_hi`` are the face diffusivities (m²/s) of its lower and upper face
    (:func:`~nanosim.kernels.physics.face_diffusivity`; a kernel may take them from a table of
    region pairs), ``u_lo`` the velocity on the lower face, ``u0`` on the voxel's own upper face.
    Same arithmetic as :func:`axis_rate` away from the domain walls.
    """
    f_in = face_flux(c_lo, c0, f_lo, u_lo, inv_h)
    f_out = face_flux(c0, c_hi, f_hi, u0, inv_h)
    return (f_in - f_out) * inv_h


@pointwise
def explicit_voxel_update(ci, bi, t, k, kon, koff, p, cp, s, dt):
    """Forward-Euler update of one tissue voxel with transport rate ``t`` (mol m⁻³ s⁻¹).

    Returns ``(c', cb', loss, exchange, source)``: the new free and bound values and the step's
    ledger terms ``dt·k·c``, ``dt·ps·(cp − c)``, ``dt·s`` (mol/m³).
    """
    cn = ci + dt * (t + free_rate(ci, bi, k, kon, koff, p, cp, s))
    bn = bi + dt * bound_rate(ci, bi, kon, koff)
    return cn, bn, dt * k * ci, dt * p * (cp - ci), dt * s


@pointwise
def uniform_update(cc, s6, alpha, beta):
    """Explicit update with uniform diffusivity and loss: ``β c + α Σ₆ c_nb``.

    ``α = D dt / h²`` and ``β = 1 − 6α − k dt`` (precomputed in the field's precision, so that a
    float32 field is updated in float32 arithmetic).
    """
    return beta * cc + alpha * s6
