r"""One drug ledger for the whole run: the body and the simulated box, in float64 mol.

The drug (sorafenib) given by every route is booked where it is (PHYSICS.md §8 "Mass balance"),
in two closed accounts that a run checks on every step (:class:`~nanosim.simulation.Guards`):

**The body** — the whole animal or patient of ``[body]``:

.. math::

    D_{oral} + D_{iv} + D_{carriers} =
        \underbrace{L_{circ} + L_{mac} + L_{spheres} + L_{burst}}_{\text{in the body's carriers}}
        + O_{carriers}
        + \underbrace{g + x_1 + x_2}_{\text{free drug: gut, plasma, peripheral}}
        + e + u,

with the drug given inside carriers :math:`D_{carriers}` (the carriers given so far × drug per
carrier), the law-held drug in circulating carriers, in carriers inside the liver's macrophages
and in embolic spheres lodged in the liver, the burst share of carriers whose burst has not
happened, :math:`O_{carriers}` what left with carriers cleared otherwise, and the systemic free
drug (:class:`~nanosim.drug.systemic.SystemicDrugPK`): gut depot, central and peripheral
compartments, eliminated and unabsorbed. What the carriers release in the body is the systemic
drug's ``carrier_leak`` input, so the account closes only if the two models hand the same
amounts over — the join this ledger checks beyond each model's own balance. (Drug exchanged
between the box and the plasma, ``tissue_return``/``tissue_draw``, enters with its sign; the
box is a sample of the body and by default takes nothing from it.)

**The box** — the simulated tissue sample, which takes its inputs from the body's plasma and
carriers without depleting them (a sample of a body ~10⁶ times larger):

.. math::

    M_0 + \text{wall and boundary inflow} + \text{drug entering inside carriers}
    = C + C_b + C_i + L_{box} + \text{left in carriers} + \text{released in the box's blood}
      + \text{decayed} + \text{eliminated in cells},

with the free, bound and intracellular pools, the drug still in the box's carriers, the drug
that left the box inside carriers, the drug that the box's carriers released in its vessels (part
of the body's premature leak, which the body's account counts) and the drug lost to decay and
to elimination inside cells. The carriers' deposits into the tissue are a transfer inside the box
(out of the carriers' payload, into the free-drug field) and appear on neither side, so a deposit
that went missing between the two models shows.

Each account's relative error is its imbalance over the largest amount in it. The body's terms
are float64 scalars from exact integrators (round-off ~1e-15); the box's pools are fields at
the run's precision, so its round-off is that of the field dtype (float32: ~1e-7 per step,
growing as the guard's tolerance allows).
"""

from __future__ import annotations

import math

from .free_drug import LEDGER_NAMES

__all__ = ["drug_ledger", "ledger_rows"]


def _rel(lhs: list[float], rhs: list[float]) -> float:
    scale = max([abs(v) for v in lhs + rhs] + [0.0])
    if scale == 0.0:
        return 0.0
    return abs(math.fsum(lhs) - math.fsum(rhs)) / scale


def drug_ledger(model) -> dict:
    """The body's and the box's drug accounts of a :class:`~nanosim.model.Model` (mol), with their
    relative errors ``body_rel_error`` and ``box_rel_error`` (0 for an account the model lacks)."""
    out: dict = {}
    drug, carriers = model.drug, model.carriers
    systemic = None if drug is None else drug.systemic
    body_given, body_held = [], []
    if carriers is not None and carriers.release_params is not None:
        c = carriers.body_drug_ledger()
        out.update({f"body_{k}_mol": v for k, v in c.items()})
        body_given.append(c["given_in_carriers"])
        body_held += [c[k] for k in c if k not in ("given_in_carriers", "released")]
        if systemic is None:  # a prescribed plasma: what the carriers release leaves the account
            body_held.append(c["released"])
    if systemic is not None:
        s = systemic.ledger()
        for k in ("gut", "central", "peripheral", "eliminated", "unabsorbed"):
            out[f"body_free_{k}_mol"] = s[k]
            body_held.append(s[k])
        for k in ("dosed_oral", "dosed_iv", "tissue_return"):
            out[f"body_{k}_mol"] = s[k]
            body_given.append(s[k])
        out["body_tissue_draw_mol"] = s["tissue_draw"]
        body_held.append(s["tissue_draw"])
        if carriers is None or carriers.release_params is None:
            # no carriers: the systemic drug's own inputs, less what it says came from carriers (none)
            body_given.append(s["carrier_leak"])
    out["body_given_mol"] = math.fsum(body_given)
    out["body_rel_error"] = _rel(body_given, body_held)
    # the box: the carriers' deposits into the tissue are an internal transfer (out of the carriers, into
    # the free drug), booked on neither side, so a deposit lost between the two models shows
    box_in, box_held = [], []
    releasing = carriers is not None and carriers.release_params is not None
    deposits = ("released_free", "released_bound", "released_internalised", "released_lodged")
    if drug is not None:
        led = dict(zip(LEDGER_NAMES, drug.ledger_mol))
        box_in += [drug.initial_total_mol, led["boundary_in_mol"], led["vessel_supply_mol"], led["exchange_in_mol"],
                   led["source_mol"]]
        if not releasing:
            box_in.append(led["released_in_mol"])  # 0: nothing else deposits drug
        box_held += [drug.total_mol, led["loss_mol"] - led["uptake_mol"], led["intracellular_eliminated_mol"]]
        out["box_free_bound_intracellular_mol"] = drug.total_mol
    if releasing:
        d = carriers.drug
        in_carriers = carriers.drug_in_carriers()
        out["box_in_carriers_mol"] = in_carriers
        box_in.append(d["entered_in_carriers"])
        box_held += [in_carriers, d["left_in_carriers"], d["released_in_blood"]]
        if drug is None:  # no free-drug field: what the carriers release into the tissue leaves the account
            box_held += [d[k] for k in deposits]
    out["box_rel_error"] = _rel(box_in, box_held)
    return out


def ledger_rows(ledger: dict) -> list[tuple[str, str]]:
    """Rows ``(where, amount)`` of the body's account for a table: mol and % of what was given."""
    given = ledger.get("body_given_mol", 0.0)
    labels = (("body_in_circulating_carriers_mol", "in circulating carriers"),
              ("body_in_liver_macrophages_mol", "in carriers inside liver macrophages"),
              ("body_in_liver_spheres_mol", "in embolic spheres in the liver"),
              ("body_burst_share_in_carriers_mol", "burst share still in carriers"),
              ("body_with_cleared_carriers_mol", "left with cleared carriers"),
              ("body_free_gut_mol", "free drug in the gut"),
              ("body_free_central_mol", "free drug in plasma (central)"),
              ("body_free_peripheral_mol", "free drug in peripheral tissues"),
              ("body_free_eliminated_mol", "eliminated"),
              ("body_free_unabsorbed_mol", "not absorbed"))
    rows = []
    for key, label in labels:
        if key in ledger:
            v = ledger[key]
            pct = f" ({100.0 * v / given:.3g} %)" if given > 0 else ""
            rows.append((label, f"{v:.4g} mol{pct}"))
    return rows
