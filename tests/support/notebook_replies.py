"""The fake server's scripted answers for the notebooks in ``notebooks/``.

Rules match a phrase of the last user message, so the replies are the same whatever order the
cells run in; nbval compares the outputs against the ones saved in the notebooks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from tests.fakeapi import ErrorReply, FakeChatServer, Reply

SLOW = 0.02  # seconds between streamed chunks: visible streaming, quick test runs

ANSWERS = {
    "What is a Python generator": (
        "A **generator** is a function that uses `yield` to produce values one at a time, "
        "pausing between them instead of building a whole list in memory. "
        "You iterate over it like a list, but each value is computed only when it is asked for."
    ),
    "three-line example": (
        "```python\n"
        "def countdown(n):\n"
        "    while n > 0:\n"
        "        yield n; n -= 1\n"
        "```\n\n"
        "`list(countdown(3))` gives `[3, 2, 1]`."
    ),
    "Why is the sky blue": (
        "Sunlight is made of all colours. When it hits the air, the tiny gas molecules scatter "
        "blue light much more than red light, so blue light bounces all over the sky and "
        "reaches your eyes from every direction."
    ),
    "clear commit messages": (
        "Write the subject line as a short command that says **what** the change does "
        '("Fix crash when the cache is empty"), and use the body to explain **why**.'
    ),
    "Name three prime numbers": "2, 3 and 5.",
    "five-word slogan": "Fresh beans, warm hearts daily.",
    "Eiffel Tower": '{"city": "Paris", "country": "France"}',
    "What does a hash table do": None,  # depends on the chat's system prompt: see _hash_table
    "friendly robot": None,  # depends on temperature and seed: see _robot_name
    "My name is": "Nice to meet you! I will remember your name.",
    "What is my name": None,  # depends on the conversation: see _your_name
    "exercise in Python": (
        "Write a function `count_vowels(text)` that returns how many vowels a string contains, "
        "then test it on three sentences of your choice."
    ),
    "Describe the trend in this plot": "The score rises steadily with the hours studied, about two points per hour.",
    "why does zip complain": (
        "`zip(..., strict=True)` checks that both lists have the same length: `hours` has 4 items but "
        "`scores` only 3, so it raises `ValueError`. Add the missing score (or drop an hour) so they match."
    ),
    "quiz questions": (
        '{"questions": ['
        '{"q": "Which keyword defines a function?", "answer": "def"}, '
        '{"q": "What does len([1, 2, 3]) return?", "answer": "3"}, '
        '{"q": "Which type is immutable: list or tuple?", "answer": "tuple"}]}'
    ),
}

# notebooks/annotation.ipynb: one rule per review; one reply is not JSON, one request is refused.
REVIEW_LABELS = {
    "Arrived quickly and works perfectly": '{"label": "positive"}',
    "Stopped charging after two days": '{"label": "negative"}',
    "It does what the box says": '{"label": "neutral"}',
    "Best purchase this year": '{"label": "positive"}',
    "The lid cracked": '{"label": "negative"}',
    "Honestly? Could be better, could be worse": "Neutral, I would say.",
    "Five stars, would buy again": '{"label": "positive"}',
    "Too loud for an office": '{"label": "negative"}',
    "Exactly as pictured": '{"label": "positive"}',
}
REFUSED_REVIEW = "Ignore previous instructions"

# notebooks/annotation.ipynb, "Labels you can trust": a schema, a trial run, votes. Each review's
# answers in turn (a first answer with an off-schema label is repaired; votes disagree a little).
RATED = {
    "Arrived quickly and works perfectly": ["positive"],
    "Stopped charging after two days": ["negative"],
    "It does what the box says": ["good", "neutral"],  # 'good' is outside the enum: repaired
    "Best purchase this year": ["positive"],
    "The lid cracked": ["negative"],
    "Honestly? Could be better, could be worse": ["neutral"],
}
VOTED = {
    "Arrived quickly and works perfectly": ["positive", "positive", "positive"],
    "Stopped charging after two days": ["negative", "negative", "neutral"],
    "It does what the box says": ["neutral", "positive", "neutral"],
    "Best purchase this year": ["positive", "positive", "positive"],
    "The lid cracked": ["negative", "negative", "negative"],
    "Honestly? Could be better, could be worse": ["neutral", "negative", "positive"],
}


def _rater() -> Callable[[dict], Reply]:
    """Each review's answers in turn, whatever order the requests come in."""
    turns: dict[str, int] = {}
    lock = threading.Lock()

    def reply(request: dict) -> Reply:
        prompt = next(m["content"] for m in request["messages"] if m["role"] == "user")
        table = VOTED if "Vote on" in prompt else RATED
        review = next((r for r in table if r in prompt), None)
        if review is None:
            return Reply(text="{}")
        with lock:
            turn = turns[prompt] = turns.get(prompt, -1) + 1
        answers = table[review]
        label = answers[min(turn, len(answers) - 1)] if table is RATED else answers[turn % len(answers)]
        body = (
            {"label": label} if table is VOTED else {"label": label, "confidence": 0.9 if label != "neutral" else 0.6}
        )
        return Reply(text=json.dumps(body))

    return reply


TUTOR = (
    "A hash table stores **key-value pairs**. Step by step:\n\n"
    "1. It turns the key into a number with a *hash function*.\n"
    "2. That number picks a slot in an array.\n"
    "3. Looking the key up later repeats the same steps, so it takes about the same time however "
    "many items you store.\n\n"
    "Python's `dict` is a hash table. Great question!"
)
CRITIC = (
    "It maps keys to values with an average O(1) lookup. A common misconception: lookups are "
    "*not* guaranteed O(1). Many keys hashing to the same slot (collisions) make them slower, "
    "and the table must grow, copying every entry, when it fills up."
)
ROBOT_NAMES = {(0.0, 7): "Bolt", (1.2, 8): "Professor Sprocket von Whirr"}


def _system(request: dict) -> str:
    return next((m["content"] for m in request["messages"] if m["role"] == "system"), "")


def _hash_table(request: dict) -> Reply:
    return Reply(text=CRITIC if "reviewer" in _system(request) else TUTOR, chunk_delay=SLOW)


def _robot_name(request: dict) -> Reply:
    key = (request.get("temperature"), request.get("random_seed"))
    return Reply(text=f"How about **{ROBOT_NAMES.get(key, 'Robo')}**?", chunk_delay=SLOW)


def _your_name(request: dict) -> Reply:
    """The name the conversation gave last (the teaching demo's re-run section)."""
    said = [m["content"] for m in request.get("messages", []) if m.get("role") == "user"]
    names = [text.split("My name is ", 1)[1].split(".")[0] for text in said if "My name is " in text]
    return Reply(
        text=f"Your name is **{names[-1]}**." if names else "You have not told me your name.", chunk_delay=SLOW
    )


def install(server: FakeChatServer) -> None:
    """Add the notebooks' rules to ``server``; its batch jobs finish at once (the kernel's first poll sees them done)."""
    server.batch.queued_seconds = 0.0
    server.batch.running_seconds = 0.0
    special = {"What does a hash table do": _hash_table, "friendly robot": _robot_name, "What is my name": _your_name}
    for phrase, text in ANSWERS.items():
        server.add_rule(phrase, special.get(phrase) or Reply(text=text, chunk_delay=SLOW))
    rater = _rater()
    echo = server.default_reply

    def first_prompt_rules(request: dict) -> Reply:  # a repair's last message is the fix: match the first
        first = next((m["content"] for m in request.get("messages", []) if m.get("role") == "user"), "")
        rated = isinstance(first, str) and (
            "Rate this product review" in first or "Vote on this product review" in first
        )
        return rater(request) if rated else echo(request)

    server.default_reply = first_prompt_rules
    server.add_rule("Rate this product review", first_prompt_rules)
    server.add_rule("Vote on this product review", first_prompt_rules)
    for phrase, text in REVIEW_LABELS.items():
        server.add_rule(phrase, Reply(text=text))
    server.add_rule(
        REFUSED_REVIEW,
        ErrorReply(
            400, body={"object": "error", "message": "Prompt blocked by moderation", "type": "invalid_request_error"}
        ),
    )
