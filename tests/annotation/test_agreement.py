"""agreement(): counts, percent agreement, Cohen's kappa (checked against hand computation) and the table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import mistral_magic
from mistral_magic import UsageError


def pairs(table: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    a, b = [], []
    for (x, y), count in table.items():
        a += [x] * count
        b += [y] * count
    return a, b


def test_two_by_two_kappa_by_hand():
    # [[20, 5], [10, 15]]: p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    a, b = pairs({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    result = mistral_magic.agreement(a, b)
    assert (result.count, result.agreed, result.percent) == (50, 35, 70.0)
    assert result.kappa == pytest.approx(0.4)
    assert result.labels == ["no", "yes"] and result.confusion == [[15, 10], [5, 20]]


def test_three_classes_by_hand():
    # rows a: x 5, y 4, z 3; cols b: x 7, y 4, z 1; p_o = 8/12
    # p_e = (5*7 + 4*4 + 3*1) / 144 = 54/144; kappa = (96 - 54) / (144 - 54) = 42/90
    a, b = pairs({("x", "x"): 4, ("x", "y"): 1, ("y", "y"): 3, ("y", "x"): 1, ("z", "z"): 1, ("z", "x"): 2})
    result = mistral_magic.agreement(a, b)
    assert result.confusion == [[4, 1, 0], [1, 3, 0], [2, 0, 1]]
    assert result.kappa == pytest.approx(42 / 90)


def test_one_class_on_both_sides_has_no_kappa_and_full_agreement():
    result = mistral_magic.agreement(["a"] * 4, ["a"] * 4)
    assert result.percent == 100.0 and math.isnan(result.kappa)
    assert "kappa undefined (one label only)" in result.summary()


def test_one_class_on_one_side_gives_kappa_zero():
    # p_o = 0.75; rows: a 1.0; cols: a 0.75, b 0.25; p_e = 0.75; kappa = 0
    result = mistral_magic.agreement(["a"] * 4, ["a", "a", "b", "a"])
    assert result.kappa == pytest.approx(0.0) and result.percent == 75.0


def test_series_align_on_the_index_missing_pairs_are_left_out_and_categories_show_zeros():
    kinds = pd.CategoricalDtype(["pos", "neg", "neu"])
    model = pd.Series(["pos", "neg", None, "pos"], index=[1, 2, 3, 4], name="model", dtype=kinds)
    gold = pd.Series(["neg", "pos", "pos", "neg"], index=[4, 1, 2, 3], name="gold")  # by index: pos pos neg neg
    result = mistral_magic.agreement(model, gold)
    assert result.labels == ["pos", "neg", "neu"] and result.dropped == 1
    assert result.confusion == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]  # (pos,pos) (neg,pos) (pos,neg)
    table = result.table()
    assert table.loc["neu", "neu"] == 0 and table.index.name == "model" and table.columns.name == "gold"
    bundle = result._repr_mimebundle_()
    assert "<table>" in bundle["text/html"] and "model vs gold: 1 of 3 agree (33.3%)" in bundle["text/plain"]
    assert "1 pair(s) with a missing label left out" in bundle["text/plain"]


def test_bad_input_is_one_usage_error():
    with pytest.raises(UsageError, match="3 and 2 labels"):
        mistral_magic.agreement(["a", "b", "c"], ["a", "b"])
    with pytest.raises(UsageError, match="two lists or pandas Series"):
        mistral_magic.agreement("abc", "abd")


def test_labels_that_are_lists_are_one_usage_error():
    with pytest.raises(UsageError, match=r"^agreement\(\): label 0 of a is a list") as caught:
        mistral_magic.agreement([["x"], ["y"]], [["x"], ["z", "y"]])
    assert "\n" not in str(caught.value)
    frame = pd.DataFrame({"tags": [["x"], ["y"]], "gold": ["x", "y"]})
    with pytest.raises(UsageError, match=r"label 0 of tags is a list"):
        mistral_magic.agreement(frame["tags"], frame["gold"])


def test_duplicate_index_labels_are_one_usage_error_unless_both_columns_share_the_index():
    model = pd.Series(["a", "b", "a"], index=[1, 1, 2], name="model")
    gold = pd.Series(["a", "b", "b"], index=[2, 1, 1], name="gold")
    with pytest.raises(UsageError, match=r"the index of model has duplicate labels \(1\)") as caught:
        mistral_magic.agreement(model, gold)
    assert "\n" not in str(caught.value) and "reset_index" in str(caught.value)
    same = mistral_magic.agreement(model, pd.Series(["a", "a", "a"], index=[1, 1, 2], name="gold"))
    assert (same.count, same.agreed) == (3, 2)  # one index: the rows pair up as they stand


def test_no_comparable_pair_is_said_as_such():
    result = mistral_magic.agreement(["a", None, "b"], [None, "c", None])
    assert result.count == 0 and result.dropped == 3
    assert (
        result.summary()
        == "a vs b: no pair has a label on both sides, so nothing is compared; 3 pair(s) with a missing label left out."
    )
    assert "one label only" not in result._repr_mimebundle_()["text/plain"]
