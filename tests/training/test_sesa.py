"""SESA: concept-named dimensions, their alignment on synthetic data, the ranking AUC, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from embedlab.training.sesa import SESA, explain_dimension, fit_sesa, ranking_auc

CONCEPTS = ["Comedy", "Drama", "Horror"]


def _synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items with known concepts; each user likes the items of one or two concepts.

    Returns (item_concepts (60, 3), user taste (40, 3), positive users, positive items).
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random((60, 3)) < 0.35).astype(np.float32)
    labels[np.arange(60), np.arange(60) % 3] = 1.0  # every item has a concept
    taste = (rng.random((40, 3)) < 0.4).astype(np.float32)
    taste[np.arange(40), np.arange(40) % 3] = 1.0
    liked = (taste @ labels.T) > 0  # (users, items)
    liked &= rng.random(liked.shape) < 0.8
    users, items = np.nonzero(liked)
    return labels, taste, users, items


@pytest.fixture(scope="module")
def trained() -> tuple[SESA, SESA, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    labels, taste, users, items = _synthetic()
    models = []
    for weight in (1.0, 0.0):
        model = SESA(40, 60, CONCEPTS, labels, residual_dim=2, seed=0)
        fit_sesa(model, users, items, epochs=15, batch_size=256, lr=0.05, concept_weight=weight)
        models.append(model)
    return models[0], models[1], labels, taste


def test_concept_dims_align_with_the_generating_concepts(
    trained: tuple[SESA, SESA, np.ndarray, np.ndarray],
) -> None:
    sesa, _, labels, taste = trained
    items = sesa.item.detach().numpy()
    users = sesa.user.detach().numpy()
    for c, name in enumerate(CONCEPTS):
        assert roc_auc_score(labels[:, c], items[:, c]) > 0.95
        info = explain_dimension(sesa, name, k=8)
        assert info["concept_share"] == 1.0
        # users who like the concept weigh its dimension more than users who do not
        likes = taste[:, c] == 1
        assert users[likes, c].mean() > users[~likes, c].mean() + 0.1


def test_latent_control_dims_are_not_aligned(
    trained: tuple[SESA, SESA, np.ndarray, np.ndarray],
) -> None:
    _, latent, labels, _ = trained
    items = latent.item.detach().numpy()
    aucs = [roc_auc_score(labels[:, c], items[:, c]) for c in range(3)]
    assert float(np.mean(aucs)) < 0.9


def test_dimension_names_round_trip() -> None:
    labels = np.eye(3, dtype=np.float32)
    model = SESA(2, 3, CONCEPTS, labels, residual_dim=2)
    assert model.dimension_names == ("Comedy", "Drama", "Horror", "latent_0", "latent_1")
    assert model.dim == 5 and model.n_concepts == 3
    for k, name in enumerate(model.dimension_names):
        assert model.dimension_index(name) == k
        with torch.no_grad():
            model.item.zero_()
            model.item[k % 3, k] = 1.0
        assert model.top_items(name, k=1).tolist() == [k % 3]
    assert explain_dimension(model, "latent_0")["concept_share"] is None
    with pytest.raises(ValueError, match="concept"):
        model.top_items("Western")


def test_explain_score_sums_to_score() -> None:
    model = SESA(3, 4, ["a", "b"], np.array([[1, 0], [0, 1], [1, 1], [0, 0]]), residual_dim=1)
    parts = model.explain_score(2, 1)
    assert set(parts) == {"a", "b", "latent_0", "bias"}
    score = float(model.score(torch.tensor([2]), torch.tensor([1])).detach())
    assert sum(parts.values()) == pytest.approx(score, abs=1e-6)
    assert model.all_scores()[2, 1] == pytest.approx(score, abs=1e-6)


def test_seed_fixes_initialisation() -> None:
    labels = np.eye(3)
    a, b = SESA(5, 3, CONCEPTS, labels, seed=3), SESA(5, 3, CONCEPTS, labels, seed=3)
    assert torch.equal(a.user, b.user) and torch.equal(a.item, b.item)
    assert not torch.equal(a.user, SESA(5, 3, CONCEPTS, labels, seed=4).user)


def test_ranking_auc_matches_a_naive_per_user_reference() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, (6, 12)).astype(np.float64)  # many ties
    seen_u, seen_i = np.nonzero(rng.random((6, 12)) < 0.3)
    test_u, test_i = np.nonzero(rng.random((6, 12)) < 0.2)
    got = ranking_auc(scores, test_u, test_i, seen_u, seen_i)
    expected = []
    for u in range(6):
        pos = sorted(set(test_i[test_u == u].tolist()))
        excluded = set(pos) | set(seen_i[seen_u == u].tolist())
        neg = [i for i in range(12) if i not in excluded]
        if not pos or not neg:
            continue
        y = [1] * len(pos) + [0] * len(neg)
        expected.append(roc_auc_score(y, scores[u, pos + neg]))
    assert got == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_bad_input() -> None:
    labels = np.eye(3)
    with pytest.raises(ValueError, match="concepts"):
        SESA(2, 3, [], np.zeros((3, 0)))
    with pytest.raises(ValueError, match=r"item_concepts.*'Horror'"):
        SESA(2, 3, CONCEPTS, np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]]))
    with pytest.raises(ValueError, match="concepts must be unique"):
        SESA(2, 3, ["a", "a", "b"], labels)
    with pytest.raises(ValueError, match="item_concepts must have shape"):
        SESA(2, 4, CONCEPTS, labels)
    with pytest.raises(ValueError, match="0/1"):
        SESA(2, 3, CONCEPTS, labels * 2)
    with pytest.raises(TypeError, match="concepts"):
        SESA(2, 3, "Comedy", labels)
    with pytest.raises(ValueError, match="residual_dim"):
        SESA(2, 3, CONCEPTS, labels, residual_dim=-1)
    model = SESA(2, 3, CONCEPTS, labels)
    with pytest.raises(ValueError, match="loss"):
        fit_sesa(model, [0], [1], loss="hinge")
    with pytest.raises(ValueError, match="items must be ids"):
        fit_sesa(model, [0], [3])
    with pytest.raises(ValueError, match="users"):
        fit_sesa(model, [], [])
    with pytest.raises(ValueError, match="user must be"):
        model.explain_score(2, 0)


@pytest.mark.parametrize("loss", ["bpr", "bce"])
def test_both_ranking_losses_decrease(loss: str) -> None:
    labels, _, users, items = _synthetic(1)
    model = SESA(40, 60, CONCEPTS, labels, residual_dim=1, seed=1)
    result = fit_sesa(model, users, items, epochs=6, batch_size=512, lr=0.05, loss=loss)
    assert len(result.rank_loss) == len(result.concept_loss) == 6
    assert result.rank_loss[-1] < result.rank_loss[0]
    assert result.concept_loss[-1] < result.concept_loss[0]


def test_unlabelled_items_get_their_concepts_from_the_ratings() -> None:
    labels, _, users, items = _synthetic()
    hidden = np.arange(60) >= 45  # these items' labels are never used in training
    model = SESA(40, 60, CONCEPTS, labels, residual_dim=2, seed=0)
    fit_sesa(
        model,
        users,
        items,
        epochs=15,
        batch_size=256,
        lr=0.05,
        labelled_items=np.flatnonzero(~hidden),
    )
    vecs = model.item.detach().numpy()[hidden]
    for c in range(3):
        assert roc_auc_score(labels[hidden, c], vecs[:, c]) > 0.9
    with pytest.raises(ValueError, match="labelled_items"):
        fit_sesa(model, users, items, labelled_items=[60])
    with pytest.raises(ValueError, match="labelled_items"):
        fit_sesa(model, users, items, labelled_items=[])


def test_concept_loss_ignores_unlabelled_items() -> None:
    model = SESA(2, 3, CONCEPTS, np.eye(3), seed=0)
    items = torch.tensor([0, 1, 2])
    only_first = torch.tensor([True, False, False])
    assert float(model.concept_loss(items, only_first).detach()) == pytest.approx(
        float(model.concept_loss(items[:1]).detach())
    )
