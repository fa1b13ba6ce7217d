"""What a checkpoint holds, besides the state dict, to rebuild a table inside any phase.

A phase may change a table beyond the values of its state dict: ``end_phase`` replaces
parameters by ones of another shape (``dedup`` merges rows, ``dpq`` drops its queries),
freezes parameters (``requires_grad=False``: the next phase's optimizer leaves them
out), and sets Python attributes (a pruning schedule's step, a search's report, a
random generator). :func:`capture_phase_state` records the last two as JSON plus
tensors (no pickle); :func:`restore_phase_state` puts a table built afresh back into
that state: parameters and buffers take the saved shapes, the state dict loads, the
``requires_grad`` flags and the table's :attr:`~embedlab.tables.EmbeddingTable.resume_attrs`
are set. No phase is rerun and nothing is retrained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["PhaseState", "adopt_shapes", "capture_phase_state", "restore_phase_state"]


@dataclass
class PhaseState:
    """A table's resume record besides its state dict.

    Attributes:
        meta: JSON: ``frozen`` (names of parameters with ``requires_grad=False``),
            ``attrs`` (JSON-valued resume attributes, None included), ``tensors`` (names
            of tensor-valued ones) and ``generators`` (name -> device of
            ``torch.Generator``-valued ones).
        tensors: the tensor-valued attributes and the generators' states, by name.
    """

    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def capture_phase_state(table: nn.Module, names: tuple[str, ...]) -> PhaseState:
    """The ``requires_grad`` flags of ``table``'s parameters and its attributes ``names``.

    Raises:
        TypeError: an attribute that is neither a tensor, a generator, None nor JSON.
    """
    frozen = sorted(n for n, p in table.named_parameters() if not p.requires_grad)
    meta: dict[str, Any] = {"frozen": frozen, "attrs": {}, "tensors": [], "generators": {}}
    tensors: dict[str, torch.Tensor] = {}
    for name in names:
        value = getattr(table, name)
        if isinstance(value, torch.Tensor):
            meta["tensors"].append(name)
            tensors[name] = value.detach()
        elif isinstance(value, torch.Generator):
            meta["generators"][name] = str(value.device)
            tensors[name] = value.get_state()
        else:
            try:
                meta["attrs"][name] = json.loads(json.dumps(value))
            except (TypeError, ValueError):
                raise TypeError(
                    f"{type(table).__name__}.resume_attrs names {name!r}, a "
                    f"{type(value).__name__}: resume attributes must be tensors, generators, "
                    "None or JSON values"
                ) from None
    return PhaseState(meta, tensors)


def adopt_shapes(module: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Replace every parameter or buffer of ``module`` whose shape or dtype differs from
    its entry in ``state_dict`` by an uninitialised one of the saved shape and dtype (on
    the old one's device, with its ``requires_grad``), so that the state dict loads."""
    current = module.state_dict(keep_vars=True)
    for key, saved in state_dict.items():
        old = current.get(key)
        if old is None or (old.shape == saved.shape and old.dtype == saved.dtype):
            continue
        owner_name, _, leaf = key.rpartition(".")
        owner = module.get_submodule(owner_name)
        fresh = torch.empty(saved.shape, dtype=saved.dtype, device=old.device)
        if isinstance(old, nn.Parameter):
            setattr(owner, leaf, nn.Parameter(fresh, requires_grad=old.requires_grad))
        else:
            setattr(owner, leaf, fresh)


def restore_phase_state(
    table: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    state: PhaseState,
    device: torch.device,
) -> None:
    """Put ``table`` back into the state :func:`capture_phase_state` recorded.

    Shapes are adopted first (:func:`adopt_shapes`), then ``state_dict`` loads (strict;
    the table's own load hooks run), then the ``requires_grad`` flags and the resume
    attributes are set (tensors on ``device``). A generator saved on another device type
    than ``device`` is dropped (None: the table draws afresh from its seed).
    """
    adopt_shapes(table, state_dict)
    table.load_state_dict(dict(state_dict))
    if "frozen" in state.meta:  # absent: a checkpoint written before the flags were saved
        frozen = set(state.meta["frozen"])
        for name, p in table.named_parameters():
            p.requires_grad_(name not in frozen)
    for name, value in state.meta.get("attrs", {}).items():
        setattr(table, name, value)
    for name in state.meta.get("tensors", []):
        setattr(table, name, state.tensors[name].to(device))
    for name, where in state.meta.get("generators", {}).items():
        saved = torch.device(where)
        gen = None
        if saved.type == device.type:
            gen = torch.Generator(device=saved)
            gen.set_state(state.tensors[name])
        setattr(table, name, gen)
