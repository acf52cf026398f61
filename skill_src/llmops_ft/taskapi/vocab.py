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
    "Order team t-shirts", "Fix the CSV export", "Book a table for the team dinner", "Update the security policy",
    "Write the Q4 OKRs", "Move the staging server", "Call mom", "Review the hiring funnel", "Install the new router",
    "Print boarding passes", "Ship the hotfix for search", "Clean the fridge", "Draft the partnership proposal",
    "Rename the Slack channels", "Pay the car insurance", "Send the March newsletter", "Set up SSO for Okta",
    "Buy printer paper", "Check the backup logs", "Finalize the conference agenda", "Write the user survey",
    "Fix the memory leak in the worker", "Book the team lunch", "Publish the changelog", "Cancel the gym membership",
    "Update the README", "Plan the holiday party", "Prepare the investor update", "Fix the date picker on mobile",
    "Reply to the auditor", "Measure page load time", "Renew the car registration", "Sort the inbox",
    "Onboard the new designer", "Collect feedback from beta users", "Return the library books",
]

NAMES = [
    "Maria", "Ahmed", "Chen", "Priya", "Lukas", "Sofia", "Kwame", "Yuki", "Olga", "Diego", "Fatima", "Tom",
    "Aisha", "Mateo", "Ingrid", "Raj", "Elena", "Omar", "Hannah", "Jonas", "Mei", "Sam", "Nora", "Ivan",
    "Leila", "Pedro", "Zoe", "Kenji", "Amara", "Felix", "Maria Lopez", "Ben Carter", "Anna Schmidt", "Li Wei",
    "Carlos", "Nadia", "Viktor", "Asha", "Emma", "Luca", "Grace", "Hiroshi", "Sara", "Tariq", "Julia", "Noah",
    "Ravi", "Chloe", "Mohammed", "Lena", "Arjun", "Beatriz", "Oscar", "Mia", "Daniel Kim", "Fatou Diallo",
    "Jack O'Brien", "Sven", "Alice", "Kofi",
]

PROJECTS = [
    "finance", "marketing", "website", "mobile-app", "hiring", "infra", "q3-launch", "support", "legal",
    "design", "sales", "ops", "research", "docs", "onboarding", "billing", "data-platform", "security", "home",
    "personal", "api", "events", "platform", "growth", "hr", "analytics", "travel", "garden", "q4-planning",
    "customer-success", "partnerships", "brand", "ios", "android", "compliance-2026",
]

TAGS = [
    "bug", "backend", "frontend", "blocked", "customer", "quick-win", "meeting", "review", "security",
    "follow-up", "release", "research", "ux", "data", "travel", "admin", "errand", "finance",
    "urgent-fix", "docs", "infra", "design", "tech-debt", "p1", "ops", "legal", "mobile", "perf", "qa", "home",
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
    "Chen is on it", "pushed to next sprint", "the fix is in review", "need access to the repo first",
    "client approved the quote", "added screenshots to the doc", "QA found a regression",
    "waiting for Ahmed to reply", "call scheduled for Tuesday", "draft sent to the team",
    "invoice is attached", "cost is 400 dollars", "still reproducing on Safari", "moved to the new board",
    "this blocks the release", "let's do it after the launch", "numbers look off, check again",
    "done, needs a final review",
]

ID_FORMS = ["task {n}", "task #{n}", "#{n}", "ticket {n}", "item {n}", "task number {n}", "card {n}",
            "ticket #{n}", "task no. {n}", "issue {n}"]

# How a request refers to a task without giving its id: the answer is then a clarifying question.
VAGUE_REFS = [
    "it", "the task", "that task", "this one", "the task about {title}", "my task", "that ticket",
    "the {title} task", "the last one", "the one we discussed", "the one about {title}", "that thing",
    "the earlier one", "the {title} ticket", "the one I added yesterday",
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
    "add a new task: {title}", "create a todo called {title}", "new item: {title}", "please track \"{title}\"",
    "don't let me forget to {title_lc}", "note down a task: {title}", "make a new ticket called {title}",
    "register a task \"{title}\"", "can you log \"{title}\"", "add an item called {title}",
    "task: {title}", "I want a new task, {title}", "remember to {title_lc}", "create \"{title}\"",
]
CREATE_PROJECT = ["in {project}", "in the {project} project", "under {project}", "for project {project}",
                  "project {project}", "project: {project}", "in project {project}", "file it under {project}",
                  "for the {project} project", "it belongs to {project}", "inside {project}"]
CREATE_ASSIGNEE = ["for {name}", "assigned to {name}", "and assign it to {name}", "owner {name}",
                   "give it to {name}", "assignee {name}", "{name} will do it", "owned by {name}",
                   "{name} is on it", "for {name} to do", "let {name} take it"]
DUE = ["due {due}", "by {due}", "deadline {due}", "due date {due}", "it's due {due}", "needs to be done by {due}",
       "finish by {due}", "deadline is {due}", "due by {due}", "no later than {due}", "complete it by {due}",
       "it has to be finished by {due}"]
PRIORITY = ["{prio} priority", "priority {prio}", "mark it {prio}", "priority: {prio}", "it's {prio} priority",
            "set priority to {prio}", "{prio} prio", "priority is {prio}", "make it {prio} priority",
            "{prio} importance"]
# Phrases that name a priority without the word itself.
PRIORITY_IDIOMS = [("it's urgent", "urgent"), ("asap", "urgent"), ("no rush", "low"), ("whenever, low prio", "low"),
                   ("this is important, high priority", "high"), ("normal priority", "medium"),
                   ("super urgent", "urgent"), ("not urgent, low priority", "low"), ("it's critical", "urgent"),
                   ("fairly important", "high"), ("low on the list", "low"), ("very important", "high"),
                   ("medium priority is fine", "medium"), ("right away", "urgent")]
TAGS_PHRASES = ["tag it {tags}", "tags: {tags}", "tagged {tags}", "with tags {tags}", "label it {tags}",
                "labels {tags}", "add the tags {tags}", "tag: {tags}", "with the tags {tags}",
                "label: {tags}"]
# A bare space is not a joiner: "add a task Draft budget project finance" has no title boundary.
JOINERS = [", ", ", ", ", ", "; ", " and ", ", and "]

# --- list -----------------------------------------------------------------------------------------------
LIST_VERBS = ["show", "show me", "list", "list all", "what are the", "give me the", "display", "pull up", "find",
              "get", "can you list the", "I want to see the", "show all", "which are the", "bring up the",
              "fetch the", "look up the", "tell me the", "what are my", "are there any", "search for",
              "could you show the"]
LIST_NOUNS = ["tasks", "todos", "items", "tickets", "tasks", "tasks"]
STATUS_WORDS = {"open": ["open", "pending", "unfinished", "active", "incomplete"],
                "done": ["done", "completed", "finished", "closed"]}
LIST_PRIORITY = ["{prio} priority", "{prio}-priority", "{prio}"]
LIST_PROJECT = ["in {project}", "in the {project} project", "for {project}", "under {project}",
                "from project {project}", "within {project}", "belonging to {project}",
                "in project {project}"]
LIST_ASSIGNEE = ["assigned to {name}", "for {name}", "owned by {name}", "that {name} has", "on {name}'s plate",
                 "of {name}", "{name} is working on", "{name} owns", "with {name} as assignee",
                 "that belong to {name}"]
LIST_TAG = ["tagged {tag}", "with the {tag} tag", "labelled {tag}", "with tag {tag}", "marked {tag}",
            "carrying the tag {tag}", "with label {tag}"]
LIST_DUE_BEFORE = ["due before {due}", "with a deadline before {due}", "due earlier than {due}",
                   "that must be done before {due}", "due no later than {due}"]
LIST_DUE_AFTER = ["due after {due}", "due later than {due}", "with a deadline after {due}",
                  "not due until after {due}", "due some time after {due}"]
LIST_ALL = ["list all tasks", "show everything", "show me all my tasks", "what's on the list?", "all tasks please",
            "what do we have?", "list tasks", "show the whole task list", "give me every task",
            "list everything", "what tasks are there?", "show my whole list", "what's in the tracker?",
            "everything on my list please", "dump the task list"]
OVERDUE = ["what's overdue", "show overdue tasks", "anything overdue", "list overdue items", "which tasks are late",
           "what is late?", "overdue tasks please", "what did we miss the deadline on?",
           "which open tasks are overdue"]

# --- update ---------------------------------------------------------------------------------------------
UPDATE_CORES = ["update {id}: {changes}", "change {id}: {changes}", "edit {id}, {changes}", "for {id}, {changes}",
                "on {id} {changes}", "{id}: {changes}", "please update {id} - {changes}", "modify {id}: {changes}",
                "can you change {id}? {changes}", "tweak {id}: {changes}", "{id} needs changes: {changes}",
                "edit {id} - {changes}", "for {id} please {changes}", "adjust {id}: {changes}",
                "update {id}, {changes}"]
UPDATE_TITLE = ["rename it to \"{title}\"", "change the title to \"{title}\"", "new title \"{title}\"",
                "call it \"{title}\"", "retitle it \"{title}\"", "the title should be \"{title}\"",
                "rename to \"{title}\""]
UPDATE_PROJECT = ["move it to {project}", "move it to the {project} project", "project {project}",
                  "put it under {project}", "switch project to {project}", "it goes in {project} now",
                  "change the project to {project}"]
UPDATE_DUE = ["change the due date to {due}", "push it to {due}", "move the deadline to {due}", "due {due}",
              "reschedule to {due}", "make it due {due}", "new deadline {due}", "set the deadline to {due}",
              "it should be done by {due}", "the due date is now {due}"]
UPDATE_PRIORITY = ["set priority to {prio}", "make it {prio} priority", "bump it to {prio}", "priority {prio}",
                   "change priority to {prio}", "it's {prio} now", "priority should be {prio}",
                   "make the priority {prio}"]
UPDATE_TAGS = ["set tags to {tags}", "retag it {tags}", "tags {tags}", "replace the tags with {tags}",
               "tags should be {tags}", "change the tags to {tags}", "relabel it {tags}"]
# One change said in one sentence, without the "update X:" frame.
UPDATE_DIRECT = {
    "due": ["push {id} to {due}", "change the due date of {id} to {due}", "move {id} to {due}",
            "reschedule {id} for {due}", "{id} is now due {due}", "postpone {id} until {due}",
            "set the deadline of {id} to {due}", "{id} should be done by {due}", "give {id} a deadline of {due}",
            "extend {id} to {due}", "{id} can wait until {due}"],
    "project": ["move {id} to the {project} project", "put {id} in {project}", "{id} belongs in {project}",
                "transfer {id} to project {project}", "{id} should live in {project}",
                "relocate {id} to {project}"],
    "title": ["rename {id} to \"{title}\"", "retitle {id} as \"{title}\"", "change the name of {id} to \"{title}\"",
              "call {id} \"{title}\" from now on", "the new name for {id} is \"{title}\""],
    "priority": ["make {id} {prio} priority", "set the priority of {id} to {prio}", "bump {id} to {prio}",
                 "{id} is {prio} priority now", "{id} should be {prio} priority", "mark {id} {prio} priority",
                 "change {id} to {prio} priority"],
    "tags": ["tag {id} {tags}", "set the tags of {id} to {tags}", "label {id} {tags}", "retag {id} as {tags}",
             "{id} gets the tags {tags}"],
}

# --- the id-only actions ------------------------------------------------------------------------------------
COMPLETE = ["mark {id} as done", "mark {id} done", "complete {id}", "{id} is done", "close {id}", "finished {id}",
            "I finished {id}", "check off {id}", "{id} done", "done with {id}", "please close out {id}",
            "set {id} to complete", "tick off {id}", "resolve {id}", "mark {id} as completed", "{id} is finished",
            "we're done with {id}", "mark {id} complete", "{id} is complete", "{id} has been done",
            "please mark {id} as finished", "can you complete {id}?", "set {id} to done", "we finished {id}",
            "{id} can be closed", "close {id}, it's done", "mark {id} as resolved", "finally finished {id}",
            "all done with {id}", "{id} is completed now"]
DELETE = ["delete {id}", "remove {id}", "trash {id}", "get rid of {id}", "drop {id}", "please delete {id}",
          "{id} can be deleted", "scrap {id}", "discard {id}", "erase {id}", "{id} is no longer needed, delete it",
          "remove {id} from the list", "delete {id} please", "throw away {id}", "kill {id}, we don't need it",
          "delete {id} for me", "please remove {id}", "{id} should be deleted", "can you delete {id}?",
          "get {id} off the list", "remove {id} entirely", "{id} is obsolete, remove it", "purge {id}",
          "delete {id}, it's not needed", "we won't do {id}, delete it"]
ASSIGN = ["assign {id} to {name}", "give {id} to {name}", "{name} should take {id}", "hand {id} over to {name}",
          "reassign {id} to {name}", "let {name} handle {id}", "put {name} on {id}", "{id} goes to {name}",
          "make {name} the owner of {id}", "can {name} take {id}?", "delegate {id} to {name}",
          "assign {name} to {id}", "{name} will own {id}", "set the assignee of {id} to {name}",
          "{name} is taking {id}", "assign {id} over to {name}", "please give {id} to {name}", "{name} owns {id} now",
          "have {name} do {id}", "{id} is {name}'s now", "change the owner of {id} to {name}",
          "route {id} to {name}", "{name} can take over {id}", "{id} should go to {name}"]
COMMENT = ["comment on {id}: {text}", "add a comment to {id}: {text}", "note on {id}: {text}",
           "add a note to {id} saying \"{text}\"", "on {id} write: {text}", "leave a comment on {id} - {text}",
           "{id}: add comment \"{text}\"", "reply on {id}: {text}", "post on {id}: {text}",
           "update {id} with a comment: {text}", "comment \"{text}\" on {id}", "add to {id} the note: {text}",
           "comment {id}: {text}", "add a comment on {id} saying {text}", "write on {id}: {text}",
           "{id} comment: {text}", "attach a note to {id}: {text}", "log a comment on {id}: {text}",
           "add the comment \"{text}\" to {id}", "put a comment on {id}: {text}", "note to {id}: {text}"]

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
                   "new item please", "can you create a task?", "I want to add a task", "please make a new todo",
                   "add something to my list", "create a task for me", "open a new ticket", "add a todo"]
ASSIGN_NO_NAME = ["assign {id}", "reassign {id}", "give {id} to someone", "{id} needs an owner",
                  "assign {id} to somebody else", "who takes {id}? assign it", "hand off {id}",
                  "{id} needs someone", "assign {id} please", "{id} should be reassigned"]
COMMENT_NO_TEXT = ["comment on {id}", "add a comment to {id}", "leave a note on {id}", "I want to comment on {id}",
                   "add a note to {id}", "post a comment on {id}", "I have a comment for {id}",
                   "comment on {id} please", "can I add a note to {id}?", "write a comment on {id}"]
UPDATE_NO_CHANGE = ["update {id}", "change {id}", "edit {id}", "I need to modify {id}", "make some changes to {id}",
                    "{id} needs an update", "{id} needs changing", "please update {id}",
                    "I want to change something on {id}", "can you edit {id}?"]

# The user's second turn after a clarifying question.
REPLY_ID = ["{id}", "it's {id}", "{id}, sorry", "the id is {n}", "{n}", "oh, {id}", "I meant {id}", "id {n}",
            "sorry, {id}", "{id} I think"]
REPLY_NAME = ["{name}", "to {name}", "give it to {name}", "{name} please", "{name} can do it", "assign it to {name}",
              "{name} should do it"]
REPLY_TEXT = ["{text}", "say: {text}", "\"{text}\"", "write {text}", "the comment is: {text}", "it should say {text}"]
REPLY_TITLE = ["{title}", "call it \"{title}\"", "title: {title}", "\"{title}\"", "name it {title}",
               "the title is {title}", "it's called \"{title}\""]

SYSTEM_PROMPT = "Today is {date}. Reply with one Task API call as JSON; use clarify if a detail is missing."


def split_pool(items: list, split: str) -> list:
    """The part of ``items`` a split may use: train leaves out every 5th entry, eval may use all of them."""
    if split == "eval":
        return items
    return [item for i, item in enumerate(items) if i % 5 != 4]


def held_out(items: list) -> list:
    """The entries only the eval split may use."""
    return [item for i, item in enumerate(items) if i % 5 == 4]
