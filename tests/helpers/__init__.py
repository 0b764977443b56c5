"""Helpers the tests share and the benchmarks reuse: media files, reference implementations and
oracles, fixtures' builders, load generators. Imported as ``tests.helpers.<module>`` (pytest puts the
repository root on the path: ``pythonpath`` in pyproject.toml; benchmarks run from the root as
``python -m benchmarks.<name>``)."""
