"""Command lines for the long runs whose results the chapters read from ``data/`` (run them with ``python -m``).

Each is a short argparse ``main(argv)`` around a function of the package (`llmscratch.experiments`,
`llmscratch.comparisons`); `cli` holds what they share. Chapters import those functions, never a script.
"""
