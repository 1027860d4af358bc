"""``--image``: the exact image parts of a request, history, limits, downscaling, vision models, save/load."""

from __future__ import annotations

import base64
import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from mistral_magic import ImageError
from mistral_magic.images.attachment import MAX_SIDE, image_size, sniff_mime
from mistral_magic.images.sources import array_png

VISION = "-m mistral-small-latest"


def png(width: int, height: int, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def decode(url: str) -> tuple[str, Image.Image]:
    head, _, payload = url.partition(",")
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return head, image


def chat_bodies(fake) -> list[dict]:
    return [r.json() for r in fake.requests if r.path.endswith("/chat/completions")]


@pytest.fixture
def no_pillow(monkeypatch):
    """Call it to make Pillow impossible to import, as when the ``images`` extra is not installed."""
    return lambda: monkeypatch.setitem(sys.modules, "PIL", None)


def test_text_then_images_in_flag_order(shell, fake, tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg(40, 30))
    shell.ns["t_png"] = png(64, 48)
    shell.ok(f"%%mistral {VISION} --image t_png --image {photo} --image https://example.com/cat.webp\nWhat is this?")
    content = chat_bodies(fake)[-1]["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "image_url", "image_url"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1]["image_url"] == "data:image/png;base64," + base64.b64encode(shell.ns["t_png"]).decode()
    assert content[2]["image_url"] == "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    assert content[3] == {"type": "image_url", "image_url": "https://example.com/cat.webp"}


def test_the_image_is_resent_with_the_history_and_shown_in_it(shell, fake):
    shell.ns["t_png"] = png(300, 150)
    shell.ok(f"%%mistral {VISION} --image t_png\nDescribe the picture.")
    shell.ok(f"%%mistral {VISION}\nWhich colour was it?")
    messages = chat_bodies(fake)[-1]["messages"]
    assert messages[0]["content"][0] == {"type": "text", "text": "Describe the picture."}
    assert decode(messages[0]["content"][1]["image_url"])[1].size == (300, 150)
    assert messages[1]["role"] == "assistant"
    assert messages[2] == {"role": "user", "content": "Which colour was it?"}
    shown = shell.ok("%mistral history").outputs[-1]
    assert "image: t_png (PNG 300×150, " in shown["text/plain"]
    html = shown["text/html"]
    src = html.split('<img src="', 1)[1].split('"', 1)[0]
    head, thumb = decode(src)
    assert head == "data:image/png;base64" and thumb.size == (96, 48)  # a small thumbnail, not the image
    assert 'width="96"' in html and "PNG 300×150" in html


def test_more_than_eight_images_is_refused_before_sending(shell, fake):
    shell.ns["t_png"] = png(8, 8)
    run = shell.run(f"%%mistral {VISION} " + " ".join(["--image t_png"] * 9) + "\nToo many")
    assert type(run.error) is ImageError and "at most 8" in str(run.error)
    assert fake.requests == []


def test_history_images_count_towards_the_limit(shell, fake):
    shell.ns["t_png"] = png(8, 8)
    shell.ok(f"%%mistral {VISION} " + " ".join(["--image t_png"] * 5) + "\nfive")
    run = shell.run(f"%%mistral {VISION} " + " ".join(["--image t_png"] * 4) + "\nfour more")
    assert "9 images" in str(run.error) and "--new or --once" in str(run.error)
    assert len(chat_bodies(fake)) == 1
    shell.ok(f"%%mistral {VISION} --new " + " ".join(["--image t_png"] * 4) + "\nfour more")


def test_a_large_image_is_downscaled_with_pillow(shell, fake):
    shell.ns["t_big"] = png(3080, 1000)
    shell.ok(f"%%mistral {VISION} --image t_big\nbig")
    head, image = decode(chat_bodies(fake)[-1]["messages"][-1]["content"][1]["image_url"])
    assert head == "data:image/png;base64" and image.size == (MAX_SIDE, 500)


def test_without_pillow_a_large_image_goes_as_it_is(shell, fake, no_pillow):
    shell.ns["t_big"] = png(3080, 1000)
    no_pillow()
    shell.ok(f"%%mistral {VISION} --image t_big\nbig")
    url = chat_bodies(fake)[-1]["messages"][-1]["content"][1]["image_url"]
    assert url == "data:image/png;base64," + base64.b64encode(shell.ns["t_big"]).decode()


def test_over_ten_megabytes(shell, fake, no_pillow):
    noise = np.random.default_rng(1).integers(0, 256, (1900, 1900, 3), dtype=np.uint8)
    shell.ns["t_noise"] = array_png(noise, "noise")
    assert len(shell.ns["t_noise"]) > 10_000_000
    no_pillow()
    run = shell.run(f"%%mistral {VISION} --image t_noise\nnoise")
    assert type(run.error) is ImageError
    assert "over Mistral's 10.0 MB per image" in str(run.error) and "mistral-magic[images]" in str(run.error)
    assert fake.requests == []


def test_over_ten_megabytes_with_pillow_is_made_to_fit(shell, fake):
    noise = np.random.default_rng(1).integers(0, 256, (1900, 1900, 3), dtype=np.uint8)
    shell.ns["t_noise"] = array_png(noise, "noise")
    shell.ok(f"%%mistral {VISION} --image t_noise\nnoise")
    url = chat_bodies(fake)[-1]["messages"][-1]["content"][1]["image_url"]
    _, image = decode(url)
    assert image.size == (MAX_SIDE, MAX_SIDE) and len(url) * 3 / 4 < 10_000_000 * 1.01


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"GIF88 not really", "not a PNG, JPEG, WebP or GIF image"),
        (42, "a int is not an image"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "is not an image (H×W"),
        (np.full((4, 4), 2.0), "float array must hold values from 0 to 1"),
    ],
)
def test_values_that_are_no_image_are_one_line(shell, fake, value, message):
    shell.ns["t_value"] = value
    run = shell.run(f"%%mistral {VISION} --image t_value\nlook")
    assert type(run.error) is ImageError and message in str(run.error)
    assert "\n" not in str(run.error) and fake.requests == []


def test_an_unknown_name_points_at_last(shell, fake):
    run = shell.run(f"%%mistral {VISION} --image fig\nlook")
    assert "no variable named 'fig'" in str(run.error) and "--image last" in str(run.error)


def test_numpy_arrays_become_pngs_of_their_size(shell, fake):
    shell.ns["t_gray"] = np.linspace(0, 1, 30 * 20).reshape(20, 30)
    shell.ns["t_rgba"] = np.zeros((10, 12, 4), dtype=np.uint8)
    shell.ok(f"%%mistral {VISION} --image t_gray --image t_rgba\narrays")
    parts = chat_bodies(fake)[-1]["messages"][-1]["content"]
    gray, rgba = decode(parts[1]["image_url"])[1], decode(parts[2]["image_url"])[1]
    assert (gray.size, gray.mode, rgba.size, rgba.mode) == ((30, 20), "L", (12, 10), "RGBA")
    assert gray.getpixel((29, 19)) == 255 and gray.getpixel((0, 0)) == 0


def test_a_model_without_vision_is_refused_before_the_request(shell, fake):
    shell.ns["t_png"] = png(8, 8)
    run = shell.run("%%mistral --image t_png\nlook")  # the default model, Mistral-chat, has vision: false
    assert type(run.error) is ImageError
    assert "Mistral-chat does not read images" in str(run.error) and "--model mistral-small-latest" in str(run.error)
    assert [r.path for r in fake.requests] == ["/v1/models"]
    shell.run("%%mistral --image t_png\nagain")
    assert [r.path for r in fake.requests] == ["/v1/models"]  # the list is cached per server


def test_a_server_without_capabilities_gets_the_request(shell, fake):
    fake.models = [{"id": "Mistral-chat", "object": "model"}]
    shell.ns["t_png"] = png(8, 8)
    shell.ok("%%mistral --image t_png\nlook")
    assert len(chat_bodies(fake)) == 1


def test_saved_chats_keep_their_images(shell, fake, tmp_path):
    shell.ns["t_png"] = png(20, 10)
    shell.ok(f"%%mistral {VISION} --image t_png\nsaved")
    shell.ok(f"%mistral save {tmp_path}/chats.json")
    saved = json.loads((tmp_path / "chats.json").read_text())
    image = saved["chats"][0]["turns"][0]["images"][0]
    assert image["url"].startswith("data:image/png;base64,") and len(image["sha256"]) == 64
    shell.ok("%mistral reset --all")
    shell.ok(f"%mistral load {tmp_path}/chats.json")
    shell.ok(f"%%mistral {VISION}\nstill there?")
    first = chat_bodies(fake)[-1]["messages"][0]["content"]
    assert first[1]["image_url"] == "data:image/png;base64," + base64.b64encode(shell.ns["t_png"]).decode()
    image["sha256"] = "0" * 64
    (tmp_path / "bad.json").write_text(json.dumps(saved))
    run = shell.run(f"%mistral load {tmp_path}/bad.json")
    assert "does not match its sha256" in str(run.error)


def test_image_headers_give_the_size():
    webp = io.BytesIO()
    Image.new("RGB", (33, 17)).save(webp, format="WEBP")
    gif = io.BytesIO()
    Image.new("P", (5, 9)).save(gif, format="GIF")
    for data, size in [
        (png(31, 7), (31, 7)),
        (jpeg(50, 25), (50, 25)),
        (webp.getvalue(), (33, 17)),
        (gif.getvalue(), (5, 9)),
    ]:
        assert image_size(data, sniff_mime(data)) == size


def test_a_figure_and_a_pil_image_from_a_real_kernel(fake, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from tests.support import TEST_KEY

    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    monkeypatch.setenv("MISTRAL_MAGIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    cells = [
        "%load_ext mistral_magic",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3), dpi=50)\nax.plot([1, 3, 2])",
        "from PIL import Image\nphoto = Image.new('RGB', (120, 80), 'orange')",
        f"%%mistral {VISION} --image fig --image photo\nWhat do you see?",
        "plt.figure(figsize=(2, 2), dpi=40)\nplt.plot([3, 1]);",  # drawn, shown and closed by the inline backend
        f"%%mistral {VISION} --once --image last\nAnd this one?",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in nb.cells[4].outputs)
    first, last = chat_bodies(fake)
    parts = first["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What do you see?"}
    figure, photo = decode(parts[1]["image_url"]), decode(parts[2]["image_url"])
    assert figure[0] == photo[0] == "data:image/png;base64"
    assert figure[1].size == (200, 150) and photo[1].size == (120, 80)
    assert photo[1].convert("RGB").getpixel((5, 5)) == (255, 165, 0)
    assert decode(last["messages"][-1]["content"][1]["image_url"])[1].size == (80, 80)
    assert "[2 image(s)]" in nb.cells[3].outputs[-1].data["text/plain"]


def test_on_the_local_model_an_image_cell_says_so_and_sends_nothing(shell, fake):
    from mistral_magic.local.mode import LOCAL_SOURCE

    shell.magics.set_by(LOCAL_SOURCE, base_url=fake.url + "/v1", model="smollm2")  # what %mistral local sets
    shell.ns["t_png"] = png(8, 8)
    run = shell.ok("%%mistral --image t_png\nlook")
    assert "The local model (%mistral local) reads no images, so this cell sent nothing" in run.stdout
    assert fake.requests == [] and shell.magics.session.store.get("default").turns == []
    shell.ok("%%mistral\ntext still works")
    assert len(chat_bodies(fake)) == 1


def test_a_server_without_a_model_list_is_asked_for_it_once(shell, fake):
    from tests.fakeapi import RawReply

    fake.models_reply = RawReply(status=404, pieces=[b'{"detail": "Not Found"}'], content_type="application/json")
    shell.ns["t_png"] = png(8, 8)
    shell.ok(f"%%mistral {VISION} --image t_png\none")
    shell.ok(f"%%mistral {VISION} --image t_png\ntwo")
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/chat/completions", "/v1/chat/completions"]


def test_an_animated_gif_is_refused_and_a_still_one_is_sent(shell, fake):
    frames = [Image.new("RGB", (6, 4), color) for color in ("red", "green", "blue")]
    animated, still = io.BytesIO(), io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(still, format="GIF")
    shell.ns["t_anim"], shell.ns["t_still"] = animated.getvalue(), still.getvalue()
    run = shell.run(f"%%mistral {VISION} --image t_anim\nmoving")
    assert "t_anim is an animated GIF" in str(run.error) and fake.requests == []
    shell.ok(f"%%mistral {VISION} --image t_still\nstill")
    url = chat_bodies(fake)[-1]["messages"][-1]["content"][1]["image_url"]
    assert url.startswith("data:image/gif;base64,") and decode(url)[1].size == (6, 4)


def test_help_lists_explain_and_image(shell, fake):
    shown = shell.ok("%mistral help").plain[-1]
    assert "%mistral explain [-c NAME] [question ...]" in shown and "--image X" in shown
