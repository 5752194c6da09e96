"""`python -m app` and the `parlor` console script."""

import multiprocessing
import sys


def main() -> int:
    # Frozen builds re-run this entry point in each spawned child; this hands them off.
    multiprocessing.freeze_support()
    from app.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
