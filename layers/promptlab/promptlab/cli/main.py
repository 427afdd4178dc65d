"""`promptlab`: run the local stack, invoke functions, migrate the database, print the OpenAPI document."""

from __future__ import annotations

import argparse
import sys

from promptlab.cli import admin_commands, experiment_commands, generate_command, stack_commands, template_commands
from promptlab.cli.failures import UsageError, explain


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options."""
    parser = argparse.ArgumentParser(prog="promptlab", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)
    stack_commands.register(sub)
    generate_command.register(sub)
    admin_commands.register(sub)
    experiment_commands.register(sub)
    template_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `promptlab` command: a failure is one line on stderr (exit 2 for usage, else 1)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except UsageError as exc:
        if args.debug:
            raise
        parser.exit(2, f"promptlab: {exc}\n")
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"promptlab: {explain(exc, url=getattr(args, 'url', None), port=getattr(args, 'port', None))}",
            file=sys.stderr,
        )
        return 1
    return code
