from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab._validation import (
    check_choice,
    check_compression,
    check_finite,
    check_fraction,
    check_ids_in_range,
    check_ids_tensor,
    check_int,
    check_positive_float,
)


def test_check_int() -> None:
    assert check_int("dim", 4, min_value=1) == 4
    assert check_int("dim", np.int64(3)) == 3
    with pytest.raises(ValueError, match=r"dim must be >= 1, got 0"):
        check_int("dim", 0, min_value=1)
    with pytest.raises(TypeError, match=r"dim must be an integer, got 2.5"):
        check_int("dim", 2.5)
    with pytest.raises(TypeError, match=r"dim must be an integer, got True"):
        check_int("dim", True)


def test_check_compression() -> None:
    assert check_compression(1) == 1.0
    assert check_compression(10) == 10.0
    with pytest.raises(ValueError, match=r"compression must be >= 1, got 0.5"):
        check_compression(0.5)
    with pytest.raises(ValueError, match=r"compression must be finite, got nan"):
        check_compression(float("nan"))
    with pytest.raises(TypeError, match=r"compression must be a number"):
        check_compression("10")


def test_positive_float_and_fraction() -> None:
    assert check_positive_float("lr", 0.1) == 0.1
    with pytest.raises(ValueError, match=r"lr must be > 0, got 0"):
        check_positive_float("lr", 0)
    assert check_fraction("p", 0.5) == 0.5
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\), got 1"):
        check_fraction("p", 1)


def test_check_choice_lists_values() -> None:
    assert check_choice("op", "add", ["mult", "add"]) == "add"
    with pytest.raises(ValueError, match=r"op must be one of add, mult; got 'x'"):
        check_choice("op", "x", ["mult", "add"])


def test_check_finite() -> None:
    check_finite("x", np.ones(3))
    with pytest.raises(
        ValueError, match=r"x must be finite, got a non-finite value at index \(1,\)"
    ):
        check_finite("x", np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"t must be finite.*\(0, 1\)"):
        check_finite("t", torch.tensor([[0.0, float("inf")]]))


def test_check_ids() -> None:
    ids = torch.tensor([[0, 1], [2, 3]])
    check_ids_tensor(ids, 2)
    with pytest.raises(
        ValueError, match=r"ids must have shape \(batch, n_fields=3\), got \(2, 2\)"
    ):
        check_ids_tensor(ids, 3)
    with pytest.raises(TypeError, match="int64 or int32"):
        check_ids_tensor(ids.float(), 2)
    with pytest.raises(ValueError, match=r"ids must be >= 0, got -1 at row 1, field 0"):
        check_ids_tensor(torch.tensor([[0, 0], [-1, 0]]), 2)
    check_ids_in_range(ids, [3, 4], ["a", "b"])
    with pytest.raises(ValueError, match=r"ids of field 'b' must be in \[0, 3\), got 3 at row 1"):
        check_ids_in_range(ids, [3, 3], ["a", "b"])
