"""Commands: every python block parses; every command shown is accepted by the real parser of its verb.

The skill's own files (SKILL.md, references/) show the installed entry point, ``llmops-ft <verb> ...`` (or
``python -m llmops_ft <verb>``), because the agent runs them from the user's project: a ``scripts/*.py`` command,
a ``make`` target or a path of this repository (``examples/...``) there is an error. Other documents checked with the
skill (LEARNING-SPEC.md) are about this repository and may show ``scripts/*.py`` and ``make`` targets.

The parser is the verb's real one (``llmops_ft.cli.build_parser``), so a renamed flag fails here, not in a user's
shell. A command in a code block is parsed whole; a synopsis (``[--flag X]``, ``A|B``, ``...``) and a command
mentioned inline in prose only have each ``--flag`` looked up. A verb whose command module cannot be imported
fails, never skipped.
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
_ENTRY = re.compile(r"(?:^|[\s`(;&|])(?:llmops-ft|python3?\s+-m\s+llmops_ft)(?=\s|$)")
_MAKE = re.compile(r"(?:^|\s|`)make\s+([a-z][\w-]*)")
_STOP = {"|", "||", "&&", ";", ">", ">>", "2>", "<", "&"}
# Top folders of this repository that a user's project does not have.
_REPO_ONLY = ("examples/", "scripts/", "skill_src/", "docs_cache/", "benchmarks/", "tests/", "demo/")
_PLACEHOLDER = re.compile(r"^(<[^>]*>|[A-Z][A-Z_]*)$")


def is_skill_doc(label: str) -> bool:
    """Whether ``label`` names a file of the skill itself (SKILL.md or references/*.md), shown to the agent."""
    return label.endswith("SKILL.md") or "references/" in label


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


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in prose: split on blanks
        return text.split()


def command_segments(text: str) -> list[tuple[str, str, list[str]]]:
    """(kind, name, args) for each command of a shell line that runs this package, split at ``&&``, ``|``, ``;``.

    kind ``entry``: ``llmops-ft VERB ...`` or ``python -m llmops_ft VERB ...`` (name = the verb, "" when only
    options follow); kind ``script``: ``[python] scripts/NAME.py ...`` (name = NAME).
    """
    out, segment = [], []
    for token in [*_tokens(text), ";"]:
        if token not in _STOP:
            segment.append(token)
            continue
        found = _find_command(segment)
        if found:
            out.append(found)
        segment = []
    return out


def _find_command(tokens: list[str]) -> tuple[str, str, list[str]] | None:
    for i, token in enumerate(tokens):
        script = re.fullmatch(r"(?:\./)?scripts/([\w-]+)\.py", token)
        if script:
            return "script", script.group(1), tokens[i + 1:]
        after = None
        if token == "llmops-ft":
            after = tokens[i + 1:]
        elif re.fullmatch(r"(?:\S*/)?python3?", token) and tokens[i + 1:i + 3] == ["-m", "llmops_ft"]:
            after = tokens[i + 3:]
        if after is not None:
            if after and not after[0].startswith("-"):
                return "entry", after[0], after[1:]
            return "entry", "", after
    return None


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
            from ...core.commands import COMMANDS, build_parser

            if verb not in COMMANDS:
                self.parsers[verb] = f"no verb {verb!r} in llmops_ft.core.commands.COMMANDS (see llmops-ft --help)"
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
                last = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "rejected"
                return re.sub(r"^.*?: error: ", "", last)  # argparse's "PROG: error: " prefix
    return None


def _synopsis_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    known = set(parser._option_string_actions)  # noqa: SLF001 - argparse has no public list of option strings
    flags = {piece.strip(".,") for arg in args for piece in re.split(r"[\[\]|=]", arg)}
    unknown = sorted(f for f in flags if f.startswith("--") and f not in known)
    return f"unrecognized arguments: {' '.join(unknown)}" if unknown else None


def check_command(cache: ParserCache, repo: Path, command: str, whole: bool = True,
                  skill: bool = False) -> str | None:
    """Why a shown command would fail, or None when its parser accepts it (or it runs nothing of this package).

    ``whole``: a complete command (a code block line), parsed as the shell would pass it; else a mention in prose
    (an inline span such as `llmops-ft train --dry-run`), whose flags must exist but need not be complete.
    ``skill``: the line is in the skill itself, which runs in the user's project: only ``llmops-ft`` commands, and
    no paths of this repository.
    """
    problems = [_segment_problem(cache, repo, kind, name, args, whole, skill)
                for kind, name, args in command_segments(command)]
    return "; ".join(p for p in problems if p) or None


def _segment_problem(cache: ParserCache, repo: Path, kind: str, name: str, args: list[str], whole: bool,
                     skill: bool) -> str | None:
    if kind == "script":
        if skill:
            return (f"scripts/{name}.py runs only in a checkout of the llmops-fine-tuner repository; the skill runs "
                    f"in the user's project: show `llmops-ft {name.replace('_', '-')} ...`")
        if not (repo / "scripts" / f"{name}.py").exists():
            return f"scripts/{name}.py does not exist"
        label, verb = f"scripts/{name}.py", name.replace("_", "-")
    else:
        label, verb = f"llmops-ft {name}".rstrip(), name
        if not name:
            unknown = [a for a in args if a not in ("-h", "--help")]
            return f"llmops-ft {' '.join(unknown)}: the only option before a verb is --help" if unknown else None
        if _PLACEHOLDER.match(name):
            return None  # a synopsis such as `llmops-ft <verb> --help`
    parser = cache.get(verb)
    if isinstance(parser, str):
        return f"{label}: {parser}"
    problem = _parse_error(parser, args) if whole and not _is_synopsis(args) else _synopsis_error(parser, args)
    if problem is None and skill:
        problem = _path_problem(args)
    return f"{label} {' '.join(args)}: {problem}".replace("  ", " ") if problem else None


def _path_problem(args: list[str]) -> str | None:
    """A path argument the user's project cannot have: a file of this repository, or one machine's absolute path."""
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value.startswith(_REPO_ONLY) or value.startswith("./" + _REPO_ONLY[0]):
            return (f"{value} is a path of the llmops-fine-tuner repository, which the user's project does not "
                    "have (use llmops-ft init-config or a path in the project)")
        if value.startswith("/") and len(value) > 1:
            return f"{value} is an absolute path of one machine: show a path relative to the user's project"
    return None


def makefile_targets(repo: Path) -> set[str]:
    """Targets defined in the repo's Makefile."""
    path = repo / "Makefile"
    if not path.exists():
        return set()
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))


def _shown(doc: Doc, label: str) -> tuple[list[Finding], list[tuple[int, str, bool]], int]:
    """(python-block findings, (line, text, whole) of each shell line and inline span, python blocks counted)."""
    out, shown, count = [], [], 0
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
    return out, shown, count


def check(docs: dict[str, Doc], repo: Path, cache: ParserCache | None = None) -> tuple[list[Finding], int]:
    """(findings, number of commands and python blocks checked)."""
    cache = cache or ParserCache()
    targets = makefile_targets(repo)
    out: list[Finding] = []
    repeats: dict[str, int] = {}  # a verb that cannot be built is one problem, however often it is shown
    count = 0
    for label, doc in docs.items():
        skill = is_skill_doc(label)
        found, shown, blocks = _shown(doc, label)
        out += found
        count += blocks
        raw = doc.text.splitlines()
        for line, text, whole in shown:
            if not whole and 0 < line <= len(raw) and raw[line - 1].lstrip().startswith("<!--"):
                continue  # the generated-file note to the maintainer, not a command for the agent
            segments = command_segments(text)
            count += len(segments)
            problem = check_command(cache, repo, text, whole, skill) if segments else None
            if problem and ": its parser cannot be built" in problem:
                repeats[problem] = repeats.get(problem, -1) + 1
                if repeats[problem]:
                    continue
            if problem:
                out.append(Finding("commands", label, line, problem))
            for target in _MAKE.findall(text):
                count += 1
                if skill:
                    out.append(Finding("commands", label, line, f"make {target}: make targets exist only in a checkout "
                                                                "of the repository, not in the user's project"))
                elif target not in targets:
                    out.append(Finding("commands", label, line, f"make {target}: no such Makefile target"))
    out = [Finding(f.check, f.file, f.line, f"{f.message} (and {repeats[f.message]} more)")
           if repeats.get(f.message) else f for f in out]
    for verb in cache.torch_importers:
        out.append(Finding("commands", f"llmops-ft {verb}", None,
                           "building its argument parser imports torch: --help and check-skill get slow "
                           "(import torch inside the function that needs it)", severity="warning"))
    return out, count
