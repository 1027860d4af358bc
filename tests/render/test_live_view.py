"""The live widget view: what it sends to the front end while a reply streams, and how it ends."""

from __future__ import annotations

import json
from typing import ClassVar

import comm
import pytest
from comm.base_comm import BaseComm

from mistral_magic.render.base import ReplyInfo
from mistral_magic.render.html import render_markdown
from mistral_magic.render.widget import WidgetRenderer
from tests.render.test_render import CORPUS, split_randomly
from tests.support import answered
from tests.support.hostile import HOSTILE_REPLIES, problems
from tests.support.htmlshape import parse
from tests.support.reply_shapes import REPLY_SHAPES


class RecordingComm(BaseComm):
    """Stands in for the kernel's comm: records every message meant for the front end."""

    log: ClassVar[list[tuple[str, dict]]] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.log.append((msg_type, json.loads(json.dumps(data or {}))))


@pytest.fixture
def comms(monkeypatch):
    RecordingComm.log = []
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))
    return RecordingComm.log


def custom_messages(log) -> list[dict]:
    return [data["content"] for kind, data in log if kind == "comm_msg" and data.get("method") == "custom"]


class ViewState:
    """What live.js shows, rebuilt from the messages by the same rules."""

    def __init__(self, messages):
        self.blocks, self.tail, self.status, self.code = [], "", "", False
        for msg in messages:
            self.blocks += msg.get("blocks", [])
            self.tail = msg.get("tail", self.tail)
            self.tail += msg.get("append", "")
            self.code = msg.get("code", self.code)
            self.status = msg.get("status", self.status)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Frontend:
    """What the renderer showed, published and cleared."""

    def __init__(self):
        self.shown, self.published, self.cleared = [], [], 0

    def renderer(self, clock, **kwargs) -> WidgetRenderer:
        return WidgetRenderer(self.shown.append, self.publish, self.clear, clock=clock, **kwargs)

    def publish(self, bundle, metadata=None):
        self.published.append(bundle)
        self.metadata = metadata

    def clear(self):
        self.cleared += 1


def stream_through(renderer, clock, pieces, rate=400.0):
    renderer.start(ReplyInfo(model="m", chat="default"))
    for piece in pieces:
        clock.now += 1 / rate
        renderer.feed(piece)


def test_first_text_shows_at_once_and_updates_are_throttled(comms):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock, max_rate=10.0)
    renderer.start(ReplyInfo(model="m", chat="c"))
    assert len(frontend.shown) == 1
    renderer.feed("Hello")
    assert ViewState(custom_messages(comms)).tail == "Hello"
    before = renderer.updates
    for _ in range(39):  # 39 chunks within less than 0.1 s: no update
        clock.now += 0.002
        renderer.feed(" x")
    assert renderer.updates == before
    clock.now = 100.11
    renderer.feed(" y")
    assert renderer.updates == before + 1
    assert ViewState(custom_messages(comms)).tail == "Hello" + " x" * 39 + " y"
    renderer.feed(" last")  # within the interval: held back...
    renderer.finish(renderer.text, answered())
    assert ViewState(custom_messages(comms)).tail.endswith(" last")  # ...but never lost
    assert "last" in frontend.published[-1]["text/plain"]


def test_the_view_shows_exactly_the_reply_and_finished_blocks_are_sent_once(comms):
    doc = "\n\n".join(CORPUS[:9])
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, split_randomly(doc, 1))
    renderer.finish(doc, answered())
    state = ViewState(custom_messages(comms))
    blocks = [render_markdown(b) for b in doc.split("\n\n")]
    assert "".join(state.blocks + [render_markdown(state.tail)]) == render_markdown(doc)
    sent = [html for msg in custom_messages(comms) for html in msg.get("blocks", [])]
    assert len(sent) == len(set(sent)) or all(sent.count(b) <= doc.count(b) for b in sent)
    assert blocks[0] in sent and sent.count(blocks[0]) == 1


def test_final_display_equals_a_one_shot_render_and_the_view_is_closed(comms):
    doc = "\n\n".join(CORPUS[:9])
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, split_randomly(doc, 4))
    renderer.finish(doc, answered(usage={"prompt_tokens": 3, "completion_tokens": 4}))
    bundle = frontend.published[-1]
    assert bundle["text/html"].startswith(render_markdown(doc))
    assert bundle["text/markdown"] == doc and bundle["text/plain"] == doc
    assert "3 prompt + 4 completion tokens" in bundle["text/html"]
    assert frontend.cleared == 1
    opened = sum(1 for kind, _ in comms if kind == "comm_open")
    closed = sum(1 for kind, _ in comms if kind == "comm_close")
    assert opened == closed >= 1


def test_status_line_shows_model_chat_and_progress(comms):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, ["word "] * 800, rate=400)
    status = ViewState(custom_messages(comms)).status
    assert status.startswith("m · chat default · ") and "tokens/s" in status


def test_code_fence_flag(comms):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, ["Intro\n\n```py\n", "x = 1\n"], rate=1)
    assert ViewState(custom_messages(comms)).code is True
    clock.now += 1
    renderer.feed("```\n\nafter")
    state = ViewState(custom_messages(comms))
    assert state.code is False and state.tail == "after"


def test_link_definitions_fall_back_to_a_one_shot_render(comms):
    doc = "See [the docs][d].\n\n[d]: https://example.org/docs\n\n[e]: https://example.org/e\n\n- an [e]\n"
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, list(doc))
    renderer.finish(doc, answered())
    assert frontend.published[-1]["text/html"].startswith(render_markdown(doc))
    assert 'href="https://example.org/docs"' in frontend.published[-1]["text/html"]


@pytest.mark.parametrize("name", sorted(HOSTILE_REPLIES))
def test_hostile_replies_are_inert_in_every_live_update(comms, name):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    text = HOSTILE_REPLIES[name] + "\n\nend"
    stream_through(renderer, clock, split_randomly(text, 3), rate=20)
    renderer.finish(text, answered())
    for msg in custom_messages(comms):
        for html in msg.get("blocks", []):
            assert problems(html) == [], html
        assert set(msg) <= {"blocks", "tail", "append", "code", "status"}
    assert problems(frontend.published[-1]["text/html"]) == []


def test_interrupted_reply_keeps_the_partial_text_with_a_mark(comms):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, ["Partial ", "answer"])
    renderer.fail(renderer.text, KeyboardInterrupt(), interrupted=True)
    bundle = frontend.published[-1]
    assert bundle["text/plain"].startswith("Partial answer") and "Interrupted" in bundle["text/plain"]
    assert "Interrupted" in bundle["text/html"]


def test_failure_before_any_text_leaves_no_widget(comms):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    renderer.start(ReplyInfo(model="m", chat="c"))
    renderer.notice("HTTP 429; retrying in 1.0 s (attempt 2 of 3)")
    assert "retrying" in ViewState(custom_messages(comms)).status
    renderer.fail("", RuntimeError("boom"))
    assert frontend.published == [] and frontend.cleared == 1
    assert sum(1 for k, _ in comms if k == "comm_open") == sum(1 for k, _ in comms if k == "comm_close")


def test_the_front_end_code_never_parses_text_as_html():
    from pathlib import Path

    import mistral_magic.render as render

    js = (Path(render.__file__).parent / "live.js").read_text()
    assert js.count("innerHTML") == 1  # only for blocks sanitized in the kernel
    assert "tail.textContent = " in js and "createTextNode(msg.append)" in js
    assert "status.textContent = " in js
    assert "thoughts.textContent = state.thinking" in js and "createTextNode(text)" in js  # thinking: text


@pytest.mark.parametrize("name", sorted(REPLY_SHAPES))
def test_reply_shapes_in_the_live_view_and_its_final_display(comms, name):
    text, check = REPLY_SHAPES[name]
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, split_randomly(text + "\n\nThe end.", 5), rate=40)
    renderer.finish(renderer.text, answered())
    state = ViewState(custom_messages(comms))
    assert state.tail == "The end."  # the shape's blocks are finished: shown as HTML
    check(parse("".join(state.blocks)))
    final = parse(frontend.published[-1]["text/html"])
    *shape, end, footer = [c for c in final.children if not isinstance(c, str)]
    assert end.text() == "The end." and footer.tag == "div"
    final.children = shape
    check(final)


def test_math_shows_as_its_source_until_its_block_is_finished(comms):
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    stream_through(renderer, clock, ["Energy: $E = m", "c^2$ where \\(m_0 * c\\) is", " the"], rate=1)
    state = ViewState(custom_messages(comms))
    assert state.blocks == [] and state.tail == "Energy: $E = mc^2$ where \\(m_0 * c\\) is the"
    clock.now += 1
    renderer.feed(" rest energy.\n\nNext")
    (block,) = ViewState(custom_messages(comms)).blocks
    assert [n.text() for n in parse(block).descendants() if n.attrs.get("class") == "math"] == [
        "$E = mc^2$",
        "\\(m_0 * c\\)",
    ]
