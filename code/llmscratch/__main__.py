"""Command line: ``python -m llmscratch fetch [corpus ...]``.

``fetch`` puts the named corpora (all of them by default) into the cache, verified, and prints
where each one is. ``make data`` runs it.
"""

import argparse
import sys

from .data import DATASETS, DataError, fetch


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m llmscratch")
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="fetch and verify corpora into the cache")
    get.add_argument("corpora", nargs="*", metavar="corpus",
                     help=f"one of {', '.join(sorted(DATASETS))} (default: all)")
    args = parser.parse_args()
    try:
        for name in args.corpora or sorted(DATASETS):
            print(f"{name}: {fetch(name)}")
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
