"""CompressedEmbedding / CompressedEmbeddingBag: exact nn.Embedding / nn.EmbeddingBag behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import embedlab
from embedlab.tables import CompressedEmbedding, CompressedEmbeddingBag

N, DIM = 50, 8


def full_pair(padding_idx: int | None = None) -> tuple[nn.Embedding, CompressedEmbedding]:
    ref = nn.Embedding(N, DIM, padding_idx=padding_idx)
    emb = CompressedEmbedding(N, DIM, method="full", compression=1, padding_idx=padding_idx)
    with torch.no_grad():
        emb.table.weight.copy_(ref.weight)
    return ref, emb


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (0,)])
@pytest.mark.parametrize("padding_idx", [None, 3, -1])
def test_matches_nn_embedding(shape: tuple[int, ...], padding_idx: int | None) -> None:
    torch.manual_seed(0)
    ref, emb = full_pair(padding_idx)
    ids = torch.randint(0, N, shape)
    if ids.numel():
        ids.view(-1)[0] = N - 1 if padding_idx == -1 else (padding_idx or 0)
    assert torch.equal(emb(ids), ref(ids))
    assert emb(ids).shape == (*shape, DIM)
    emb(ids).sum().backward()
    if padding_idx is not None:  # the padding row gets no gradient
        assert emb.table.weight.grad is not None
        assert float(emb.table.weight.grad[padding_idx % N].abs().sum()) == 0.0


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_bag_matches_nn_embedding_bag(
    mode: str, include_last_offset: bool, padding_idx: int | None
) -> None:
    torch.manual_seed(1)
    ref = nn.EmbeddingBag(
        N, DIM, mode=mode, padding_idx=padding_idx, include_last_offset=include_last_offset
    )
    bag = CompressedEmbeddingBag(
        N,
        DIM,
        method="full",
        compression=1,
        mode=mode,  # type: ignore[arg-type]
        padding_idx=padding_idx,
        include_last_offset=include_last_offset,
    )
    with torch.no_grad():
        bag.table.weight.copy_(ref.weight)
    ids = torch.randint(0, N, (20,))
    ids[2], ids[5:9] = 3, 3  # a padded entry and a bag of padding only
    offsets = torch.tensor([0, 2, 5, 9, 9, 15] + ([20] if include_last_offset else []))
    weights = torch.rand(20) if mode == "sum" else None
    assert torch.equal(bag(ids, offsets, weights), ref(ids, offsets, weights))
    if not include_last_offset:
        assert torch.equal(bag(ids.view(4, 5)), ref(ids.view(4, 5)))
    if mode != "sum":
        with pytest.raises((ValueError, RuntimeError), match="per_sample_weights"):
            bag(ids, offsets, torch.rand(20))


def test_bad_ids_and_arguments() -> None:
    emb = CompressedEmbedding(N, DIM, method="hash", compression=10)
    with pytest.raises(ValueError, match=rf"ids must be in \[0, num_embeddings={N}\), got {N}"):
        emb(torch.tensor([1, N]))
    with pytest.raises(ValueError, match=r"ids must be in \[0, num_embeddings=50\), got -2"):
        emb(torch.tensor([[-2, 1]]))
    with pytest.raises(TypeError, match="ids must be an int64 or int32 tensor"):
        emb(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"padding_idx must be in \[-50, 50\), got 50"):
        CompressedEmbedding(N, DIM, method="hash", compression=10, padding_idx=N)
    bag = CompressedEmbeddingBag(N, DIM, method="hash", compression=10)
    with pytest.raises(ValueError, match="offsets must be given for 1-D input"):
        bag(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="mode must be one of"):
        CompressedEmbeddingBag(N, DIM, method="hash", compression=10, mode="min")  # type: ignore[arg-type]


def test_swaps_into_a_plain_model_and_trains() -> None:
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self, emb: nn.Module) -> None:
            super().__init__()
            self.emb = emb
            self.out = nn.Linear(DIM, 1)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.out(self.emb(ids).mean(dim=1)).squeeze(-1)

    model = Model(nn.Embedding(1000, DIM, padding_idx=0))
    model.emb = embedlab.CompressedEmbedding(1000, DIM, method="qr", compression=10, padding_idx=0)
    ids = torch.randint(0, 1000, (256, 5))
    y = (ids[:, 0] % 2).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = nn.functional.binary_cross_entropy_with_logits(model(ids), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert model.emb.memory_bytes() <= 1000 * DIM * 4 // 10


def test_export_of_a_wrapper(tmp_path: object) -> None:
    from pathlib import Path

    emb = CompressedEmbedding(N, DIM, method="tt", compression=2)
    module = embedlab.load_exported(emb.export(Path(str(tmp_path)) / "e.safetensors"))
    ids = torch.arange(N).unsqueeze(1)
    assert torch.equal(module(ids)[:, 0], emb.eval()(ids[:, 0]))
