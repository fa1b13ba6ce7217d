"""The description of one categorical field, shared by data loaders, tables and models."""

from __future__ import annotations

from dataclasses import dataclass

from embedlab._validation import check_int

__all__ = ["Field"]


@dataclass(frozen=True)
class Field:
    """A categorical feature: ids of this field lie in ``[0, cardinality)``.

    Args:
        name: field name, e.g. ``"user"``.
        cardinality: number of distinct ids (including any out-of-vocabulary id).

    Example:
        >>> Field("user", cardinality=957)
        Field(name='user', cardinality=957)
    """

    name: str
    cardinality: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Field name must be a non-empty string, got {self.name!r}")
        check_int(f"cardinality of field {self.name!r}", self.cardinality, min_value=1)
