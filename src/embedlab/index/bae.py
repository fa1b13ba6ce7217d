"""BAE: Bernoulli binary-autoencoder codes (Binary Latent Diffusion), searched by popcount.

Paper: Wang et al., "Binary Latent Diffusion", CVPR 2023 (arXiv:2304.04820). The
autoencoder (encoder -> sigmoid -> Bernoulli bits with a straight-through gradient in
training, ``p > 0.5`` at inference; decoder back to the vector) and its training are in
:mod:`embedlab.index._bae_model`. The paper's Bernoulli *diffusion* model, which learns a
prior over the bits to generate images, is out of scope: here the bits are a retrieval code.

A vector becomes ``bits`` bits (``bits / 8`` bytes; 32 bytes for ``BAE256``). Scores, higher
is better:

- ``scoring="hamming"`` (default): the query is encoded the same way and the score is
  ``-hamming(b_q, b_x)`` (XOR + popcount, ``faiss.knn_hamming`` on the packed words).
- ``scoring="asym"``: the query is not binarised; the score of a stored code ``b`` is its
  log-probability under the query's Bernoulli encoding distribution,
  ``log P(b | q) = sum_j b_j log p_j + (1 - b_j) log(1 - p_j)`` with ``p = sigmoid(l_q)``,
  which is ``(l_q . s + sum_j l_j) / 2 - sum_j softplus(l_j)`` for the +-1 code ``s = 2b - 1``:
  the query's encoder logits against the code bits, scanned with the same per-byte lookup
  tables as ``Binary``'s asymmetric scoring.

Measured on DBpedia (beir-mini, MiniLM 384-d, 4,000 vectors, 1,000 held-out queries,
recall@10 against exact search; ``embedlab bench retrieval``): ``BAE256`` 0.393 (the same
network untrained, i.e. signs of centred random projections: 0.360), ``BAE256(scoring=asym)``
0.516, against sign ``Binary(scoring=hamming)`` at 384 bits 0.479, ``Binary`` (asymmetric)
0.635 and ``BEBR1`` 0.426; with ``Rerank(Flat)``: 0.865 / 0.958 against 0.931 / 0.994 /
0.886. The reconstruction objective does not make 256 bits rank better than 384 sign bits
(``BAE384``: 0.469); longer training (60 epochs) did not help (0.375).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Self, cast

import faiss
import numpy as np
import numpy.typing as npt

from embedlab._validation import check_choice, check_int, check_positive_float
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index, row_norms
from embedlab.index._grow import Growing, grow
from embedlab.index._net_state import load_net_arrays, net_arrays
from embedlab.index._scan import scan_lut, sign_tables

if TYPE_CHECKING:
    from embedlab.index._bae_model import BAENet, BAETrainConfig

__all__ = ["BAE", "pack_bits", "unpack_bits"]

U64 = npt.NDArray[np.uint64]
Scoring = Literal["hamming", "asym"]
SCORINGS = ("asym", "hamming")
_Q_BLOCK = 256  # queries per asymmetric kernel call


def net_module() -> ModuleType:
    """``embedlab.index._bae_model`` (torch), imported on first use."""
    return importlib.import_module("embedlab.index._bae_model")


def _torch() -> ModuleType:
    return importlib.import_module("torch")


def pack_bits(bits: npt.NDArray[np.bool_]) -> U64:
    """Bits ``(n, b)`` bool -> ``(n, ceil(b / 64))`` uint64 words, little-endian bit order.

    Bit ``j`` of a row is bit ``j % 8`` of byte ``j // 8``; bits past ``b`` are zero.
    """
    n, b = bits.shape
    words = -(-b // 64)
    packed = np.packbits(bits, axis=1, bitorder="little")  # (n, ceil(b / 8)) uint8
    out = np.zeros((n, words * 8), np.uint8)
    out[:, : packed.shape[1]] = packed
    return out.view(np.uint64)


def unpack_bits(codes: U64, bits: int) -> npt.NDArray[np.bool_]:
    """Inverse of :func:`pack_bits`: ``(n, W)`` uint64 -> ``(n, bits)`` bool."""
    raw = np.ascontiguousarray(codes).view(np.uint8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :bits].astype(bool)


@register_index("BAE")
class BAE(VectorIndex):
    """Bernoulli binary-autoencoder codes: ``bits`` learned bits per vector.

    An autoencoder (trained on the indexed vectors themselves, by reconstruction, no labels)
    encodes each vector into ``bits`` bits; queries are scored by Hamming distance on their
    own codes or asymmetrically (module docstring). The model's float32 parameters (encoder
    and decoder) are shared by the corpus and counted in :meth:`memory_bytes`; only the
    encoder is needed to search, the decoder gives :meth:`decode`.

    Under ``"ip"`` / ``"l2"`` vectors are divided by their mean training norm before the
    network (a scalar kept with the model), so training sees O(1) inputs; scores are code
    scores whatever the metric (pair with ``Rerank(Flat)`` for exact re-scoring).

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        bits: code length, a multiple of 8 (spec ``BAE256``).
        scoring: ``"hamming"`` or ``"asym"`` (spec ``BAE256(scoring=asym)``).
        hidden: hidden width of the encoder and decoder MLPs (default ``bits``).
        loss: reconstruction loss, ``"cos"`` (default under ``metric="cos"``) or ``"mse"``
            (default otherwise).
        code_weight: weight of the ``mean(p (1 - p))`` term (0 as in the paper's code).
        epochs, batch_size, lr: training schedule (Adam).
        max_train: at most this many training vectors are used (a seeded sample).
        seed: seeds the initialisation, the sample, the batch order and the Bernoulli draws.
        progress: show a progress bar while training.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((500, 64)).astype("float32")
        >>> index = BAE(64, bits=32, epochs=2); index.train(x); index.add(x)
        >>> index.code_bytes
        4
        >>> index.search(x[:2], k=5)[1].shape
        (2, 5)
    """

    needs_training = True
    _codes = Growing()  # (ntotal, ceil(bits / 64)) uint64 packed bits

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        bits: int = 256,
        scoring: Scoring = "hamming",
        hidden: int | None = None,
        loss: Literal["cos", "mse"] | None = None,
        code_weight: float = 0.0,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        max_train: int = 50_000,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(dim, metric=metric)
        self.bits = check_int("bits", bits, min_value=8)
        if self.bits % 8:
            raise ValueError(
                f"bits must be a multiple of 8 (codes are whole bytes), got {bits}; "
                f"e.g. {self.bits - self.bits % 8} or {self.bits + 8 - self.bits % 8}"
            )
        self.scoring: Scoring = check_choice("scoring", scoring, SCORINGS)  # type: ignore[assignment]
        self.hidden = self.bits if hidden is None else check_int("hidden", hidden, min_value=1)
        default_loss = "cos" if self.metric == "cos" else "mse"
        self.config: BAETrainConfig = net_module().BAETrainConfig(
            epochs=check_int("epochs", epochs, min_value=1),
            batch_size=check_int("batch_size", batch_size, min_value=2),
            lr=check_positive_float("lr", lr),
            loss=check_choice("loss", default_loss if loss is None else loss, ("cos", "mse")),
            code_weight=check_positive_float("code_weight", code_weight, strict=False),
            max_train=check_int("max_train", max_train, min_value=2),
            seed=check_int("seed", seed, min_value=0),
        )
        self.progress = bool(progress)
        self.input_scale = 1.0  # vectors are divided by this before the network
        self.net: BAENet = self._new_net()
        self.train_losses: list[float] = []
        self._codes = np.zeros((0, self._words), np.uint64)

    def _new_net(self) -> BAENet:
        with _torch().random.fork_rng(devices=[]):
            _torch().manual_seed(self.config.seed)
            net: BAENet = net_module().BAENet(self.dim, self.bits, self.hidden).eval()
        return net

    # ------------------------------------------------------------------- info
    @property
    def _words(self) -> int:
        return -(-self.bits // 64)

    @property
    def code_bytes(self) -> int:
        """Bytes of one code, ``bits / 8`` (stored padded to 64-bit words)."""
        return self.bits // 8

    @property
    def codes(self) -> U64:
        """Packed bits ``(ntotal, ceil(bits / 64))`` uint64 (see :func:`pack_bits`)."""
        return cast(U64, self._codes)

    def spec(self) -> str:
        return f"BAE{self.bits}" if self.scoring == "hamming" else f"BAE{self.bits}(scoring=asym)"

    def model_parameters(self) -> int:
        """Number of parameters of the autoencoder (shared by all vectors)."""
        return sum(p.numel() for p in self.net.parameters())

    def logits(self, x: Any) -> F32:
        """Encoder logits ``(n, bits)`` of ``x (n, dim)`` (normalised like added vectors)."""
        return self._logits(self._prepare(x, "x"))

    def encode(self, x: Any) -> npt.NDArray[np.bool_]:
        """Deterministic codes ``(n, bits)`` bool of ``x (n, dim)``: ``p > 0.5``."""
        return self.logits(x) > 0

    def decode(self, bits: Any) -> F32:
        """Reconstructions ``(n, dim)`` float32 of codes ``bits (n, bits)`` (bool or 0/1)."""
        arr = np.asarray(bits)
        if arr.ndim != 2 or arr.shape[1] != self.bits:
            raise ValueError(f"bits must have shape (n, {self.bits}), got {arr.shape}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("bits must hold only 0/1 (or bool) values")
        torch = _torch()
        with torch.no_grad():
            out = self.net.decode(torch.from_numpy(arr.astype(np.float32))).numpy()
        return cast(F32, (out * self.input_scale).astype(np.float32))

    # ------------------------------------------------------------------ hooks
    def _logits(self, x: F32) -> F32:
        scaled = x if self.input_scale == 1.0 else x / np.float32(self.input_scale)
        return cast(F32, net_module().encode_logits(self.net, scaled))

    def _min_train_points(self) -> int:
        return 2

    def _train(self, x: F32) -> None:
        norms = row_norms(x)
        mean_norm = float(norms.mean())
        self.input_scale = 1.0 if self.metric == "cos" or mean_norm <= 0 else mean_norm
        self.net = self._new_net()
        scaled = x if self.input_scale == 1.0 else x / np.float32(self.input_scale)
        with _torch().random.fork_rng(devices=[]):
            _torch().manual_seed(self.config.seed)
            if self.progress:
                from rich.progress import Progress

                with Progress(transient=True) as bar:
                    task = bar.add_task(f"training {self.spec()}", total=self.config.epochs)
                    log = net_module().train_bae(
                        self.net, scaled, self.config, on_epoch=lambda e, loss: bar.advance(task)
                    )
            else:
                log = net_module().train_bae(self.net, scaled, self.config)
        self.train_losses = log.losses

    def _add(self, x: F32, ids: I64) -> None:
        grow(self, "_codes").append(pack_bits(self._logits(x) > 0))

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        logits = self._logits(q)
        if self.scoring == "asym":
            return self._search_asym(logits, k)
        cq = pack_bits(logits > 0)
        dist, pos = faiss.knn_hamming(cq.view(np.uint8), self._codes.view(np.uint8), k)
        scores = -np.asarray(dist, dtype=np.float32)
        pos = np.asarray(pos, dtype=np.int64)
        order = np.lexsort((pos, -scores), axis=-1)  # best first, ties by position
        return np.take_along_axis(scores, order, 1), np.take_along_axis(pos, order, 1)

    def _search_asym(self, logits: F32, k: int) -> tuple[F32, I64]:
        n = self._codes.shape[0]
        codes = self._codes.view(np.uint8)  # (n, 8 * words)
        one_list = (np.zeros(1, np.int64), np.full(1, n, np.int64))
        # log P(b | q) = (l . s) / 2 + const(q): the per-query constant is added afterwards
        const = 0.5 * logits.sum(axis=1, dtype=np.float64) - np.logaddexp(0.0, logits).sum(
            axis=1, dtype=np.float64
        )
        out_s, out_p = [], []
        for s0 in range(0, logits.shape[0], _Q_BLOCK):
            lb = logits[s0 : s0 + _Q_BLOCK]
            tables = sign_tables(0.5 * lb, codes.shape[1])  # (bq, n_bytes, 256)
            probes = np.zeros((lb.shape[0], 1), np.int64)
            bias = const[s0 : s0 + _Q_BLOCK, None].astype(np.float32)
            s, p = scan_lut(tables, codes, *one_list, probes, bias, k)
            out_s.append(s)
            out_p.append(p)
        return np.concatenate(out_s), np.concatenate(out_p)

    def _remove(self, positions: I64) -> None:
        self._codes = np.delete(self._codes, positions, axis=0)

    def _memory_bytes(self) -> int:
        params = sum(p.numel() * p.element_size() for p in self.net.parameters())
        return grow(self, "_codes").nbytes + params

    # ------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {"codes": self._codes}
        net_state, names = net_arrays(self.net)
        arrays.update(net_state)
        cfg = self.config
        meta = {
            "bits": self.bits,
            "scoring": self.scoring,
            "hidden": self.hidden,
            "loss": cfg.loss,
            "code_weight": cfg.code_weight,
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "max_train": cfg.max_train,
            "seed": cfg.seed,
            "input_scale": self.input_scale,
            "parameters": names,
            "train_losses": list(self.train_losses),
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        keys = ("bits", "scoring", "hidden", "loss", "code_weight", "epochs", "batch_size")
        obj = cls(
            meta["dim"],
            metric=meta["metric"],
            lr=meta["lr"],
            max_train=meta["max_train"],
            seed=meta["seed"],
            **{k: meta[k] for k in keys},
        )
        load_net_arrays(obj.net, arrays, meta["parameters"], folder, obj.spec())
        scale = meta["input_scale"]
        obj.input_scale = check_positive_float("input_scale", scale)
        codes = np.ascontiguousarray(arrays["codes"])
        if codes.dtype != np.uint64 or codes.shape[1:] != (obj._words,):
            raise ValueError(
                f"codes must be uint64 of shape (n, {obj._words}), got {codes.dtype} {codes.shape}"
            )
        obj._codes = codes
        obj.train_losses = [float(v) for v in meta.get("train_losses", [])]
        return obj
