"""Everything that speaks HTTP to a chat-completions server: the wire format (:mod:`.protocol`), the
client (:mod:`.client`, which imports httpx on first use), server-sent events, retry delays and pacing.

It depends on nothing of the package but :mod:`mistral_magic.errors` and :mod:`mistral_magic.secret`.
"""
