"""Images that are damaged, huge or crafted: one ImageError line before anything is sent, never a
traceback, and a damaged image already in a chat never breaks ``%mistral history``."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from mistral_magic import ImageError, UsageError
from tests.images.test_cell_images import VISION, chat_bodies, jpeg, no_pillow, png  # noqa: F401 - no_pillow is a fixture


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(side: int) -> bytes:
    """A 1-bit black PNG of ``side``×``side`` px: about 100 KB that decode to ``side``² pixels."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def gif(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (width, height)).save(buffer, format="GIF")
    return buffer.getvalue()


def one_line_refusal(run, fake) -> str:
    assert type(run.error) is ImageError, repr(run.error)
    message = str(run.error)
    assert "\n" not in message and chat_bodies(fake) == []
    return message


def test_a_decompression_bomb_is_refused_from_its_header(shell, fake):
    shell.ns["t_bomb"] = bomb_png(30_000)
    message = one_line_refusal(shell.run(f"%%mistral {VISION} --image t_bomb\nlook"), fake)
    assert "30000×30000" in message and "10,000 × 10,000" in message


def test_a_huge_array_is_refused_before_it_is_encoded(shell, fake):
    shell.ns["t_huge"] = np.broadcast_to(np.uint8(7), (11_000, 11_000))  # 121 megapixels, no memory of its own
    tracemalloc.start()
    try:
        run = shell.run(f"%%mistral {VISION} --image t_huge\nlook")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "11000×11000" in one_line_refusal(run, fake)
    assert peak < 20_000_000, f"{peak} bytes allocated to refuse it"


@pytest.mark.parametrize("pillow", [True, False], ids=["pillow", "no-pillow"])
def test_a_truncated_png_or_gif_is_one_line(shell, fake, no_pillow, pillow):  # noqa: F811
    shell.ns["t_png"] = png(64, 48)[:-30]  # the end of its image data and its IEND chunk are missing
    shell.ns["t_gif"] = gif(6, 4)[:-8]
    shell.ns["t_cut"] = b"GIF89a" + struct.pack("<HH", 4, 4) + b"\x00\x00\x00" + b"\x2c\x00\x00"  # cut in a descriptor
    if not pillow:
        no_pillow()
    for name in ("t_png", "t_gif", "t_cut"):
        message = one_line_refusal(shell.run(f"%%mistral {VISION} --image {name}\nlook"), fake)
        assert f"{name} is a damaged" in message and "truncated" in message


def test_a_damaged_image_pillow_cannot_decode_is_one_line(shell, fake):
    shell.ns["t_big"] = jpeg(3000, 2000)[:1500]  # large enough to be downscaled, cut in its scan data
    message = one_line_refusal(shell.run(f"%%mistral {VISION} --image t_big\nlook"), fake)
    assert message.startswith("t_big (JPEG 3000×2000") and "cannot be decoded" in message


def test_a_damaged_image_in_a_chat_does_not_break_its_history(shell, fake):
    shell.ns["t_cut"] = jpeg(60, 40)[:400]  # small: sent as it is, the server decides
    shell.ok(f"%%mistral {VISION} --image t_cut\nWhat is this?")
    for _ in range(2):
        shown = shell.ok("%mistral history").outputs[-1]
        assert "image: t_cut (JPEG 60×40, 400 bytes): damaged, cannot be shown" in shown["text/plain"]
        assert "<img" not in shown["text/html"] and "cannot be shown" in shown["text/html"]


def test_a_huge_file_is_refused_without_reading_it(shell, fake, tmp_path):
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.write(png(8, 8))
        handle.truncate(150_000_000)  # sparse: no disk space used
    tracemalloc.start()
    try:
        run = shell.run(f"%%mistral {VISION} --image {path}\nlook")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = one_line_refusal(run, fake)
    assert "150.0 MB" in message and "100.0 MB" in message
    assert peak < 20_000_000, f"{peak} bytes allocated to refuse it"


@pytest.mark.parametrize("image", ["data", "url"])
def test_a_chat_file_image_without_its_sha256_loads_nothing(shell, fake, tmp_path, image):
    shell.ns["t_png"] = png(20, 10)
    value = "t_png" if image == "data" else "https://example.com/cat.png"
    shell.ok(f"%%mistral {VISION} --image {value}\nsaved")
    shell.ok(f"%mistral save {tmp_path}/chats.json")
    saved = json.loads((tmp_path / "chats.json").read_text())
    del saved["chats"][0]["turns"][0]["images"][0]["sha256"]
    (tmp_path / "bad.json").write_text(json.dumps(saved))
    shell.ok("%mistral reset --all")
    run = shell.run(f"%mistral load {tmp_path}/bad.json")
    assert type(run.error) is UsageError and "has no sha256" in str(run.error)
    assert shell.magics.session.store.chats == {}
    saved["chats"][0]["turns"][0]["images"][0]["sha256"] = "0" * 64
    (tmp_path / "bad.json").write_text(json.dumps(saved))
    assert "does not match its sha256" in str(shell.run(f"%mistral load {tmp_path}/bad.json").error)


def test_a_figure_over_100_megapixels_is_refused_before_it_is_drawn(shell, fake):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(110, 110), dpi=100)
    figure.add_subplot().plot([1, 2])
    shell.ns["t_figure"] = figure
    message = one_line_refusal(shell.run(f"%%mistral {VISION} --image t_figure\nlook"), fake)
    # "--image t_figure": the figure's own size was checked; a drawn PNG would be refused as "t_figure"
    assert message.startswith("--image t_figure is 11000×11000 px, more than the largest image")
