"""``python -m router.mock``: the mock provider without the router CLI (used by the tests)."""

import argparse

from . import add_arguments, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m router.mock", description="Mock OpenAI-compatible provider.")
    add_arguments(parser)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
