"""A small torch module's parameters as named ``.npy`` arrays of an index folder, and back.

Learned codes (``BEBR``, ``BAE``) store their network beside the codes: one float32
array per state-dict entry (key ``p_<name with dots as underscores>``) and, in the
metadata, the list of ``[state-dict name, array key]`` pairs. Loading checks that the
list matches the network's entries and every array's dtype and shape: a damaged or
foreign folder is a clear error, never a partly loaded model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

__all__ = ["load_net_arrays", "net_arrays"]


def net_arrays(net: nn.Module) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """``({array key: float32 array}, [[state-dict name, array key], ...])`` of ``net``."""
    arrays: dict[str, np.ndarray] = {}
    names: list[list[str]] = []
    for name, tensor in net.state_dict().items():
        key = "p_" + name.replace(".", "_")
        arrays[key] = tensor.detach().cpu().numpy().copy()
        names.append([name, key])
    return arrays, names


def load_net_arrays(
    net: nn.Module, arrays: dict[str, np.ndarray], listed_pairs: Any, folder: Path, spec: str
) -> None:
    """Load the arrays named by ``listed_pairs`` into ``net`` (eval mode), checking them.

    Raises:
        ValueError: the list does not match ``net``'s entries, or an array is not float32
            of the entry's shape.
    """
    import torch

    expected = net.state_dict()
    listed = {str(name): str(key) for name, key in listed_pairs}
    if set(listed) != set(expected):
        raise ValueError(
            f"{folder} does not hold the parameters of a {spec} model "
            f"(expected {len(expected)}, listed {len(listed)})"
        )
    state = {}
    for name, ref in expected.items():
        arr = np.asarray(arrays[listed[name]])
        if arr.shape != tuple(ref.shape) or arr.dtype != np.float32:
            raise ValueError(
                f"model parameter {name} must be float32 {tuple(ref.shape)}, "
                f"got {arr.dtype} {arr.shape}"
            )
        state[name] = torch.from_numpy(np.array(arr))
    net.load_state_dict(state)
    net.eval()
