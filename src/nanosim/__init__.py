"""nanosim: simulator of nanoparticle drug delivery to liver tumours."""

__version__ = "0.1.0"
