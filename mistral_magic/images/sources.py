"""``--image X``: a file, a URL, ``last`` (the most recent figure) or a notebook value, made an attachment.

Values: a matplotlib ``Figure`` (or ``Axes``), a PIL image, PNG/JPEG/WebP/GIF bytes, a numpy array
(``uint8``, ``bool`` or floats in 0..1; gray, RGB or RGBA), a ``str``/``Path`` holding a path or URL.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections import ChainMap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..annotation.items import Items
from ..errors import ImageError, one_line, option
from ..interpolate import MISSING, interpolate, resolve
from .attachment import (
    MAX_BYTES,
    MAX_FILE_BYTES,
    THUMBNAIL_SIDE,
    Attachment,
    check_count,
    check_pixels,
    fit,
    format_bytes,
    from_bytes,
    from_url,
    thumbnail_data_url,
)
from .figures import most_recent_figure


def attachments_for(specs: Sequence[str], namespace: Mapping[str, Any]) -> list[Attachment]:
    """The ``--image`` values of a cell as attachments within Mistral's limits, in order."""
    images = [fit(image_from_spec(spec, namespace)) for spec in specs]
    check_count(images)
    return images


def image_from_spec(spec: str, namespace: Mapping[str, Any]) -> Attachment:
    """One ``--image`` value: a URL, a notebook variable (``name``, ``name.attr``, ``name[key]``),
    ``last``, or a file path."""
    if spec.startswith(("http://", "https://")):
        return from_url(spec)
    value = resolve(spec, namespace) if spec[:1].isidentifier() else MISSING
    if value is not MISSING:
        return image_from_value(value, spec)
    if spec == "last":
        return image_from_value(most_recent_figure(), "last figure")
    path = Path(spec).expanduser()
    if path.is_file():
        return image_from_file(path)
    if spec.isidentifier():
        raise ImageError(
            f"{option('image')} {spec}: no variable named {spec!r} and no such file; {option('image')} last sends the most recent figure."
        )
    raise ImageError(f"{option('image')} {spec}: no such file, URL or notebook variable.")


def image_from_file(path: Path) -> Attachment:
    """An image file, read only when it is not over :data:`MAX_FILE_BYTES` (a 3 GB file is refused unread)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > MAX_FILE_BYTES else handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImageError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
        shown = format_bytes(size) if size > MAX_FILE_BYTES else f"over {format_bytes(MAX_FILE_BYTES)}"
        raise ImageError(
            f"{path} is {shown}, too large to read as an image (at most {format_bytes(MAX_FILE_BYTES)}; "
            f"Mistral takes {format_bytes(MAX_BYTES)} per image): make it smaller first."
        )
    return from_bytes(data, path.name)


def image_from_value(value: Any, label: str) -> Attachment:
    """A notebook value as an image (see the module's docstring for the kinds)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return from_bytes(bytes(value), label)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text.startswith(("http://", "https://")):
            return from_url(text, label)
        path = Path(str(text)).expanduser()
        if not path.is_file():
            raise ImageError(f"{option('image')} {label}: {str(text)!r} is no file.")
        return image_from_file(path)
    figure = value.get_figure() if hasattr(value, "get_figure") and not hasattr(value, "savefig") else value
    if hasattr(figure, "savefig") and hasattr(figure, "canvas"):
        width, height = (round(inches * figure.dpi) for inches in figure.get_size_inches())
        check_pixels(width, height, f"{option('image')} {label}")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return from_bytes(buffer.getvalue(), label)
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        width, height = value.size
        check_pixels(width, height, f"{option('image')} {label}")
        buffer = io.BytesIO()
        image = value if value.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I") else value.convert("RGBA")
        image.save(buffer, format="PNG")
        return from_bytes(buffer.getvalue(), label)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return from_bytes(array_png(value, label), label)
    raise ImageError(
        f"{option('image')} {label}: a {type(value).__name__} is not an image "
        "(give a matplotlib figure, a PIL image, PNG/JPEG bytes, a numpy array, a path or a URL)."
    )


def array_png(array: Any, label: str) -> bytes:
    """A numpy array (H×W gray, H×W×3 RGB, H×W×4 RGBA) as PNG bytes, without Pillow."""
    import numpy as np

    try:
        data = np.asarray(array)
    except Exception as exc:  # an array-like that numpy cannot read (a tensor on a GPU, a broken object)
        raise ImageError(f"{option('image')} {label}: numpy cannot read it as an array ({one_line(exc)}).") from None
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[2] not in (1, 3, 4)) or 0 in data.shape:
        raise ImageError(
            f"{option('image')} {label}: an array of shape {data.shape} is not an image (H×W, H×W×3 or H×W×4)."
        )
    check_pixels(data.shape[1], data.shape[0], f"{option('image')} {label}")  # before anything is converted or encoded
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    elif data.dtype.kind == "f":
        if not np.isfinite(data).all() or data.min() < 0 or data.max() > 1:
            raise ImageError(
                f"{option('image')} {label}: a float array must hold values from 0 to 1 (got {data.dtype})."
            )
        data = np.round(data * 255).astype(np.uint8)
    elif data.dtype.kind in "iu":
        if data.min() < 0 or data.max() > 255:
            raise ImageError(f"{option('image')} {label}: an integer array must hold values from 0 to 255.")
        data = data.astype(np.uint8)
    else:
        raise ImageError(f"{option('image')} {label}: an array of {data.dtype} is not an image.")
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    height, width = data.shape[:2]
    color = {1: 0, 3: 2, 4: 6}[1 if data.ndim == 2 else data.shape[2]]  # PNG colour types: gray, RGB, RGBA
    rows = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(data).reshape(height, -1))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(rows, 6))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def turn_images_shown(images: Sequence[Attachment]) -> tuple[str, str]:
    """A turn's images for ``%mistral history``: (HTML with a small thumbnail of each, plain text
    with each one's kind, size and bytes)."""
    import html

    shown, plain = [], []
    for image in images:
        description, thumbnail = image.describe(), None
        try:
            thumbnail = thumbnail_data_url(image)
        except ImageError:  # a damaged image never costs the rest of the history
            description += ": damaged, cannot be shown"
        described = html.escape(description)
        if thumbnail is None:
            shown.append(f"<p>image: {described}</p>")
        else:
            side = (
                f'width="{THUMBNAIL_SIDE}"'
                if (image.width or 0) >= (image.height or 0)
                else f'height="{THUMBNAIL_SIDE}"'
            )
            shown.append(f'<p><img src="{thumbnail}" {side} alt="{html.escape(image.label)}"> {described}</p>')
        plain.append(f"image: {description}")
    return "".join(shown), "\n".join(plain)


_WHOLE_REFERENCE = re.compile(r"\{(?P<name>[A-Za-z_]\w*)\}")


class ItemImages:
    """``--image`` with ``--each``: the images of each item, read when its request is built.

    ``{column}`` (or ``{item}``) alone takes the item's value itself (a path, URL, PIL image, bytes,
    figure or array); a value with other text around braces, like ``photos/{name}.png``, is filled
    as text and read as a path or URL; a value without braces is the same image for every item.
    """

    def __init__(self, specs: Sequence[str], items: Items, namespace: Mapping[str, Any]):
        self.specs = list(specs)
        self.items = items
        self.namespace = namespace
        self._fixed: dict[str, Attachment] = {}
        for spec in self.specs:
            if "{" not in spec:
                self._fixed[spec] = fit(image_from_spec(spec, namespace))

    def __call__(self, index: int) -> tuple[Attachment, ...]:
        images = tuple(self._fixed.get(spec) or fit(self._one(spec, index)) for spec in self.specs)
        check_count(images)
        return images

    def _one(self, spec: str, index: int) -> Attachment:
        fields = self.items.fields[index] if self.items.fields is not None else {}
        scope = ChainMap(fields, {"item": self.items.values[index]}, dict(self.namespace))
        whole = _WHOLE_REFERENCE.fullmatch(spec)
        try:
            if whole is not None:
                value = resolve(whole.group("name"), scope)
                if value is MISSING:
                    raise ImageError(f"{option('image')} {spec}: no column or variable named {whole.group('name')!r}.")
                return image_from_value(value, whole.group("name"))
            return image_from_spec(interpolate(spec, scope), self.namespace)
        except ImageError as exc:
            raise ImageError(f"Item {index}: {exc}") from None
