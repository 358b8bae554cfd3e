"""Carrier presets: one TOML file per design, referenced from scenarios as ``[carrier] preset = "NAME"``.

Installed as the data package ``nanosim.carrier_presets``.
"""
