"""Command line entry point (grows with the application issue)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("ptychopinn", file=sys.stderr)
    return 0
