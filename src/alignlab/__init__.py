"""alignlab: a reproducible testbed for empirical AI-alignment research."""

__version__ = "0.1.0"
