"""Relative and absolute date phrases, each with the ISO date it means for a given 'today'.

The rules the targets follow (README states them too):
- "today"; "tomorrow" = +1; "the day after tomorrow" = +2; "in N days" = +N; "in N weeks" = +7N.
- "Friday", "this Friday", "next Friday": the first Friday strictly after today (1-7 days ahead).
- "end of month": the last day of today's month.
- "March 6", "6 March", "Mar 6th": the next March 6 on or after today. ISO "2026-03-06" is itself.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def next_weekday(today: dt.date, weekday: int) -> dt.date:
    """The first date strictly after ``today`` falling on ``weekday`` (0 = Monday)."""
    return today + dt.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def end_of_month(today: dt.date) -> dt.date:
    """The last day of ``today``'s month."""
    return today.replace(day=calendar.monthrange(today.year, today.month)[1])


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _month_day(rng: random.Random, day: dt.date) -> str:
    month = MONTHS[day.month - 1]
    forms = [f"{month} {day.day}", f"{day.day} {month}", f"{month[:3]} {day.day}", f"{month} {_ordinal(day.day)}",
             f"the {_ordinal(day.day)} of {month}"]
    return rng.choice(forms)


def date_phrase(rng: random.Random, today: dt.date) -> tuple[str, dt.date]:
    """A phrase naming a day at or after ``today`` and the date it means."""
    kind = rng.choices(
        ["today", "tomorrow", "after_tomorrow", "in_days", "in_weeks", "weekday", "end_of_month", "month_day", "iso"],
        weights=[4, 14, 3, 12, 6, 22, 6, 17, 16],
    )[0]
    if kind == "today":
        return rng.choice(["today", "tonight", "end of day today"]), today
    if kind == "tomorrow":
        return rng.choice(["tomorrow", "tomorrow", "tmrw"]), today + dt.timedelta(days=1)
    if kind == "after_tomorrow":
        return "the day after tomorrow", today + dt.timedelta(days=2)
    if kind == "in_days":
        n = rng.randint(2, 10)
        word = rng.choice([str(n), NUMBER_WORDS[n]])
        return rng.choice([f"in {word} days", f"{word} days from now"]), today + dt.timedelta(days=n)
    if kind == "in_weeks":
        n = rng.randint(1, 3)
        phrase = rng.choice(["in a week", "a week from now", "in one week"]) if n == 1 else \
            rng.choice([f"in {n} weeks", f"in {NUMBER_WORDS[n]} weeks"])
        return phrase, today + dt.timedelta(days=7 * n)
    if kind == "weekday":
        weekday = rng.randrange(7)
        name = WEEKDAYS[weekday]
        return rng.choice([name, f"next {name}", f"this {name}"]), next_weekday(today, weekday)
    if kind == "end_of_month":
        return rng.choice(["end of month", "the end of the month", "end of this month"]), end_of_month(today)
    day = today + dt.timedelta(days=rng.randint(1, 90))
    if kind == "month_day":
        return _month_day(rng, day), day
    return day.isoformat(), day

