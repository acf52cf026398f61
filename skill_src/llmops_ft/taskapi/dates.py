"""Relative and absolute date phrases, each with the ISO date it means for a given 'today'.

The rules the targets follow (README states them too):
- "today"; "tomorrow" = +1; "the day after tomorrow" = +2; "in N days" = +N; "in N weeks" = +7N.
- "Friday", "this Friday", "next Friday": the first Friday strictly after today (1-7 days ahead).
- "the 6th", "on the 6th": the next 6th of a month on or after today (this month or the next).
- "Friday the 6th", "Fri March 6": the day the date names; the weekday only agrees with it.
- "end of month": the last day of today's month.
- "March 6", "6 March", "Mar 6th": the next March 6 on or after today. ISO "2026-03-06" is itself.

The system prompt gives today's date without its weekday, so a bare weekday ("by Friday") is the one kind a
small model cannot resolve by reading: it would need the calendar arithmetic. A weekday next to a day number
("Friday the 6th") is resolved from the number.
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


def _day_of_month(rng: random.Random, today: dt.date) -> tuple[str, dt.date]:
    # at most 27 days ahead, so no earlier date on or after today has the same day number
    day = today + dt.timedelta(days=rng.randint(0, 27))
    return rng.choice([f"the {_ordinal(day.day)}", f"on the {_ordinal(day.day)}"]), day


def _weekday_and_date(rng: random.Random, today: dt.date) -> tuple[str, dt.date]:
    day = today + dt.timedelta(days=rng.randint(1, 13))
    name = WEEKDAYS[day.weekday()]
    month = MONTHS[day.month - 1]
    forms = [f"{name} the {_ordinal(day.day)}", f"{name[:3]} {month} {day.day}", f"{name}, {month} {day.day}",
             f"{name} {_ordinal(day.day)}"]
    return rng.choice(forms), day


DATE_KINDS = ["today", "tomorrow", "after_tomorrow", "in_days", "in_weeks", "weekday", "weekday_date",
              "day_of_month", "end_of_month", "month_day", "iso"]
DATE_WEIGHTS = [4, 14, 3, 12, 6, 12, 8, 6, 6, 15, 14]


def date_phrase(rng: random.Random, today: dt.date) -> tuple[str, dt.date]:
    """A phrase naming a day at or after ``today`` and the date it means."""
    kind = rng.choices(DATE_KINDS, weights=DATE_WEIGHTS)[0]
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
    if kind == "weekday_date":
        return _weekday_and_date(rng, today)
    if kind == "day_of_month":
        return _day_of_month(rng, today)
    if kind == "end_of_month":
        return rng.choice(["end of month", "the end of the month", "end of this month"]), end_of_month(today)
    day = today + dt.timedelta(days=rng.randint(1, 90))
    if kind == "month_day":
        return _month_day(rng, day), day
    return day.isoformat(), day

