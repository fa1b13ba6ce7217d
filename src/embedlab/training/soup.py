"""Model soups: average the weights of models fine-tuned from one initialisation.

Wortsman et al., "Model soups: averaging weights of multiple fine-tuned models improves
accuracy without increasing inference time", ICML 2022. KaLM-Embedding-V2 uses the same
parameter averaging as its last training stage.

- :func:`uniform_soup`: the plain mean of every ingredient's weights;
- :func:`greedy_soup`: ingredients sorted by their own held-out score, best first; each
  next one is kept only if the soup with it scores at least as well on the held-out
  function. The first ingredient alone is a candidate soup, so the greedy soup never scores
  below the best ingredient.

Ingredients are ``nn.Module`` s or state dicts with the same keys, shapes and dtypes.
Floating tensors are averaged (in float64, then cast back); non-floating tensors (e.g.
BatchNorm's ``num_batches_tracked``) are taken from the first ingredient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from embedlab.training._state_dicts import Ingredient, check_same_parameters, state_of

__all__ = ["Ingredient", "SoupResult", "greedy_soup", "uniform_soup"]


@dataclass
class SoupResult:
    """What :func:`greedy_soup` chose.

    Attributes:
        state_dict: the soup's weights (load with ``model.load_state_dict``).
        kept: indices (into the given ingredients) of the ingredients in the soup, in the
            order they were added.
        ingredient_scores: held-out score of each ingredient alone, in the given order.
        score: held-out score of the soup.
        history: ``(index tried, soup score with it, kept)`` for each ingredient after the
            first, in the order tried.
    """

    state_dict: dict[str, torch.Tensor]
    kept: list[int]
    ingredient_scores: list[float]
    score: float
    history: list[tuple[int, float, bool]]


def _states(ingredients: Sequence[Ingredient]) -> list[dict[str, torch.Tensor]]:
    if isinstance(ingredients, (nn.Module, Mapping)) or not isinstance(ingredients, Sequence):
        raise TypeError(
            f"ingredients must be a sequence of modules or state dicts, got "
            f"{type(ingredients).__name__}"
        )
    if len(ingredients) == 0:
        raise ValueError("ingredients must hold at least 1 model, got 0")
    states = [state_of(i, ing) for i, ing in enumerate(ingredients)]
    ref = states[0]
    for i, st in enumerate(states[1:], start=1):
        why = "a soup needs one architecture"
        check_same_parameters(ref, st, f"ingredients[{i}]", "ingredients[0]", why)
        for k, v in st.items():
            if v.dtype != ref[k].dtype:
                raise ValueError(
                    f"parameter {k!r} must have the same dtype in every ingredient: "
                    f"ingredients[0] has {ref[k].dtype}, ingredients[{i}] has {v.dtype}"
                )
    return states


def _average(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, first in states[0].items():
        if not (first.is_floating_point() or first.is_complex()):
            out[k] = first.clone()
            continue
        wide = torch.complex128 if first.is_complex() else torch.float64
        acc = torch.zeros(first.shape, dtype=wide, device=first.device)
        for st in states:
            acc += st[k].to(device=first.device, dtype=wide)
        out[k] = (acc / len(states)).to(first.dtype)
    return out


def uniform_soup(ingredients: Sequence[Ingredient]) -> dict[str, torch.Tensor]:
    """The mean of the ingredients' weights (a uniform soup).

    Args:
        ingredients: modules or state dicts of one architecture (same keys, shapes, dtypes).

    Returns:
        a state dict: floating tensors averaged, others from ``ingredients[0]``.

    Raises:
        ValueError: no ingredient, or a parameter missing / of another shape or dtype in
            some ingredient (the message names the parameter).

    Example:
        >>> from torch import nn
        >>> a, b = nn.Linear(2, 1), nn.Linear(2, 1)
        >>> soup = uniform_soup([a, b])
        >>> bool(((soup["bias"] - (a.bias + b.bias) / 2).abs() < 1e-6).all())
        True
    """
    return _average(_states(ingredients))


def greedy_soup(
    ingredients: Sequence[Ingredient],
    evaluate: Callable[[dict[str, torch.Tensor]], float],
) -> SoupResult:
    """A greedy soup (Wortsman et al. 2022, Recipe 1).

    Scores each ingredient alone with ``evaluate``, sorts them best first (ties keep the
    given order), starts the soup with the best one and adds each next ingredient if the
    uniform average of the soup's members and it scores ``>=`` the soup's current score.

    Args:
        ingredients: modules or state dicts of one architecture.
        evaluate: held-out score of a state dict, higher is better (e.g. load it into a
            model and return validation accuracy). Use held-out data, not training data.

    Returns:
        a :class:`SoupResult`; its score is ``>= max(ingredient_scores)``.

    Raises:
        ValueError: as :func:`uniform_soup`, or ``evaluate`` returned a non-finite value.
    """
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
    states = _states(ingredients)

    def score(state: dict[str, torch.Tensor], what: str) -> float:
        value = float(evaluate(state))
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"evaluate must return a finite score, got {value} for {what}")
        return value

    alone = [score(st, f"ingredients[{i}]") for i, st in enumerate(states)]
    order = sorted(range(len(states)), key=lambda i: -alone[i])
    kept = [order[0]]
    best = alone[order[0]]
    soup = {k: v.clone() for k, v in states[order[0]].items()}
    history: list[tuple[int, float, bool]] = []
    for i in order[1:]:
        candidate = _average([states[j] for j in [*kept, i]])
        s = score(candidate, f"the soup of ingredients {[*kept, i]}")
        keep = s >= best
        history.append((i, s, keep))
        if keep:
            kept.append(i)
            best, soup = s, candidate
    return SoupResult(
        state_dict=soup, kept=kept, ingredient_scores=alone, score=best, history=history
    )
