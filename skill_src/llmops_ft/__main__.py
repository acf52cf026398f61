"""`python -m llmops_ft <verb> ...`: the same runner as the `llmops-ft` entry point."""

import sys

from .cli import main

sys.exit(main())
