"""Long-running jobs whose results the chapters read from ``data/`` (run them with ``python -m``)."""
