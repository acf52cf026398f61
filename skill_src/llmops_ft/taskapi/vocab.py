"""Word lists and phrase templates of the Task API example (data only; generate.py composes them).

Every list is split the same way: entries at positions 4, 9, 14, ... are held out of the training set
(``split_pool``), so the eval set meets titles, names and phrasings the model has not seen.
Templates are ``str.format`` strings; ``{title_lc}`` is a title with a lower-case first letter and is copied
into the target exactly as it appears in the message, like every other slot.
"""

from __future__ import annotations

TITLES = [
    "Write Q3 report", "Fix login bug", "Book flights to Berlin", "Update the onboarding guide", "Prepare board deck",
    "Call the insurance company", "Renew the SSL certificate", "Draft the hiring plan", "Review vendor contract",
    "Order new laptops", "Plan team offsite", "Migrate database to Postgres", "Send invoice to Acme",
    "Clean up old branches", "Write release notes", "Schedule dentist appointment", "Set up CI pipeline",
    "Interview backend candidate", "Refresh sales dashboard", "Translate landing page", "Pay electricity bill",
    "Archive 2024 tax documents", "Test checkout flow", "Email the landlord", "Rotate API keys",
    "Buy a birthday gift", "Organize design review", "Update privacy policy", "Backup the photo library",
    "Prepare demo for client", "Replace office printer toner", "Audit user permissions", "Fix broken image links",
    "Write blog post about pricing", "Benchmark search latency", "Collect expense receipts", "Reply to support tickets",
    "Upgrade Node version", "Design new logo", "Book meeting room", "Update team roadmap", "Submit conference talk",
    "Review pull requests", "Plan sprint retro", "Cancel unused subscriptions", "Add dark mode toggle",
    "Set up monitoring alerts", "Write unit tests for parser", "Prepare quarterly budget", "Call the plumber",
    "Publish job posting", "Sketch mobile wireframes", "Patch the payment service", "Refactor auth module",
    "Send thank-you notes", "Record product walkthrough", "Check visa requirements", "Update customer FAQ",
    "Merge duplicate contacts", "Negotiate office lease", "Run security scan", "Prepare training slides",
    "Compare cloud pricing", "Water the plants", "Reconcile bank statements", "Write API documentation",
    "Fix flaky integration test", "Plan product launch", "Ship version 2.1", "Tidy up the shared drive",
    "Follow up with Globex", "Review marketing copy", "Set up new hire accounts", "Pick up dry cleaning",
    "Draft newsletter", "Update dependencies", "Survey users about onboarding", "Fix typo on pricing page",
    "Prepare tax return", "Renew domain name", "Schedule one-on-ones", "Write postmortem for outage",
]

NAMES = [
    "Maria", "Ahmed", "Chen", "Priya", "Lukas", "Sofia", "Kwame", "Yuki", "Olga", "Diego", "Fatima", "Tom",
    "Aisha", "Mateo", "Ingrid", "Raj", "Elena", "Omar", "Hannah", "Jonas", "Mei", "Sam", "Nora", "Ivan",
    "Leila", "Pedro", "Zoe", "Kenji", "Amara", "Felix", "Maria Lopez", "Ben Carter", "Anna Schmidt", "Li Wei",
]

PROJECTS = [
    "finance", "marketing", "website", "mobile-app", "hiring", "infra", "q3-launch", "support", "legal",
    "design", "sales", "ops", "research", "docs", "onboarding", "billing", "data-platform", "security", "home",
    "personal",
]

TAGS = [
    "bug", "backend", "frontend", "blocked", "customer", "quick-win", "meeting", "review", "security",
    "follow-up", "release", "research", "ux", "data", "travel", "admin", "errand", "finance",
]

COMMENT_TEXTS = [
    "waiting on legal review", "first draft is in the shared folder", "blocked until the API keys arrive",
    "moved the meeting to Thursday", "customer confirmed the bug", "needs another round of edits",
    "half done, will finish tomorrow", "ping me when this is deployed", "budget approved by finance",
    "tested on staging, looks good", "vendor has not replied yet", "see the attached screenshot",
    "this depends on the database migration", "please double-check the numbers", "done except for the images",
    "asked Maria for input", "price went up by 10 percent", "can we split this into two tasks?",
    "the client wants it sooner", "logs show a timeout on checkout", "slides are ready for review",
    "found a cheaper option", "reminder sent twice already", "works on Android, not on iOS",
    "let's discuss in standup", "waiting for the signed contract", "copy approved, design pending",
    "low impact, can wait", "root cause was an expired token", "landlord will call back Monday",
    "three candidates shortlisted", "need the new brand colours", "tickets booked, hotel still open",
    "scan found two medium issues", "numbers updated for October", "should be quick",
]

ID_FORMS = ["task {n}", "task #{n}", "#{n}", "ticket {n}", "item {n}", "task number {n}", "card {n}"]

# How a request refers to a task without giving its id: the answer is then a clarifying question.
VAGUE_REFS = [
    "it", "the task", "that task", "this one", "the task about {title}", "my task", "that ticket",
    "the {title} task", "the last one", "the one we discussed",
]

PREFIXES = ["", "", "", "", "", "hey, ", "hi, ", "ok, ", "quick one: ", "hello! ", "um, ", "so ", "Hey "]
SUFFIXES = ["", "", "", "", "", " thanks", ", thanks!", " thx", ".", "!", " please", " ty", ", cheers"]

# --- create ---------------------------------------------------------------------------------------------
CREATE_CORES = [
    "add a task {title}", "add a task: {title}", "create a task called {title}", "create a new task \"{title}\"",
    "new task: {title}", "please add \"{title}\" to my tasks", "remind me to {title_lc}", "I need to {title_lc}",
    "put {title} on the list", "make a todo: {title}", "log a task to {title_lc}", "jot down: {title}",
    "track a new item, {title}", "set up a task named {title}", "todo: {title}", "open a ticket: {title}",
    "add \"{title}\"", "schedule a task to {title_lc}", "could you create a task \"{title}\"",
    "I have to {title_lc}, add it", "new todo {title}", "create task {title}", "add to my list: {title}",
    "can you add a task called \"{title}\"", "please create the task {title}",
]
CREATE_PROJECT = ["in {project}", "in the {project} project", "under {project}", "for project {project}",
                  "project {project}", "project: {project}", "in project {project}", "file it under {project}"]
CREATE_ASSIGNEE = ["for {name}", "assigned to {name}", "and assign it to {name}", "owner {name}",
                   "give it to {name}", "assignee {name}", "{name} will do it"]
DUE = ["due {due}", "by {due}", "deadline {due}", "due date {due}", "it's due {due}", "needs to be done by {due}",
       "finish by {due}"]
PRIORITY = ["{prio} priority", "priority {prio}", "mark it {prio}", "priority: {prio}", "it's {prio} priority",
            "set priority to {prio}", "{prio} prio"]
# Phrases that name a priority without the word itself.
PRIORITY_IDIOMS = [("it's urgent", "urgent"), ("asap", "urgent"), ("no rush", "low"), ("whenever, low prio", "low"),
                   ("this is important, high priority", "high"), ("normal priority", "medium"),
                   ("super urgent", "urgent"), ("not urgent, low priority", "low")]
TAGS_PHRASES = ["tag it {tags}", "tags: {tags}", "tagged {tags}", "with tags {tags}", "label it {tags}",
                "labels {tags}", "add the tags {tags}"]
# A bare space is not a joiner: "add a task Draft budget project finance" has no title boundary.
JOINERS = [", ", ", ", ", ", "; ", " and ", ", and "]

# --- list -----------------------------------------------------------------------------------------------
LIST_VERBS = ["show", "show me", "list", "list all", "what are the", "give me the", "display", "pull up", "find",
              "get", "can you list the", "I want to see the", "show all", "which are the"]
LIST_NOUNS = ["tasks", "todos", "items", "tickets", "tasks", "tasks"]
STATUS_WORDS = {"open": ["open", "pending", "unfinished", "active", "incomplete"],
                "done": ["done", "completed", "finished", "closed"]}
LIST_PRIORITY = ["{prio} priority", "{prio}-priority", "{prio}"]
LIST_PROJECT = ["in {project}", "in the {project} project", "for {project}", "under {project}",
                "from project {project}"]
LIST_ASSIGNEE = ["assigned to {name}", "for {name}", "owned by {name}", "that {name} has", "on {name}'s plate",
                 "of {name}"]
LIST_TAG = ["tagged {tag}", "with the {tag} tag", "labelled {tag}", "with tag {tag}", "marked {tag}"]
LIST_DUE_BEFORE = ["due before {due}", "with a deadline before {due}", "due earlier than {due}"]
LIST_DUE_AFTER = ["due after {due}", "due later than {due}", "with a deadline after {due}"]
LIST_ALL = ["list all tasks", "show everything", "show me all my tasks", "what's on the list?", "all tasks please",
            "what do we have?", "list tasks", "show the whole task list", "give me every task"]
OVERDUE = ["what's overdue", "show overdue tasks", "anything overdue", "list overdue items", "which tasks are late"]

# --- update ---------------------------------------------------------------------------------------------
UPDATE_CORES = ["update {id}: {changes}", "change {id}: {changes}", "edit {id}, {changes}", "for {id}, {changes}",
                "on {id} {changes}", "{id}: {changes}", "please update {id} - {changes}", "modify {id}: {changes}",
                "can you change {id}? {changes}", "tweak {id}: {changes}"]
UPDATE_TITLE = ["rename it to \"{title}\"", "change the title to \"{title}\"", "new title \"{title}\"",
                "call it \"{title}\"", "retitle it \"{title}\""]
UPDATE_PROJECT = ["move it to {project}", "move it to the {project} project", "project {project}",
                  "put it under {project}", "switch project to {project}"]
UPDATE_DUE = ["change the due date to {due}", "push it to {due}", "move the deadline to {due}", "due {due}",
              "reschedule to {due}", "make it due {due}", "new deadline {due}"]
UPDATE_PRIORITY = ["set priority to {prio}", "make it {prio} priority", "bump it to {prio}", "priority {prio}",
                   "change priority to {prio}", "it's {prio} now"]
UPDATE_TAGS = ["set tags to {tags}", "retag it {tags}", "tags {tags}", "replace the tags with {tags}",
               "tags should be {tags}"]
# One change said in one sentence, without the "update X:" frame.
UPDATE_DIRECT = {
    "due": ["push {id} to {due}", "change the due date of {id} to {due}", "move {id} to {due}",
            "reschedule {id} for {due}", "{id} is now due {due}", "postpone {id} until {due}"],
    "project": ["move {id} to the {project} project", "put {id} in {project}", "{id} belongs in {project}",
                "transfer {id} to project {project}"],
    "title": ["rename {id} to \"{title}\"", "retitle {id} as \"{title}\"", "change the name of {id} to \"{title}\""],
    "priority": ["make {id} {prio} priority", "set the priority of {id} to {prio}", "bump {id} to {prio}",
                 "{id} is {prio} priority now"],
    "tags": ["tag {id} {tags}", "set the tags of {id} to {tags}", "label {id} {tags}"],
}

# --- the id-only actions ------------------------------------------------------------------------------------
COMPLETE = ["mark {id} as done", "mark {id} done", "complete {id}", "{id} is done", "close {id}", "finished {id}",
            "I finished {id}", "check off {id}", "{id} done", "done with {id}", "please close out {id}",
            "set {id} to complete", "tick off {id}", "resolve {id}", "mark {id} as completed", "{id} is finished",
            "we're done with {id}", "mark {id} complete"]
DELETE = ["delete {id}", "remove {id}", "trash {id}", "get rid of {id}", "drop {id}", "please delete {id}",
          "{id} can be deleted", "scrap {id}", "discard {id}", "erase {id}", "{id} is no longer needed, delete it",
          "remove {id} from the list", "delete {id} please", "throw away {id}", "kill {id}, we don't need it"]
ASSIGN = ["assign {id} to {name}", "give {id} to {name}", "{name} should take {id}", "hand {id} over to {name}",
          "reassign {id} to {name}", "let {name} handle {id}", "put {name} on {id}", "{id} goes to {name}",
          "make {name} the owner of {id}", "can {name} take {id}?", "delegate {id} to {name}",
          "assign {name} to {id}", "{name} will own {id}", "set the assignee of {id} to {name}"]
COMMENT = ["comment on {id}: {text}", "add a comment to {id}: {text}", "note on {id}: {text}",
           "add a note to {id} saying \"{text}\"", "on {id} write: {text}", "leave a comment on {id} - {text}",
           "{id}: add comment \"{text}\"", "reply on {id}: {text}", "post on {id}: {text}",
           "update {id} with a comment: {text}", "comment \"{text}\" on {id}", "add to {id} the note: {text}"]

# --- clarify ----------------------------------------------------------------------------------------------
# The question asked for each missing detail is fixed, so the model can learn it exactly.
ASK_ID = {
    "complete": "Which task should I mark as done? Please give its id.",
    "delete": "Which task should I delete? Please give its id.",
    "update": "Which task should I update? Please give its id.",
    "assign": "Which task should I assign? Please give its id.",
    "comment": "Which task should I comment on? Please give its id.",
}
ASK_TITLE = "What should the new task be called?"
ASK_ASSIGNEE = "Who should I assign task {n} to?"
ASK_TEXT = "What should the comment on task {n} say?"
ASK_CHANGE = "What should I change on task {n}?"

CREATE_NO_TITLE = ["add a task", "create a new task", "new task please", "make a task", "I need a new task",
                   "add something to my list", "create a task for me", "open a new ticket", "add a todo"]
ASSIGN_NO_NAME = ["assign {id}", "reassign {id}", "give {id} to someone", "{id} needs an owner",
                  "assign {id} to somebody else", "who takes {id}? assign it", "hand off {id}"]
COMMENT_NO_TEXT = ["comment on {id}", "add a comment to {id}", "leave a note on {id}", "I want to comment on {id}",
                   "add a note to {id}", "post a comment on {id}"]
UPDATE_NO_CHANGE = ["update {id}", "change {id}", "edit {id}", "I need to modify {id}", "make some changes to {id}",
                    "{id} needs an update"]

# The user's second turn after a clarifying question.
REPLY_ID = ["{id}", "it's {id}", "{id}, sorry", "the id is {n}", "{n}", "oh, {id}", "I meant {id}"]
REPLY_NAME = ["{name}", "to {name}", "give it to {name}", "{name} please", "{name} can do it"]
REPLY_TEXT = ["{text}", "say: {text}", "\"{text}\"", "write {text}"]
REPLY_TITLE = ["{title}", "call it \"{title}\"", "title: {title}", "\"{title}\"", "name it {title}"]

SYSTEM_PROMPT = "Today is {date}. Reply with one Task API call as JSON; use clarify if a detail is missing."


def split_pool(items: list, split: str) -> list:
    """The part of ``items`` a split may use: train leaves out every 5th entry, eval may use all of them."""
    if split == "eval":
        return items
    return [item for i, item in enumerate(items) if i % 5 != 4]


def held_out(items: list) -> list:
    """The entries only the eval split may use."""
    return [item for i, item in enumerate(items) if i % 5 == 4]
