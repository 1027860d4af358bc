"""Renderers: how a reply is shown while it streams and kept once it ends."""

from .base import Renderer, ReplyInfo
from .static import final_bundle, reply_notice
from .text import TextRenderer

__all__ = ["Renderer", "ReplyInfo", "TextRenderer", "final_bundle", "reply_notice"]
