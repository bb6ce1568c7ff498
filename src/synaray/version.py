"""synaray's version (its own module: modules below the package root read it without
importing `synaray/__init__.py`'s lazy names)."""

__version__ = "0.1.0"
