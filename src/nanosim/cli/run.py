"""``nanosim run``: run a scenario and write one results file.

Example::

    $ nanosim run scenarios/quickstart.toml -o quickstart.vtkhdf
    ██████████████████████████████ 100.0%  t = 30/30 s  step 15210/15210  6.7 s elapsed, ETA 0.0 s
    quickstart.vtkhdf: numba float64 explicit, 15210 steps of 0.001972 s (1 sub-step each) in 6.74 s
    metric                       final value
    -----------------------------------------
    time_s                       30
    ...

With ``--json`` one JSON document goes to stdout: output path, wall time, steps, final metrics.
An existing results file is never overwritten without ``--overwrite``; ``--resume`` continues
from ``OUTPUT.ckpt``; Ctrl-C checkpoints and exits with 130.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import EXIT_BACKEND, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK


def add_parser(sub):
    p = sub.add_parser("run", help="run a scenario and write a results file",
                       description="Run a scenario and write one HDF5 (VTKHDF) results file.")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario file (.toml or .yaml)")
    p.add_argument("-o", "--output", metavar="OUT", help="results file (default: SCENARIO name + .vtkhdf "
                   "in the current folder; ParaView opens .vtkhdf directly)")
    p.add_argument("--backend", choices=["auto", "numpy", "numba", "cupy"], help="override the scenario's backend")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help='override a setting, e.g. --set time.stop_s="10 s" (repeatable)')
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to OUT")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=main)
    return p


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _table(rows) -> str:
    w = max(len(r[0]) for r in rows)
    lines = [f"{a:<{w}}  {b}" for a, b in rows]
    lines.insert(1, "-" * (w + 14))
    return "\n".join(lines)


#: The carrier metrics shown first, as "where is the dose", with their labels.
DOSE_ROWS = (("carrier_tumour_pct_id", "tumour"), ("carrier_blood_pct_id", "blood (plasma)"),
             ("carrier_peripheral_pct_id", "peripheral tissues"),
             ("carrier_liver_macrophages_pct_id", "liver macrophages"), ("carrier_cleared_pct_id", "cleared"))


def dose_table(metrics: dict) -> str:
    """Where the injected carriers are (% injected dose), and how far they got into the tissue."""
    rows = [("where the carriers are", "% injected dose")]
    rows += [(label, f"{metrics[key]:.3g}") for key, label in DOSE_ROWS if key in metrics]
    for key, label in (("carrier_penetration_p50_m", "median distance from a vessel wall"),
                       ("carrier_penetration_p90_m", "90th percentile distance")):
        if key in metrics and metrics[key] == metrics[key]:
            rows.append((label, f"{metrics[key] * 1e6:.3g} µm"))
    if "carrier_fraction_extravasated" in metrics:
        rows.append(("of the carriers entering the box, extravasated", f"{100 * metrics['carrier_fraction_extravasated']:.3g} %"))
    return _table(rows)


def drug_table(metrics: dict) -> str:
    """Where the drug given to the body is (mol and % of what was given), and how well the body's and
    the simulated tissue's accounts close (nanosim.drug.ledger)."""
    from ..drug.ledger import ledger_rows

    ledger = {k[len("ledger_"):]: v for k, v in metrics.items() if k.startswith("ledger_")}
    rows = [("where the drug is (whole body)", "amount")] + ledger_rows(ledger)
    rows.append(("ledger closes to (body, tissue)",
                 f"{ledger.get('body_rel_error', 0.0):.2g}, {ledger.get('box_rel_error', 0.0):.2g} relative"))
    return _table(rows)


def summary_table(info) -> str:
    metrics = info.final_metrics
    out = ""
    if "carrier_tumour_pct_id" in metrics:
        out = dose_table(metrics) + "\n\n"
    if "ledger_body_given_mol" in metrics and metrics["ledger_body_given_mol"] > 0:
        out += drug_table(metrics) + "\n\n"
    rows = [("metric", "final value")] + [(k, _fmt(v)) for k, v in metrics.items()]
    return out + _table(rows)


def main(args) -> int:
    from ..backends import BackendUnavailable
    from ..runner import ResumeError, RunInterrupted, run_scenario
    from ..scenario import ScenarioBuildError, ScenarioError, load_scenario
    from ..simulation import GuardError

    err = sys.stderr
    try:
        scenario = load_scenario(args.scenario, overrides=args.overrides)
    except ScenarioError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": "invalid scenario",
                              "errors": [e.__dict__ if hasattr(e, "__dict__") else dict(e) for e in exc.errors]}))
        print(exc.format(), file=err)
        return EXIT_INVALID
    output = Path(args.output) if args.output else Path(Path(args.scenario).stem + ".vtkhdf")
    quiet = args.quiet or args.json
    progress = not quiet and err.isatty()
    log = None if quiet else (lambda m: print(m, file=err))

    def fail(code, kind, message, prefix):
        if args.json:  # still exactly one JSON document on stdout
            print(json.dumps({"ok": False, "error": kind, "message": str(message), "exit_code": code}))
        print(f"{prefix}{message}", file=err)
        return code

    try:
        info = run_scenario(scenario, output, args.backend, overwrite=args.overwrite, resume=args.resume,
                            progress=progress, log=log)
    except BackendUnavailable as exc:
        return fail(EXIT_BACKEND, "backend unavailable", exc, "error: ")
    except ScenarioBuildError as exc:
        return fail(EXIT_INVALID, "invalid scenario", exc, "error: ")
    except FileExistsError as exc:
        return fail(EXIT_FAILED, "output exists", exc, "error: ")
    except OSError as exc:  # e.g. the output folder does not exist or cannot be written
        return fail(EXIT_FAILED, "file error", exc, "error: ")
    except ResumeError as exc:
        return fail(EXIT_FAILED, "cannot resume", exc, "error: ")
    except RunInterrupted as exc:
        return fail(EXIT_INTERRUPTED, "interrupted", exc, "\n")
    except GuardError as exc:
        return fail(EXIT_FAILED, "run stopped by a guard", exc, "\nrun stopped: ")
    if args.json:
        print(json.dumps({"ok": True, "output": info.output, "wall_time_s": info.wall_time_s,
                          "setup_time_s": info.setup_time_s, "first_step_s": info.first_step_s, "steps": info.steps,
                          "dt_s": info.dt_s, "substeps": info.substeps, "backend": info.backend, "dtype": info.dtype,
                          "scheme": info.scheme, "resumed_from_s": info.resumed_from_s,
                          "dt_phases": info.dt_phases, "final_metrics": info.final_metrics}, indent=2))
    elif not args.quiet:
        steps = f"{info.steps} steps of {info.dt_s:.4g} s" if not info.dt_phases else f"{info.steps} steps (" + \
            ", then ".join(f"{p['steps']} of {p['dt_s']:.4g} s" for p in info.dt_phases) + ")"
        print(f"{info.output}: {info.backend} {info.dtype} {info.scheme}, {steps} "
              f"({info.substeps} sub-step{'s' if info.substeps > 1 else ''} each) in {info.wall_time_s:.2f} s"
              f" (set-up {info.setup_time_s:.2f} s before; first step {info.first_step_s or 0:.2f} s)")
        print(summary_table(info))
    return EXIT_OK
