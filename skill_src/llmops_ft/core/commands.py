"""The verb table: ``llmops-ft <verb>`` and ``scripts/<verb>.py`` run the module named here.

A command is a module with ``HELP`` (one paragraph), ``configure(parser)`` and ``run(args) -> Result``. The table
holds module names, not modules, so ``--help`` of one verb imports nothing of the others.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

# verb -> module; scripts/<verb with "-" as "_">.py calls the same verb.
COMMANDS: dict[str, str] = {
    "prep": "llmops_ft.data.command",
    "plan": "llmops_ft.plan.command",
    "train": "llmops_ft.train.command",
    "export": "llmops_ft.export.command",
    "chat": "llmops_ft.evaluate.chat_command",
    "evaluate": "llmops_ft.evaluate.command",
    "sync-docs": "llmops_ft.docs.command",
    "render-skill": "llmops_ft.skill.render_command",
    "check-skill": "llmops_ft.skill.check_command",
    "smoke-test": "llmops_ft.smoke",
    "demo": "llmops_ft.demo",
    "gen-taskapi": "llmops_ft.taskapi.command",
    "doctor": "llmops_ft.doctor",
    "init-config": "llmops_ft.config.init_command",
}


def build_parser(verb: str) -> tuple[argparse.ArgumentParser, Any]:
    """The argparse parser of ``verb`` (with ``--json``) and the command module."""
    module = importlib.import_module(COMMANDS[verb])
    parser = argparse.ArgumentParser(
        prog=f"llmops-ft {verb}",
        description=module.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.configure(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON result object on stdout")
    return parser, module


def add_force_flag(parser: argparse.ArgumentParser, replaces: str) -> None:
    """``--force``: ``replaces`` says which of the verb's own files it replaces (never anyone else's)."""
    parser.add_argument("--force", action="store_true", help=f"{replaces} (other files are kept)")


def add_trust_flag(parser: argparse.ArgumentParser, what: str = "the model",
                   never: str = "a run's run.json never turns it on") -> None:
    """``--trust-remote-code``: only the command line lets ``what`` run Python code from its repository."""
    parser.add_argument("--trust-remote-code", action="store_true",
                        help=f"let {what} run Python code from its repository (off unless given here; {never})")
