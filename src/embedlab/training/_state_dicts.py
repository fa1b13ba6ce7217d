"""State dicts of models that are combined weight by weight (soups, task vectors)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["Ingredient", "check_same_parameters", "state_of"]

#: a fine-tuned model or its ``state_dict()``
Ingredient = nn.Module | Mapping[str, torch.Tensor]


def state_of(i: int, ingredient: Ingredient) -> dict[str, torch.Tensor]:
    """The detached tensors of ``ingredient`` (``ingredients[i]`` in error messages).

    Raises:
        TypeError: not a module or a mapping of names to tensors.
    """
    if isinstance(ingredient, nn.Module):
        return {k: v.detach() for k, v in ingredient.state_dict().items()}
    if isinstance(ingredient, Mapping):
        out: dict[str, torch.Tensor] = {}
        for k, v in ingredient.items():
            if not isinstance(v, torch.Tensor):
                raise TypeError(
                    f"ingredients[{i}][{k!r}] must be a torch.Tensor, got {type(v).__name__}"
                )
            out[str(k)] = v.detach()
        return out
    raise TypeError(
        f"ingredients[{i}] must be a torch.nn.Module or a state dict, got "
        f"{type(ingredient).__name__}"
    )


def check_same_parameters(
    ref: Mapping[str, torch.Tensor],
    other: Mapping[str, torch.Tensor],
    what: str,
    ref_what: str,
    why: str,
) -> None:
    """Raise unless ``other`` has exactly ``ref``'s keys with the same shapes.

    Raises:
        ValueError: names the missing / unexpected keys or the first shape that differs;
            ``why`` ends the key message (e.g. ``"a soup needs one architecture"``).
    """
    missing = sorted(set(ref) - set(other))
    extra = sorted(set(other) - set(ref))
    if missing or extra:
        raise ValueError(
            f"{what} must have the parameters of {ref_what}; missing {missing[:5]}, "
            f"unexpected {extra[:5]} ({why})"
        )
    for k, v in other.items():
        if v.shape != ref[k].shape:
            raise ValueError(
                f"parameter {k!r} must have the same shape in {what} and {ref_what}: "
                f"{ref_what} has {tuple(ref[k].shape)}, {what} has {tuple(v.shape)}"
            )
