"""Nanocarriers: designs, routes into the body, particle transport in vessels and tissue."""
