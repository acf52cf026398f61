"""Seeded generator of Task API conversations: system prompt with today's date, user request, JSON call.

``generate(seed, n_train, n_eval)`` is deterministic: one ``random.Random`` per split seeded from a string,
lists in fixed order, no clock. The eval split is drawn first, may use held-out titles, names and phrasings
(see vocab.split_pool), and no user message of it appears anywhere in the training split.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import vocab as V
from .dates import date_phrase, end_of_month
from .schema import encode_call, schema_errors

DEFAULT_SEED = 7
# 1400: 300 steps then see about every row once; measured with lr 2e-3 on the eval set, 66.7% exact call against
# 60.7% with the first 800 rows (benchmarks/RECIPE.md). The demo trains 600 steps on them since stop 18.
DEFAULT_N_TRAIN = 1400
DEFAULT_N_EVAL = 150

FIRST_DAY = dt.date(2025, 1, 1)
DAYS_SPAN = 3 * 365  # reference dates ("today") fall in 2025-2027
TYPO_RATE = 0.04  # per template fragment; slot values (titles, names, ids) are never misspelt
EVAL_HELD_OUT_RATE = 0.35  # how often an eval draw takes a held-out entry rather than any entry
# Training data only (eval keeps the plain distribution): dates are the hardest fields, so train asks for them
# more often, and more of its reference dates fall at a month's end, where "tomorrow" changes the month.
DATE_FIELDS = ("due", "due_before", "due_after")
TRAIN_DATE_BOOST = 1.0
TRAIN_MONTH_END_RATE = 0.0

Turn = tuple[str, dict[str, Any]]  # (user text, the assistant's call)
AFTER_PREPOSITION = re.compile(r"\b(by|before|after|until|to|than|for) \{due\}")


@dataclass
class Ctx:
    """Random choices for one conversation of one split, relative to its reference date."""

    rng: random.Random
    split: str
    today: dt.date

    def rate(self, field: str, p: float) -> float:
        """How often this split includes ``field`` when the plain rate is ``p`` (train asks for more dates)."""
        return min(0.95, p * TRAIN_DATE_BOOST) if self.split == "train" and field in DATE_FIELDS else p

    def pick(self, items: list) -> Any:
        """One entry of ``items`` allowed in this split (eval prefers held-out entries now and then)."""
        held = V.held_out(items)
        if self.split == "eval" and held and self.rng.random() < EVAL_HELD_OUT_RATE:
            return self.rng.choice(held)
        return self.rng.choice(V.split_pool(items, self.split))

    def fmt(self, template: str, **slots: Any) -> str:
        """Fill ``template``, now and then with a typo in one of its own words."""
        if self.rng.random() < TYPO_RATE:
            template = typo(self.rng, template)
        return template.format(**slots)

    def task_id(self) -> tuple[str, int]:
        """How the user names a task by id, and the id."""
        n = self.rng.randint(1, 999) if self.rng.random() < 0.8 else self.rng.randint(1, 60)
        return self.rng.choice(V.ID_FORMS).format(n=n), n

    def vague_ref(self) -> str:
        """A reference to a task that gives no id."""
        return self.pick(V.VAGUE_REFS).format(title=self.pick(V.TITLES))

    def title_for(self, template: str) -> str:
        """A title, lower-cased at its first letter when the template asks for ``{title_lc}``."""
        title = self.pick(V.TITLES)
        return title[0].lower() + title[1:] if "{title_lc}" in template else title

    def tags(self) -> tuple[str, list[str]]:
        """One to three distinct tags and the way the user lists them."""
        pool = V.split_pool(V.TAGS, self.split)
        tags = self.rng.sample(pool, self.rng.choice([1, 1, 1, 2, 2, 3]))
        if len(tags) == 1:
            return tags[0], tags
        forms = [", ".join(tags), " and ".join(tags), " ".join("#" + t for t in tags),
                 ", ".join(tags[:-1]) + " and " + tags[-1]]
        return self.rng.choice(forms), tags

    def due(self) -> tuple[str, str]:
        """A date phrase and its ISO date."""
        phrase, day = date_phrase(self.rng, self.today)
        return phrase, day.isoformat()


def typo(rng: random.Random, template: str) -> str:
    """Swap, drop or double one letter of one plain word (of 4+ letters) of ``template``."""
    words = template.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return template
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == 1:
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


# --- fields shared by create and update: (fragment text, value) -------------------------------------------
# ``extra`` fills other slots of the template, such as {id} in "push {id} to {due}".
def _project(ctx: Ctx, templates: list[str], **extra: str) -> tuple[str, str]:
    project = ctx.pick(V.PROJECTS)
    return ctx.fmt(ctx.pick(templates), project=project, **extra), project


def _assignee(ctx: Ctx, templates: list[str], **extra: str) -> tuple[str, str]:
    name = ctx.pick(V.NAMES)
    return ctx.fmt(ctx.pick(templates), name=name, **extra), name


def _due(ctx: Ctx, templates: list[str], **extra: str) -> tuple[str, str]:
    template = ctx.pick(templates)
    phrase, iso = ctx.due()
    if AFTER_PREPOSITION.search(template):
        if phrase.startswith("in "):
            phrase = phrase[3:] + " from now"  # "by in 3 days" reads wrong; "by 3 days from now" does not
        elif phrase.startswith("on "):
            phrase = phrase[3:]  # "until the 6th", not "until on the 6th"
    return ctx.fmt(template, due=phrase, **extra), iso


def _priority(ctx: Ctx, templates: list[str], **extra: str) -> tuple[str, str]:
    if not extra and ctx.rng.random() < 0.2:
        return ctx.pick(V.PRIORITY_IDIOMS)
    prio = ctx.rng.choice(["low", "medium", "high", "high", "urgent"])
    return ctx.fmt(ctx.pick(templates), prio=prio, **extra), prio


def _tags(ctx: Ctx, templates: list[str], **extra: str) -> tuple[str, list[str]]:
    phrase, tags = ctx.tags()
    return ctx.fmt(ctx.pick(templates), tags=phrase, **extra), tags


def _title(ctx: Ctx, templates: list[str], **extra: str) -> tuple[str, str]:
    template = ctx.pick(templates)
    title = ctx.title_for(template)
    return ctx.fmt(template, title=title, title_lc=title, **extra), title


FieldMaker = Callable[..., tuple[str, Any]]
CREATE_FIELDS: list[tuple[str, float, FieldMaker, list[str]]] = [
    ("project", 0.4, _project, V.CREATE_PROJECT),
    ("due", 0.5, _due, V.DUE),
    ("priority", 0.3, _priority, V.PRIORITY),
    ("tags", 0.15, _tags, V.TAGS_PHRASES),
    ("assignee", 0.15, _assignee, V.CREATE_ASSIGNEE),
]
UPDATE_FIELDS: dict[str, tuple[float, FieldMaker, list[str]]] = {
    "due": (0.35, _due, V.UPDATE_DUE),
    "priority": (0.25, _priority, V.UPDATE_PRIORITY),
    "project": (0.15, _project, V.UPDATE_PROJECT),
    "title": (0.15, _title, V.UPDATE_TITLE),
    "tags": (0.10, _tags, V.UPDATE_TAGS),
}


def _join(ctx: Ctx, head: str, fragments: list[str]) -> str:
    """``head`` and the fragments, joined; never "and" right after a title (titles hold "and" too) or before "and"."""
    text = head
    for i, fragment in enumerate(fragments):
        joiners = V.JOINERS
        if (i == 0 and head.endswith(FREE_TEXTS)) or fragment.startswith("and "):
            joiners = [j for j in joiners if "and" not in j]
        text += ctx.pick(joiners) + fragment
    return text


def _create_fields(ctx: Ctx, most: int = len(CREATE_FIELDS)) -> tuple[list[str], dict[str, Any]]:
    """Up to ``most`` optional create fields in random order: their fragments and values."""
    chosen = [f for f in CREATE_FIELDS if ctx.rng.random() < ctx.rate(f[0], f[1])]
    ctx.rng.shuffle(chosen)
    fragments, values = [], {}
    for name, _, make, templates in chosen[:most]:
        fragment, values[name] = make(ctx, templates)
        fragments.append(fragment)
    return fragments, values


# --- one builder per action: (user text, call) ------------------------------------------------------------
def build_create(ctx: Ctx) -> Turn:
    """A create request with a title and zero or more optional fields."""
    core = ctx.pick(V.CREATE_CORES)
    title = ctx.title_for(core)
    fragments, values = _create_fields(ctx)
    text = _join(ctx, ctx.fmt(core, title=title, title_lc=title), fragments)
    return text, {"action": "create", "title": title, **values}


def build_list(ctx: Ctx) -> Turn:
    """A list request with zero or more filters."""
    rng = ctx.rng
    if rng.random() < 0.06:
        return ctx.fmt(ctx.pick(V.OVERDUE)), {"action": "list", "status": "open",
                                              "due_before": ctx.today.isoformat()}
    call: dict[str, Any] = {"action": "list"}
    chance = {"status": 0.35, "priority": 0.2, "project": 0.35, "assignee": 0.3, "tag": 0.15,
              "due_before": 0.15, "due_after": 0.07}
    wanted = [name for name, p in chance.items() if rng.random() < ctx.rate(name, p)]
    if not wanted and rng.random() < 0.5:
        return ctx.fmt(ctx.pick(V.LIST_ALL)), call
    words = [ctx.pick(V.LIST_VERBS)]
    after: list[str] = []
    if "status" in wanted:
        call["status"] = rng.choice(["open", "done"])
        words.append(ctx.pick(V.STATUS_WORDS[call["status"]]))
    if "priority" in wanted:
        call["priority"] = rng.choice(["low", "medium", "high", "urgent"])
        words.append(ctx.fmt(ctx.pick(V.LIST_PRIORITY), prio=call["priority"]))
    words.append(ctx.pick(V.LIST_NOUNS))
    makers = {"project": (_project, V.LIST_PROJECT), "assignee": (_assignee, V.LIST_ASSIGNEE),
              "due_before": (_due, V.LIST_DUE_BEFORE), "due_after": (_due, V.LIST_DUE_AFTER)}
    for name in wanted:
        if name in makers:
            make, templates = makers[name]
            fragment, call[name] = make(ctx, templates)
            after.append(fragment)
        elif name == "tag":
            call["tag"] = ctx.pick(V.TAGS)
            after.append(ctx.fmt(ctx.pick(V.LIST_TAG), tag=call["tag"]))
    if call.get("due_after", "") >= call.get("due_before", "9999"):
        # an empty window makes no sense: keep only the upper bound (due_after was the last fragment added)
        del call["due_after"]
        after.pop()
    rng.shuffle(after)
    return " ".join(words + after), call


def build_update(ctx: Ctx, ref: str, task: int | None) -> Turn:
    """An update of one to three fields of a task."""
    rng = ctx.rng
    names = list(UPDATE_FIELDS)
    weights = [ctx.rate(n, UPDATE_FIELDS[n][0]) for n in names]
    k = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
    chosen: list[str] = []
    while len(chosen) < k:
        name = rng.choices(names, weights=weights)[0]
        if name not in chosen:
            chosen.append(name)
    call: dict[str, Any] = {"action": "update", **_with_id(task)}
    if k == 1 and rng.random() < 0.55:
        name = chosen[0]
        template = ctx.pick(V.UPDATE_DIRECT[name])
        _, make, _ = UPDATE_FIELDS[name]
        text, call[name] = make(ctx, [template], id=ref)
        return text, call
    fragments = []
    for name in chosen:
        _, make, templates = UPDATE_FIELDS[name]
        fragment, call[name] = make(ctx, templates)
        fragments.append(fragment)
    changes = ctx.rng.choice([", ", " and ", "; "]).join(fragments)
    return ctx.fmt(ctx.pick(V.UPDATE_CORES), id=ref, changes=changes), call


def build_complete(ctx: Ctx, ref: str, task: int | None) -> Turn:
    """Mark a task done."""
    return ctx.fmt(ctx.pick(V.COMPLETE), id=ref), {"action": "complete", **_with_id(task)}


def build_delete(ctx: Ctx, ref: str, task: int | None) -> Turn:
    """Delete a task."""
    return ctx.fmt(ctx.pick(V.DELETE), id=ref), {"action": "delete", **_with_id(task)}


def build_assign(ctx: Ctx, ref: str, task: int | None) -> Turn:
    """Assign a task to someone."""
    name = ctx.pick(V.NAMES)
    return ctx.fmt(ctx.pick(V.ASSIGN), id=ref, name=name), {"action": "assign", **_with_id(task), "assignee": name}


def build_comment(ctx: Ctx, ref: str, task: int | None) -> Turn:
    """Comment on a task."""
    text = ctx.pick(V.COMMENT_TEXTS)
    return ctx.fmt(ctx.pick(V.COMMENT), id=ref, text=text), {"action": "comment", **_with_id(task), "text": text}


def _with_id(task: int | None) -> dict[str, int]:
    return {} if task is None else {"id": task}


ID_BUILDERS: dict[str, Callable[[Ctx, str, int | None], Turn]] = {
    "update": build_update, "complete": build_complete, "delete": build_delete,
    "assign": build_assign, "comment": build_comment,
}


# --- clarifying questions: the first turn lacks a required detail; a second turn may give it ----------------
def _clarify(question: str) -> dict[str, str]:
    return {"action": "clarify", "question": question}


def clarify_missing_id(ctx: Ctx) -> tuple[Turn, Callable[[], Turn]]:
    """An id action on a task named without its id."""
    action = ctx.rng.choice(sorted(ID_BUILDERS))
    text, call = ID_BUILDERS[action](ctx, ctx.vague_ref(), None)

    def answer() -> Turn:
        ref, task = ctx.task_id()
        return ctx.fmt(ctx.pick(V.REPLY_ID), id=ref, n=task), {**call, "id": task}

    return (text, _clarify(V.ASK_ID[action])), answer


def clarify_missing_title(ctx: Ctx) -> tuple[Turn, Callable[[], Turn]]:
    """A create request with fields but no title."""
    fragments, values = _create_fields(ctx, most=2)
    text = _join(ctx, ctx.fmt(ctx.pick(V.CREATE_NO_TITLE)), fragments)

    def answer() -> Turn:
        template = ctx.pick(V.REPLY_TITLE)
        title = ctx.title_for(template)
        return ctx.fmt(template, title=title, title_lc=title), {"action": "create", "title": title, **values}

    return (text, _clarify(V.ASK_TITLE)), answer


def clarify_missing_detail(ctx: Ctx) -> tuple[Turn, Callable[[], Turn]]:
    """An assign without assignee, a comment without text or an update without a change."""
    ref, task = ctx.task_id()
    kind = ctx.rng.choice(["assign", "comment", "update"])
    if kind == "assign":
        first = ctx.fmt(ctx.pick(V.ASSIGN_NO_NAME), id=ref), _clarify(V.ASK_ASSIGNEE.format(n=task))

        def answer() -> Turn:
            name = ctx.pick(V.NAMES)
            return ctx.fmt(ctx.pick(V.REPLY_NAME), name=name), {"action": "assign", "id": task, "assignee": name}
    elif kind == "comment":
        first = ctx.fmt(ctx.pick(V.COMMENT_NO_TEXT), id=ref), _clarify(V.ASK_TEXT.format(n=task))

        def answer() -> Turn:
            text = ctx.pick(V.COMMENT_TEXTS)
            return ctx.fmt(ctx.pick(V.REPLY_TEXT), text=text), {"action": "comment", "id": task, "text": text}
    else:
        first = ctx.fmt(ctx.pick(V.UPDATE_NO_CHANGE), id=ref), _clarify(V.ASK_CHANGE.format(n=task))

        def answer() -> Turn:
            name = ctx.rng.choice(["due", "priority", "project"])
            _, make, templates = UPDATE_FIELDS[name]
            text, value = make(ctx, templates)
            return text, {"action": "update", "id": task, name: value}

    return first, answer


CLARIFIERS = [(clarify_missing_id, 5), (clarify_missing_title, 2), (clarify_missing_detail, 3)]


# --- conversations ----------------------------------------------------------------------------------------
def _turns(ctx: Ctx) -> list[Turn]:
    rng = ctx.rng
    kind = rng.choices(
        ["create", "list", "update", "complete", "delete", "assign", "comment", "clarify", "clarify2"],
        weights=[22, 15, 13, 9, 7, 9, 8, 12, 5],
    )[0]
    if kind == "create":
        return [build_create(ctx)]
    if kind == "list":
        return [build_list(ctx)]
    if kind in ID_BUILDERS:
        ref, task = ctx.task_id()
        return [ID_BUILDERS[kind](ctx, ref, task)]
    clarifier = rng.choices([c for c, _ in CLARIFIERS], weights=[w for _, w in CLARIFIERS])[0]
    first, answer = clarifier(ctx)
    return [first, answer()] if kind == "clarify2" else [first]


FREE_TEXTS = tuple(V.COMMENT_TEXTS + V.TITLES + [t[0].lower() + t[1:] for t in V.TITLES])


def _dress(ctx: Ctx, text: str) -> str:
    """Greeting, sign-off and a capital first letter, some of the time.

    No sign-off after a request that ends in free text (a title, a comment): in "... see the screenshot thanks"
    nobody could tell whether "thanks" belongs to the comment.
    """
    text = ctx.pick(V.PREFIXES) + text + ("" if text.endswith(FREE_TEXTS) else ctx.pick(V.SUFFIXES))
    if ctx.rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text


def system_prompt(today: dt.date) -> str:
    """The short system prompt that states the reference date (ISO only: Ollama's ``currentDate`` gives no weekday)."""
    return V.SYSTEM_PROMPT.format(date=today.isoformat())


def draw_today(rng: random.Random, split: str) -> dt.date:
    """A reference date in 2025-2027; for train, now and then one of a month's last three days."""
    today = FIRST_DAY + dt.timedelta(days=rng.randrange(DAYS_SPAN))
    if split == "train" and rng.random() < TRAIN_MONTH_END_RATE:
        today = end_of_month(today) - dt.timedelta(days=rng.randrange(3))
    return today


def conversation(rng: random.Random, split: str) -> dict[str, list[dict[str, str]]]:
    """One conversation row: system prompt, then user/assistant turns whose answers are canonical calls."""
    ctx = Ctx(rng, split, draw_today(rng, split))
    today = ctx.today
    turns = _turns(ctx)
    messages = [{"role": "system", "content": system_prompt(today)}]
    for i, (text, call) in enumerate(turns):
        errors = schema_errors(call)
        if errors:
            raise AssertionError(f"generator bug: {call} breaks the schema: {errors}")
        messages.append({"role": "user", "content": _dress(ctx, text) if i == 0 else text})
        messages.append({"role": "assistant", "content": encode_call(call)})
    return {"messages": messages}


def user_messages(row: dict) -> list[str]:
    """The user messages of a row, whitespace-normalised and case-folded (the key for disjointness)."""
    return [" ".join(m["content"].split()).casefold() for m in row["messages"] if m["role"] == "user"]


def _sample(split: str, seed: int, n: int, exclude: set[str]) -> list[dict]:
    rng = random.Random(f"taskapi-{split}-{seed}")
    rows: list[dict] = []
    seen: set[tuple[str, ...]] = set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not draw {n} distinct {split} conversations")
        row = conversation(rng, split)
        key = tuple(user_messages(row))
        if key in seen or exclude.intersection(key):
            continue
        seen.add(key)
        rows.append(row)
    return rows


def generate(seed: int = DEFAULT_SEED, n_train: int = DEFAULT_N_TRAIN,
             n_eval: int = DEFAULT_N_EVAL) -> tuple[list[dict], list[dict]]:
    """``(train_rows, eval_rows)``: conversations, eval drawn first and no eval user message in train."""
    eval_rows = _sample("eval", seed, n_eval, exclude=set())
    eval_messages = {m for row in eval_rows for m in user_messages(row)}
    train_rows = _sample("train", seed, n_train, exclude=eval_messages)
    return train_rows, eval_rows
