"""Write the course's diagrams: ``python -m llmscratch.diagrams book/diagrams``."""

from __future__ import annotations

import argparse

from . import DIAGRAMS, write_all


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llmscratch.diagrams", description=__doc__)
    parser.add_argument("directory", help="where to write <name>.svg for each diagram (created if missing)")
    args = parser.parse_args(argv)
    for path in write_all(args.directory):
        print(f"{path}  ({DIAGRAMS[path.stem].chapter})")


if __name__ == "__main__":
    main()
