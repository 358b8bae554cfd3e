"""Free drug: plasma curve, tissue transport, exposure."""

from .free_drug import FreeDrugModel, build_model, initial_field
from .plasma import PlasmaCurve

__all__ = ["FreeDrugModel", "PlasmaCurve", "build_model", "initial_field"]
