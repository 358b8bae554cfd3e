"""A stand-in model, a recording callback and a tiny real scenario for the simulation tests."""


class CountingModel:
    """The least a model must provide to :class:`~nanosim.simulation.Simulation`; records its steps.

    ``on_step(model)``, if given, runs at the end of every step (e.g. to advance a fake clock).
    """

    def __init__(self, step_index=0, time_s=0.0, on_step=None):
        self.step_index = step_index
        self.time_s = time_s
        self.dts = []
        self.on_step = on_step

    def step(self, dt):
        self.dts.append(dt)
        self.time_s += dt
        self.step_index += 1
        if self.on_step is not None:
            self.on_step(self)


class Recorder:
    """A callback that records (step, time) of each call."""

    def __init__(self):
        self.calls = []

    def __call__(self, sim):
        self.calls.append((sim.step_index, sim.time_s))

    @property
    def steps(self):
        return [s for s, _ in self.calls]

    @property
    def times(self):
        return [t for _, t in self.calls]


# 24×24×1 voxels around one vessel held at the plasma concentration: ~1 ms per step with numpy.
TINY = {
    "title": "tiny",
    "seed": 1,
    "grid": {"shape": [24, 24, 1], "voxel_size_m": "10 um",
             "boundary": {"x": "no_flux", "y": "no_flux", "z": "periodic"}},
    "vessels": [{"kind": "cylinder", "start_m": ["120 um", "120 um", "-1 mm"],
                 "end_m": ["120 um", "120 um", "1 mm"], "radius_m": "20 um", "wall": "fixed_concentration"}],
    "drug": {"plasma": {"kind": "constant", "concentration_mol_per_m3": "7.5 uM"},
             "normal": {"diffusivity_m2_per_s": "2e-10 m^2/s", "uptake_rate_per_s": "0.2 1/s"}},
    "transport": {"dt_s": "0.05 s"},
    "time": {"stop_s": "1 s"},
    "output": {"every_s": "0.1 s", "fields": ["free_drug", "vessel"]},
}
