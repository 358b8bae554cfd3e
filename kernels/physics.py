r"""Pointwise physics of transport on the voxel grid (finite volumes, cell-centred).

A concentration ``c`` (mol/m³) in voxel ``a`` exchanges with neighbour ``b`` through their
shared face. The net flux per unit area from ``a`` to ``b`` (mol m⁻² s⁻¹) is

.. math:: F_{ab} = D_f \frac{c_a - c_b}{h} + u^+_f c_a - u^-_f c_b,

with the face diffusivity ``D_f`` the harmonic mean of the two voxel diffusivities (exact for a
layered medium), ``u_f`` the normal velocity on the face (m/s, positive from ``a`` to ``b``),
``u⁺ = max(u, 0)``, ``u⁻ = max(−u, 0)`` (first-order upwind). The rate of change of ``c`` in a
voxel is ``−Σ F / h`` over its six faces plus the local reactions

.. math::

    \dot c   = -k c + \frac{PS}{V} (c_p - c) + s - k_{on} c + k_{off} c_b,\qquad
    \dot c_b = k_{on} c - k_{off} c_b,

``k`` first-order loss (uptake plus decay, 1/s), ``PS/V`` wall permeability times vessel surface
per tissue volume (1/s), ``c_p`` plasma concentration (mol/m³), ``s`` a volumetric source
(mol m⁻³ s⁻¹), ``k_on``/``k_off`` linear binding to an immobile bound pool ``c_b`` (1/s).

Each function here is compiled for CPU and CUDA by :func:`nanosim.kernels._compile.pointwise`.
"""

from __future__ import annotations

from ._compile import pointwise


@pointwise
def face_diffusivity(d_a, d_b):
    """Harmonic mean of two voxel diffusivities (m²/s); zero if either is zero."""
    s = d_a + d_b
    if s > 0.0:
        return 2.0 * d_a * d_b / s
    return 0.0 * s


@pointwise
def face_flux(c_a, c_b, d_face, u_face, inv_h):
    """Net flux per area from voxel a to b (mol m⁻² s⁻¹): diffusion plus upwind convection."""
    up = u_face if u_face > 0.0 else 0.0 * u_face
    un = -u_face if u_face < 0.0 else 0.0 * u_face
    return d_face * (c_a - c_b) * inv_h + up * c_a - un * c_b


@pointwise
def free_rate(c, cb, k_loss, kon, koff, ps, cp, src):
    """Reaction rate of the free pool (mol m⁻³ s⁻¹), see module docstring."""
    return -k_loss * c + ps * (cp - c) + src - kon * c + koff * cb


@pointwise
def bound_rate(c, cb, kon, koff):
    """Reaction rate of the bound pool (mol m⁻³ s⁻¹)."""
    return kon * c - koff * cb


@pointwise
def implicit_reaction(c, cb, k_loss, kon, koff, ps, cp, src, dt):
    """Backward-Euler update of the local reactions over ``dt`` (unconditionally stable).

    Solves the 2×2 linear system
    ``(1 + dt(k + ps + kon)) c' − dt koff cb' = c + dt(ps cp + src)`` and
    ``−dt kon c' + (1 + dt koff) cb' = cb``; returns ``(c', cb')``.
    """
    a11 = 1.0 + dt * (k_loss + ps + kon)
    a12 = -dt * koff
    a21 = -dt * kon
    a22 = 1.0 + dt * koff
    r1 = c + dt * (ps * cp + src)
    r2 = cb
    det = a11 * a22 - a12 * a21
    return (r1 * a22 - a12 * r2) / det, (a11 * r2 - a21 * r1) / det
