"""Commands: every python block parses; every ``scripts/*.py`` command shown is accepted by that script's parser.

The parser is the script's real one (``llmops_ft.cli.build_parser``), so a renamed flag fails here, not in a user's
shell. A command in a code block is parsed whole; a synopsis (``[--flag X]``, ``A|B``, ``...``) and a command
mentioned inline in prose only have each ``--flag`` looked up. ``make <target>`` must name a Makefile target.
A script whose command module cannot be imported fails, never skipped.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

from ..markdown import Doc
from . import Finding

SHELL_LANGS = ("bash", "sh", "shell", "console", "")
_SCRIPT = re.compile(r"(?:^|\s)(?:\S*python3?\s+)?(?:\./)?scripts/([\w-]+)\.py\b")
_MAKE = re.compile(r"(?:^|\s|`)make\s+([a-z][\w-]*)")
_STOP = {"|", "||", "&&", ";", ">", ">>", "2>", "<", "&"}


def command_lines(text: str) -> list[tuple[int, str]]:
    """(0-based line offset, command) for each logical line, backslash continuations joined, prompts removed."""
    out, pending, start = [], "", 0
    for i, line in enumerate(text.splitlines()):
        if not pending:
            start = i
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append((start, re.sub(r"^\s*\$\s+", "", pending + stripped)))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _tokens_after_script(command: str) -> tuple[str, list[str]] | None:
    match = _SCRIPT.search(command)
    if not match:
        return None
    try:
        tokens = shlex.split(command[match.end():], comments=True)
    except ValueError:
        tokens = command[match.end():].split()
    args = []
    for token in tokens:
        if token in _STOP:
            break
        args.append(token)
    return match.group(1), args


def _is_synopsis(args: list[str]) -> bool:
    return any(("[" in a or "]" in a or "..." in a or "|" in a) for a in args)


class ParserCache:
    """Each verb's parser built once; records import failures and whether building it imported torch."""

    def __init__(self) -> None:
        self.parsers: dict[str, argparse.ArgumentParser | str] = {}
        self.torch_importers: list[str] = []

    def get(self, verb: str) -> argparse.ArgumentParser | str:
        """The parser of ``verb``, or a string saying why there is none."""
        if verb not in self.parsers:
            from ...cli import COMMANDS, build_parser

            if verb not in COMMANDS:
                self.parsers[verb] = f"no command {verb!r} in llmops_ft.cli.COMMANDS"
            else:
                had_torch = "torch" in sys.modules
                try:
                    self.parsers[verb] = build_parser(verb)[0]
                except Exception as exc:  # noqa: BLE001 - any failure to build is the finding
                    self.parsers[verb] = f"its parser cannot be built ({type(exc).__name__}: {exc})"
                if not had_torch and "torch" in sys.modules:
                    self.torch_importers.append(verb)
        return self.parsers[verb]


def _parse_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """argparse's error message for ``args``, or None when it accepts them."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "rejected"
    return None


def _synopsis_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    known = set(parser._option_string_actions)  # noqa: SLF001 - argparse has no public list of option strings
    flags = {piece.strip(".,") for arg in args for piece in re.split(r"[\[\]|=]", arg)}
    unknown = sorted(f for f in flags if f.startswith("--") and f not in known)
    return f"unrecognized arguments: {' '.join(unknown)}" if unknown else None


def check_command(cache: ParserCache, repo: Path, command: str, whole: bool = True) -> str | None:
    """Why a shown command would fail, or None when its script accepts it (or it runs no script).

    ``whole``: a complete command (a code block line), parsed as the shell would pass it; else a mention in prose
    (an inline span such as `scripts/train.py --dry-run`), whose flags must exist but need not be complete.
    """
    found = _tokens_after_script(command)
    if found is None:
        return None
    name, args = found
    if not (repo / "scripts" / f"{name}.py").exists():
        return f"scripts/{name}.py does not exist"
    parser = cache.get(name.replace("_", "-"))
    if isinstance(parser, str):
        return f"scripts/{name}.py: {parser}"
    problem = _parse_error(parser, args) if whole and not _is_synopsis(args) else _synopsis_error(parser, args)
    return f"scripts/{name}.py {' '.join(args)}: {problem}" if problem else None


def makefile_targets(repo: Path) -> set[str]:
    """Targets defined in the repo's Makefile."""
    path = repo / "Makefile"
    if not path.exists():
        return set()
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))


def check(docs: dict[str, Doc], repo: Path, cache: ParserCache | None = None) -> tuple[list[Finding], int]:
    """(findings, number of commands and python blocks checked)."""
    cache = cache or ParserCache()
    targets = makefile_targets(repo)
    out: list[Finding] = []
    repeats: dict[str, int] = {}  # a script that cannot be built is one problem, however often it is shown
    count = 0
    for label, doc in docs.items():
        shown: list[tuple[int, str, bool]] = []
        for block in doc.code_blocks:
            if block.lang in ("python", "py"):
                count += 1
                try:
                    ast.parse(block.text)
                except SyntaxError as exc:
                    out.append(Finding("commands", label, block.line + (exc.lineno or 1) - 1,
                                       f"python block does not parse: {exc.msg}"))
            elif block.lang in SHELL_LANGS:
                shown += [(block.line + offset, text, True) for offset, text in command_lines(block.text)]
        shown += [(span.line, span.text, False) for span in doc.inline]
        for line, text, whole in shown:
            if _SCRIPT.search(text):
                count += 1
                problem = check_command(cache, repo, text, whole)
                if problem and problem.startswith("scripts/") and ": its parser cannot be built" in problem:
                    repeats[problem] = repeats.get(problem, -1) + 1
                    if repeats[problem]:
                        continue
                if problem:
                    out.append(Finding("commands", label, line, problem))
            for target in _MAKE.findall(text):
                count += 1
                if target not in targets:
                    out.append(Finding("commands", label, line, f"make {target}: no such Makefile target"))
    out = [Finding(f.check, f.file, f.line, f"{f.message} (and {repeats[f.message]} more)")
           if repeats.get(f.message) else f for f in out]
    for verb in cache.torch_importers:
        out.append(Finding("commands", f"scripts/{verb.replace('-', '_')}.py", None,
                           "building its argument parser imports torch: --help and check_skill.py get slow "
                           "(import torch inside the function that needs it)", severity="warning"))
    return out, count
