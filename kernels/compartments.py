"""Compartment codes of carrier particles and the random-number draw plan shared by all kernels.

Every carrier particle (simulated packet of real carriers) holds one ``state`` code (uint8):

=============  ====  ==========================================================================
code           value meaning
=============  ====  ==========================================================================
INACTIVE       0     free slot in the particle arrays (no carriers)
TISSUE         1     free in the interstitium: Brownian motion + convection (moves)
VESSEL         2     in the blood of a network segment (intravascular packet)
BOUND          3     bound to cells or matrix in tissue (does not move)
INTERNALISED   4     taken up by a cell (does not move; sees endosomal pH)
LODGED         5     embolic sphere stuck in a segment narrower than itself (occludes it)
EXITED         6     left the box's network through an outlet into the systemic blood pool
CLEARED        7     drained from tissue by lymphatics
INTRAVASATED   8     crossed a vessel wall back from tissue into the blood (joins the pool)
=============  ====  ==========================================================================

Codes 6–8 are terminal: the model moves their weight into the matching ledger entry and frees
the slot (state INACTIVE).

Random numbers (:mod:`nanosim.kernels.rng`) are keyed by ``(seed, particle id, step, draw)``.
So that two kernels never reuse a number, the draw index is planned here:

- :data:`DRAW_BROWNIAN` (0, 1): the three normals of the Brownian step;
- :data:`DRAW_TRANSITION` (2): first-order state changes in tissue (binding, internalisation,
  lymphatic clearance, intravasation);
- :data:`DRAW_PLACEMENT` (4–7): placement of a newly created particle (e.g. on a vessel wall);
  :data:`DRAW_WALL_ROUNDING` (6, keyed by segment index): the unbiased rounding of a segment's
  extravasated weight to whole tissue particles;
- :data:`DRAW_BRANCH` (8 + k): the k-th bifurcation an intravascular packet passes in one step.
"""

INACTIVE = 0
TISSUE = 1
VESSEL = 2
BOUND = 3
INTERNALISED = 4
LODGED = 5
EXITED = 6
CLEARED = 7
INTRAVASATED = 8

#: Names by code, for output and reports.
NAMES = ("inactive", "tissue", "vessel", "bound", "internalised", "lodged", "exited", "cleared", "intravasated")
#: Terminal codes: weight leaves the box's particle arrays.
TERMINAL = (EXITED, CLEARED, INTRAVASATED)

DRAW_BROWNIAN = 0
DRAW_TRANSITION = 2
DRAW_PLACEMENT = 4
DRAW_WALL_ROUNDING = 6
DRAW_BRANCH = 8
