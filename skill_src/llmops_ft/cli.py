"""The one command runner behind `llmops-ft <verb>` and every thin `scripts/<verb>.py`.

A command is a module with ``HELP`` (one paragraph), ``configure(parser)`` and ``run(args) -> Result``.
The runner adds ``--json``, turns a :class:`UserError` into one line on stderr, and picks the exit code.
"""

from __future__ import annotations

import contextlib
import json
import sys

from .core.commands import COMMANDS, build_parser
from .core.result import Result
from .errors import UserError

__all__ = ["COMMANDS", "Result", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``argv`` = [verb, *args]; return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        verbs = ", ".join(COMMANDS)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"llmops-ft: error: unknown command {argv[0]!r}; choose one of: {verbs}", file=sys.stderr)
            return 2
        print(f"usage: llmops-ft <command> [options]\ncommands: {verbs}\n'llmops-ft <command> --help' for one.")
        return 0
    verb, rest = argv[0], argv[1:]
    parser, module = build_parser(verb)
    args = parser.parse_args(rest)
    try:
        if args.json:  # progress lines go to stderr so stdout holds only the one JSON object
            with contextlib.redirect_stdout(sys.stderr):
                result = module.run(args)
        else:
            result = module.run(args)
    except UserError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"{verb}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{verb}: interrupted", file=sys.stderr)
        return 130
    try:
        if args.json:
            print(json.dumps(result.data, indent=2, sort_keys=True, ensure_ascii=False, default=str))
        elif result.text:
            print(result.text)
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into `head`: not an error of the command
        sys.stdout = None
    return result.exit_code
