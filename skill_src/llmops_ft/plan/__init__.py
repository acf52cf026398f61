"""Plan a run before loading anything: estimated peak memory, verdict, dtype, largest batch and length that fit."""

from .calibration import calibration_report, format_report
from .planner import make_plan

__all__ = ["calibration_report", "format_report", "make_plan"]
