"""Images sent with a prompt: one value type, Mistral's limits, and the ``image_url`` content parts.

An :class:`Attachment` is either the bytes of a PNG, JPEG, WebP or GIF image (sent as a base64 data
URL) or an http(s) URL (sent as it is). Pillow, when installed (the ``images`` extra), downscales
images larger than :data:`MAX_SIDE`; without it an image over Mistral's limits is refused.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ImageError, hint, one_line

MAX_IMAGES = 8
MAX_BYTES = 10_000_000
MAX_SIDE = 1540  # current models downscale to this anyway: sending more only costs upload time
MAX_SERVER_SIDE = 10_000  # the API refuses larger images
MAX_PIXELS = MAX_SERVER_SIDE * MAX_SERVER_SIDE  # more is refused before it is decoded (a decompression bomb)
MAX_FILE_BYTES = 100_000_000  # a larger file is refused before it is read
THUMBNAIL_SIDE = 96

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
FORMAT_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "image/gif": "GIF"}


@dataclass(frozen=True)
class Attachment:
    """One image of a turn: ``data`` (with its ``mime``) or a remote ``url``; ``label`` says where it came from."""

    kind: str  # "data" or "url"
    mime: str | None
    label: str
    data: bytes | None = None
    url: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data if self.data is not None else (self.url or "").encode()).hexdigest()

    @property
    def data_url(self) -> str:
        """What is sent: a base64 data URL, or the remote URL as given."""
        if self.data is None:
            return self.url or ""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def part(self) -> dict[str, Any]:
        """The ``image_url`` content part of a user message."""
        return {"type": "image_url", "image_url": self.data_url}

    def describe(self) -> str:
        """``plot.png (PNG 640×480, 23.4 KB)``, or the URL for a remote image."""
        if self.data is None:
            return f"{self.label} (URL)"
        size = f"{self.width}×{self.height}, " if self.width and self.height else ""
        return f"{self.label} ({FORMAT_NAMES.get(self.mime or '', self.mime)} {size}{format_bytes(len(self.data))})"

    def to_dict(self) -> dict[str, Any]:
        """The attachment as JSON (for ``%mistral save``): the image itself as a data URL, and its hash."""
        return {
            "label": self.label,
            "url": self.data_url,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Attachment:
        """Read :meth:`to_dict`'s form back; the image (or URL) must match its hash."""
        url, label, sha256 = item.get("url"), item.get("label"), item.get("sha256")
        if not isinstance(url, str) or not isinstance(label, str):
            raise ImageError("an image of the chat file has no 'url' and 'label' strings.")
        if not isinstance(sha256, str):
            raise ImageError(f"the image {label!r} of the chat file has no sha256, so it cannot be checked.")
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            try:
                data = base64.b64decode(payload, validate=True)
            except ValueError:
                raise ImageError(f"the image {label!r} of the chat file is not valid base64.") from None
            attachment = from_bytes(data, label)
        else:
            attachment = from_url(url, label)
        if sha256 != attachment.sha256:
            raise ImageError(f"the image {label!r} of the chat file does not match its sha256.")
        return attachment


def format_bytes(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    if count < 1_000_000:
        return f"{count / 1000:.1f} KB"
    return f"{count / 1_000_000:.1f} MB"


def sniff_mime(data: bytes) -> str | None:
    """The image type of ``data`` from its first bytes: png, jpeg, webp, gif; ``None`` otherwise."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes, mime: str) -> tuple[int, int] | None:
    """Width and height read from the image's header (``None`` when the header is not understood)."""
    try:
        if mime == "image/png":
            return struct.unpack(">II", data[16:24])
        if mime == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if mime == "image/jpeg":
            return _jpeg_size(data)
        if mime == "image/webp":
            return _webp_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def gif_frames(data: bytes) -> tuple[int, bool]:
    """How many images a GIF holds (2 is enough to know it is animated), and whether its blocks
    are whole up to there (False: the file is cut short)."""
    if len(data) < 13:
        return 0, False
    position = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # after the global colour table
    frames = 0
    while position < len(data) and frames < 2:
        block = data[position]
        if block == 0x3B:  # trailer
            return frames, True
        if block == 0x2C:  # an image: its descriptor, local colour table, LZW code size, then sub-blocks
            if position + 10 > len(data):
                break
            frames += 1
            packed = data[position + 9]
            position += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0) + 1
        elif block == 0x21:  # an extension: its label, then sub-blocks
            position += 2
        else:
            return frames, False
        while position < len(data) and data[position]:
            position += data[position] + 1
        position += 1
    return frames, frames > 1


def is_complete(data: bytes, mime: str) -> bool:
    """Whether a PNG, GIF or WebP file holds its whole structure (a cut file does not); a JPEG is
    not checked (its end marker may legitimately be followed by other data)."""
    if mime == "image/png":
        end = data.rfind(b"\x00\x00\x00\x00IEND")  # the empty IEND chunk ends every PNG
        return end >= 8 and end + 12 <= len(data)
    if mime == "image/gif":
        return gif_frames(data)[1]
    if mime == "image/webp":
        return int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return True


def check_pixels(width: int, height: int, label: str) -> None:
    """Refuse an image over :data:`MAX_PIXELS` before it is encoded or decoded (a decompression
    bomb, a huge array): it could not be sent as it is, and decoding it could exhaust memory."""
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{label} is {width}×{height} px, more than the largest image Mistral takes "
            f"({MAX_SERVER_SIDE:,} × {MAX_SERVER_SIDE:,} px): make it smaller first."
        )


def from_url(url: str, label: str | None = None) -> Attachment:
    """A remote image, sent as its URL (it must be public: the API fetches it)."""
    if not url.startswith(("http://", "https://")):
        raise ImageError(f"{url!r} is not an http(s) URL.")
    return Attachment(kind="url", mime=None, label=label or url, url=url)


def from_bytes(data: bytes, label: str) -> Attachment:
    """An image from its encoded bytes; refused unless PNG, JPEG, WebP or GIF."""
    mime = sniff_mime(data)
    if mime is None:
        raise ImageError(f"{label} is not a PNG, JPEG, WebP or GIF image (Mistral reads only those).")
    if mime == "image/gif" and gif_frames(data)[0] > 1:
        raise ImageError(f"{label} is an animated GIF; Mistral reads single-frame GIFs: send one frame (e.g. as PNG).")
    if not is_complete(data, mime):
        raise ImageError(
            f"{label} is a damaged {FORMAT_NAMES[mime]} image (truncated: its end is missing): save or export it again."
        )
    size = image_size(data, mime)
    width, height = size if size else (None, None)
    if width is not None and height is not None:
        check_pixels(width, height, label)
    return Attachment(kind="data", mime=mime, label=label, data=data, width=width, height=height)


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def fit(attachment: Attachment) -> Attachment:
    """The image within Mistral's limits: downscaled to :data:`MAX_SIDE` (and re-encoded under
    :data:`MAX_BYTES`) with Pillow; without it, refused when over the limits the API enforces."""
    if attachment.data is None:
        return attachment
    big_side = max(attachment.width or 0, attachment.height or 0)
    if big_side <= MAX_SIDE and len(attachment.data) <= MAX_BYTES:
        return attachment
    image_module = _pillow()
    if image_module is None:
        if len(attachment.data) > MAX_BYTES:
            raise ImageError(
                f"{attachment.describe()} is over Mistral's {format_bytes(MAX_BYTES)} per image: "
                "install Pillow (pip install 'mistral-magic[images]') to downscale it, or make it smaller."
            )
        if big_side > MAX_SERVER_SIDE:
            raise ImageError(
                f"{attachment.describe()} is over Mistral's {MAX_SERVER_SIDE} px per side: "
                "install Pillow (pip install 'mistral-magic[images]') to downscale it, or make it smaller."
            )
        return attachment  # the server downscales it to MAX_SIDE itself
    return _downscale(attachment, image_module)


def _decoded(attachment: Attachment, image_module: Any) -> Any:
    """The image decoded by Pillow; one that it cannot decode (damaged, or over its own pixel
    limit when the header did not give the size) is an :class:`ImageError`."""
    assert attachment.data is not None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)  # MAX_PIXELS is checked
            with image_module.open(io.BytesIO(attachment.data)) as image:
                image.load()
                return image
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, image_module.DecompressionBombError) as exc:
        raise ImageError(f"{attachment.describe()} cannot be decoded ({one_line(exc)}): it is damaged.") from None


def _downscale(attachment: Attachment, image_module: Any) -> Attachment:
    image = _decoded(attachment, image_module)
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    keep_jpeg = attachment.mime == "image/jpeg"
    encoded = _encode(image, "JPEG" if keep_jpeg else "PNG")
    if len(encoded) > MAX_BYTES and not keep_jpeg:
        encoded = _encode(image, "JPEG")  # a noisy photo as PNG can stay large
    if len(encoded) > MAX_BYTES:
        raise ImageError(f"{attachment.describe()} is over {format_bytes(MAX_BYTES)} even at {MAX_SIDE} px.")
    return from_bytes(encoded, attachment.label)


def _encode(image: Any, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "JPEG":
        image = image.convert("RGB")
        image.save(buffer, format="JPEG", quality=90)
    else:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I"):
            image = image.convert("RGBA")
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def check_count(attachments: Sequence[Attachment]) -> None:
    """At most :data:`MAX_IMAGES` images in one request (history included)."""
    if len(attachments) > MAX_IMAGES:
        raise ImageError(
            f"This request would carry {len(attachments)} images; Mistral takes at most {MAX_IMAGES} per request "
            f"(images of earlier turns of the chat count too: {hint('fresh_chat')})."
        )


def thumbnail_data_url(attachment: Attachment) -> str | None:
    """A small PNG of the image as a data URL (with Pillow), else the image itself (shown small by
    its ``width``); ``None`` for a remote image. A damaged image is an :class:`ImageError`."""
    if attachment.data is None:
        return None
    image_module = _pillow()
    if image_module is None:
        return attachment.data_url
    image = _decoded(attachment, image_module)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    encoded = _encode(image, "PNG")
    return f"data:image/png;base64,{base64.b64encode(encoded).decode('ascii')}"
