"""`promptlab`: run the local stack, invoke functions, migrate the database, print the OpenAPI document."""

from __future__ import annotations

import argparse

from promptlab.cli import admin_commands, generate_command, stack_commands


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options."""
    parser = argparse.ArgumentParser(prog="promptlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stack_commands.register(sub)
    generate_command.register(sub)
    admin_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `promptlab` command."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
