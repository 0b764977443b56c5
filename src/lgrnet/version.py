"""The package version: one place, read by pyproject.toml and by modules that record it (a leaf, so
that recording it never imports the whole package)."""

__version__ = "0.1.0"
