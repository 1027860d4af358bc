"""``--image`` with ``--each`` (and ``annotate(images=...)``): one image per item, in order, cached by its bytes."""

from __future__ import annotations

import base64
import io

import pandas as pd
import pytest
from PIL import Image

VISION = "-m mistral-small-latest"


def write_png(path, shade: int) -> None:
    Image.new("RGB", (16, 12), (shade, 255 - shade, 7)).save(path, format="PNG")


def chat_bodies(fake) -> list[dict]:
    return [r.json() for r in fake.requests if r.path.endswith("/chat/completions")]


def shade_of(body: dict) -> int:
    url = body["messages"][-1]["content"][1]["image_url"]
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.size == (16, 12)
    return image.convert("RGB").getpixel((0, 0))[0]


def test_fifty_images_in_order_cached_and_invalidated_one_by_one(shell, fake, tmp_path):
    paths = []
    for number in range(50):
        paths.append(tmp_path / f"img{number:02}.png")
        write_png(paths[-1], number * 5)
    shell.ns["t_df"] = pd.DataFrame({"name": [f"n{i}" for i in range(50)], "path": [str(p) for p in paths]})
    cell = f"%%mistral {VISION} --each t_df --out t_answers --image {{path}}\nWhat colour is {{name}}?"
    shell.ok(cell)
    bodies = chat_bodies(fake)
    assert len(bodies) == 50
    for body in bodies:  # each request carries its own row's image
        number = int(body["messages"][-1]["content"][0]["text"].split("n")[-1].rstrip("?"))
        assert shade_of(body) == number * 5
    answers = list(shell.ns["t_answers"])
    assert answers == [f"Echo: What colour is n{i}? [1 image(s)]" for i in range(50)]

    fake.requests.clear()
    shell.ok(cell)  # a re-run: every answer from the cache
    assert chat_bodies(fake) == [] and list(shell.ns["t_answers"]) == answers

    write_png(paths[7], 250)  # a changed image: only its own entry is asked again
    shell.ok(cell)
    again = chat_bodies(fake)
    assert len(again) == 1 and "n7?" in again[0]["messages"][-1]["content"][0]["text"]
    assert shade_of(again[0]) == 250


def test_a_column_of_pil_images_and_a_fixed_image(shell, fake):
    shell.ns["t_logo"] = Image.new("RGB", (5, 5), "blue")
    shell.ns["t_df"] = pd.DataFrame(
        {"photo": [Image.new("RGB", (16, 12), (shade, 0, 0)) for shade in (10, 20, 30)], "id": [0, 1, 2]}
    )
    shell.ok(f"%%mistral {VISION} --each t_df --out t_out --image {{photo}} --image t_logo\nItem {{id}}")
    bodies = sorted(chat_bodies(fake), key=lambda b: b["messages"][-1]["content"][0]["text"])
    assert [shade_of(b) for b in bodies] == [10, 20, 30]
    assert all(len(b["messages"][-1]["content"]) == 3 for b in bodies)


@pytest.mark.parametrize("missing", ["a", "c"])
def test_a_missing_file_is_that_items_error_and_the_others_are_answered(shell, fake, tmp_path, missing):
    for name in {"a", "b", "c"} - {missing}:
        write_png(tmp_path / f"{name}.png", 40)
    shell.ns["t_dir"] = str(tmp_path)
    shell.ns["t_names"] = ["a", "b", "c"]
    cell = f"%%mistral {VISION} --each t_names --out t_out --image {{t_dir}}/{{item}}.png\nLook at {{item}}"
    run = shell.ok(cell)
    assert "3 items: 2 answered (0 from the cache), 1 failed" in run.stdout
    assert [answer is None for answer in shell.ns["t_out"]] == [name == missing for name in ("a", "b", "c")]
    assert len(chat_bodies(fake)) == 2
    [error] = shell.magics.session.last_run.errors
    assert error.item == missing and "Item" in error.error and f"{missing}.png" in error.error
    assert f"{missing}.png" in shell.ok("%mistral errors").plain[-1]
    write_png(tmp_path / f"{missing}.png", 40)  # the file is back: a re-run sends that item alone
    shell.ok(cell)
    assert len(chat_bodies(fake)) == 3 and None not in shell.ns["t_out"]


def test_each_images_to_a_model_without_vision_sends_nothing(shell, fake, tmp_path):
    write_png(tmp_path / "a.png", 1)
    shell.ns["t_paths"] = [str(tmp_path / "a.png")]
    run = shell.run("%%mistral --each t_paths --image {item}\nLook")
    assert "does not read images" in str(run.error) and chat_bodies(fake) == []


def test_annotate_takes_images(shell, fake, tmp_path):
    import mistral_magic

    write_png(tmp_path / "x.png", 90)
    run = mistral_magic.annotate(
        [str(tmp_path / "x.png")], "What is it?", model="mistral-small-latest", images=["{item}"]
    )
    assert list(run) == ["Echo: What is it? [1 image(s)]"]
    assert shade_of(chat_bodies(fake)[-1]) == 90
