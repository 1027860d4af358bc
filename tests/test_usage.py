"""Token usage is one type, from the wire to the chat file, the reply cache and the notebook."""

from __future__ import annotations

import json

from mistral_magic.usage import ChatUsage, TokenUsage, add_usage


def test_the_api_usage_object_is_read_once_into_token_usage():
    wire = {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    usage = TokenUsage.of(wire)
    assert usage == TokenUsage(prompt_tokens=12, completion_tokens=5, cached_tokens=8) and usage.total_tokens == 17
    assert TokenUsage.of(usage.to_dict()) == usage  # what the cache, chat files and notebooks store reads back
    assert TokenUsage.of({"prompt_tokens": "many", "completion_tokens": True}) == TokenUsage()
    assert TokenUsage.of("lots") is None and TokenUsage.of(None) is None
    assert add_usage(usage, None) is usage and add_usage(usage, usage) == TokenUsage(24, 10, 16)


def test_a_chat_file_written_with_usage_objects_loads_them_as_token_usage(shell, fake, tmp_path):
    shell.ok("%%mistral\nhello")
    path = tmp_path / "chats.json"
    shell.ok(f"%mistral save {path}")
    saved = json.loads(path.read_text())
    assert saved["chats"][0]["turns"][0]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    shell.ok("%mistral reset --all")
    shell.ok(f"%mistral load {path}")
    assert shell.magics.session.store.get("default").turns[0].usage == TokenUsage(1, 2)


def test_a_chats_usage_counts_every_request():
    total = ChatUsage()
    total.add(TokenUsage(3, 4))
    total.add(None)  # a request whose server sent no usage
    assert (total.requests, total.prompt_tokens, total.completion_tokens, total.total_tokens) == (2, 3, 4, 7)
    assert ChatUsage.sum([total, total]).total_tokens == 14
