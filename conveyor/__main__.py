"""`python -m conveyor`, and the `conveyor` command's entry point (`run`): a Ctrl-C while
Python is still importing the CLI exits quietly too, as it does once a command runs."""

import sys


def run() -> int:
    try:
        from conveyor.cli import main
    except KeyboardInterrupt:
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
