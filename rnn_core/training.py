"""Training (d2l 8.5 ``train_epoch_ch8`` / ``train_ch8``), one record per epoch; each epoch's sample text comes
from :mod:`rnn_core.generation`.

The loop is the lesson's: cross-entropy over all (steps*batch) predictions, gradient clipping at theta,
SGD. Sequential partitioning carries the state across minibatches (detached, so gradients stop at the
minibatch boundary); random partitioning re-initialises it for every minibatch.

The lesson's exercises as switches: ``theta=None`` trains without clipping; ``detach=False`` keeps the state
attached across the minibatches of an epoch (backpropagation through time reaches back to the epoch's first
minibatch; the state is still fresh at each epoch); ``predict`` draws the samples greedily, by sampling at a
temperature or from the sharpened distribution P^alpha. :meth:`Trainer.step` trains one minibatch and
reports what it did (step mode).

Records are yielded per epoch so a UI can draw live and stop between epochs. Per-batch statistics are
accumulated on the device and read once per epoch: reading a GPU scalar every batch would stall it. Each record
also carries every minibatch's loss and gradient norm before clipping (``batch_losses``, ``batch_grad_norms``):
an exploding gradient is a few minibatches, which a mean per epoch hides.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from .data import SeqDataLoader
from .errors import UserError
# generation's names are rnn_core.training's too (the lesson's predict_ch8 beside train_ch8)
from .generation import (PREDICT_MODES, generate, next_distribution, parse_predict, predict,  # noqa: F401
                         predict_ch8, sharpen)
from .model import formula_params
from .vocab import Vocab


MAX_LOSS = 700.0  # nats per token; math.exp overflows just above 709
# A run whose loss stays above BLOWUP_FACTOR x log|V| (the uniform guess) for BLOWUP_EPOCHS epochs in a row
# has blown up even while its numbers are finite: no model of the text is that much worse than guessing.
BLOWUP_FACTOR = 3.0
BLOWUP_EPOCHS = 3


class DivergenceError(UserError, RuntimeError):
    """Training diverged; the model holds the last good parameters (``Trainer.good_epoch``).

    ``record``: the epoch that ended the run. When the loss went non-finite partway through an epoch, that epoch
    as far as it went (an :class:`EpochRecord` with ``diverged=True``, its per-minibatch numbers holding the inf/nan
    of the blow-up; not in the history). When the loss stayed above the bound, the last of those epochs, whole
    (``diverged=False``, in the history: :meth:`Trainer.train_for` raises instead of returning it).
    """

    record: EpochRecord | None = None


@dataclass
class EpochRecord:
    """What one epoch did."""

    epoch: int  # 1-based
    loss: float  # mean cross-entropy per token
    perplexity: float  # exp(loss)
    tokens_per_s: float
    grad_norm: float  # mean gradient norm before clipping, over the epoch's minibatches
    clip_fraction: float  # fraction of minibatches whose gradient was clipped
    seconds: float
    sample: str | None = None  # text generated from the prefix, every `sample_every` epochs
    heldout_perplexity: float | None = None  # on a text it never trains on (Run with a held-out text)
    # per minibatch, in training order: the loss that was backpropagated and ||g|| before clipping (a minibatch
    # was clipped when its norm is above theta); None in records written before they were kept
    batch_losses: list[float] | None = None
    batch_grad_norms: list[float] | None = None
    # the epoch in which the loss went non-finite, as far as it went: its loss and perplexity are inf or nan, its
    # per-minibatch numbers run to the end of the chunk that blew up (inf/nan kept); the model is the last good one
    diverged: bool = False


@dataclass
class StepReport:
    """What one minibatch of training did (step mode)."""

    epoch: int  # the epoch the minibatch belongs to (1-based)
    batch: int  # its index in that epoch (0-based)
    X: torch.Tensor  # (batch, steps) token ids, CPU
    Y: torch.Tensor  # (batch, steps) the targets: X shifted by one
    losses: torch.Tensor  # (batch, steps) cross-entropy at every position, CPU
    loss: float  # their mean: the loss that was backpropagated
    grad_norm: float  # ||g|| before clipping
    clipped_norm: float  # ||g|| after clipping (= grad_norm when not clipped)
    update_ratio: dict[str, float]  # ||W_new - W_old|| / ||W_old|| per parameter (formula names); inf from 0
    state: torch.Tensor  # (batch, h) the hidden state carried to the next minibatch, CPU copy
    attached: bool  # the state still carries the graph back to the epoch's first minibatch (no detach)
    graph_batches: int  # minibatches that backpropagation went through for this step (1 when detached)
    record: EpochRecord | None = None  # the epoch's record when this minibatch ended it


# ---------------------------------------------------------------- lesson pieces

def grad_norm(params) -> torch.Tensor:
    """Global L2 norm of all gradients, as a 0-d tensor (no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def grad_clipping(net, theta: float | None) -> torch.Tensor:
    """Scale gradients so their global norm is at most theta; returns the norm before clipping.

    ``g <- min(1, theta / ||g||) g``: the lesson's ``if norm > theta`` without reading the norm on the host.
    ``theta=None`` (or infinity) turns clipping off, for the lesson's exercise; the norm is still returned.
    """
    params = net.params if hasattr(net, "params") else [p for p in net.parameters() if p.requires_grad]
    norm = grad_norm(params)
    if theta is None or math.isinf(theta):
        return norm
    scale = torch.clamp(theta / (norm + 1e-30), max=1.0)
    torch._foreach_mul_([p.grad for p in params], scale)
    return norm


def sgd(params, lr: float, batch_size: int = 1) -> None:
    """The lesson's minibatch SGD: p <- p - lr * grad / batch_size, then zero the gradients."""
    with torch.no_grad():
        grads = [p.grad for p in params]
        torch._foreach_add_(params, grads, alpha=-lr / batch_size)
        torch._foreach_zero_(grads)


# ---------------------------------------------------------------- the loop

@dataclass
class _EpochPass:
    """An epoch in progress: its minibatch iterator, carried state and on-device sums."""

    batches: Iterator
    loss_sum: torch.Tensor
    norm_sum: torch.Tensor
    clipped: torch.Tensor
    state: tuple | None = None
    # 0-d tensors, one per minibatch, read at the epoch's end (copies: a CUDA graph's outputs are reused)
    batch_losses: list = field(default_factory=list)
    batch_norms: list = field(default_factory=list)
    n_tokens: int = 0
    n_batches: int = 0
    seconds: float = 0.0  # time spent computing (not the pauses between chunks)


class Trainer:
    """Holds a model, its loader and its history; trains an epoch at once or in time-budgeted chunks.

    Keeps a copy of the parameters from the start of each epoch: a non-finite loss restores it and
    raises DivergenceError, so the last finite model and curve survive.
    """

    def __init__(self, net, loader: SeqDataLoader, vocab: Vocab, lr: float = 1.0, theta: float | None = 1.0,
                 sample_every: int = 10, prefix: str = "time traveller", num_preds: int = 50,
                 detach: bool = True, predict: str = "greedy", sample_seed: int = 0):
        self.net, self.loader, self.vocab = net, loader, vocab
        self.lr = lr
        self.theta = math.inf if theta is None else theta  # infinity: clipping off
        self.sample_every, self.prefix, self.num_preds = sample_every, prefix, num_preds
        parse_predict(predict)  # a bad spec fails here, not at the first sample
        self.predict, self.sample_seed = predict, sample_seed  # sample of epoch k drawn with seed sample_seed + k
        # detach=False: sequential partitioning keeps the state attached across an epoch's minibatches. The
        # model must then read snapshots of its parameters (the lesson engine's snapshot_params), so a later
        # backward through an earlier minibatch sees the values that minibatch ran with.
        self.detach = detach
        if not detach and (not hasattr(net, "snapshot_params") or net.engine != "lesson"):
            raise ValueError(f"Training without detach needs the lesson engine, not {net.engine!r} "
                             "(rnn_core.engines.make_model picks it for detach=False).")
        self.history: list[EpochRecord] = []
        self.batches_done = 0  # minibatches trained so far (all epochs, discarded passes included)
        self._pass: _EpochPass | None = None
        # The last epoch whose loss was not blown up, and the parameters at its end (restored on divergence).
        self.good_epoch = 0
        self._good_params = [p.detach().clone() for p in net.params]
        self._blowup_loss = BLOWUP_FACTOR * math.log(net.vocab_size)

    @property
    def epoch(self) -> int:
        return len(self.history)

    @property
    def device(self) -> torch.device:
        return self.net.device

    @property
    def epoch_fraction(self) -> float:
        """How much of the epoch in progress is done (0 when none is)."""
        return self._pass.n_batches / len(self.loader) if self._pass else 0.0

    def discard_pass(self) -> None:
        """Drop the epoch in progress (its minibatches are not counted); the next chunk starts a new epoch."""
        self._pass = None

    def train_epoch(self) -> EpochRecord:
        """One pass over the loader (finishing the one in progress, if any); returns its record."""
        record = None
        while record is None:
            record = self.train_for(math.inf)
        return record

    def train_for(self, budget_s: float) -> EpochRecord | None:
        """Train minibatches for about ``budget_s`` seconds (at least one) or to the end of the epoch.

        Returns the epoch's record when the epoch finished, else None (call again to go on). A UI calls
        this with a short budget, so a Stop button is answered within a minibatch at any model size.
        """
        return self._chunk(budget_s, watch=False)[0]

    def step(self) -> StepReport:
        """Train one minibatch of the epoch in progress (starting one if none is), as :meth:`train_for` would,
        and report it: X and Y, the loss at every position, ||g|| before and after clipping, each parameter's
        relative update and the state carried on. The epoch's record comes with its last minibatch."""
        record, watched = self._chunk(0.0, watch=True)  # a budget of 0: exactly one minibatch
        return StepReport(**watched, record=record)

    def _chunk(self, budget_s: float, watch: bool) -> tuple[EpochRecord | None, dict | None]:
        """:meth:`train_for`'s minibatches; (the epoch's record or None, what the last minibatch did when
        ``watch``, else None)."""
        net, device = self.net, self.device
        if self._pass is None:
            zero = torch.zeros((), device=device)
            self._pass = _EpochPass(iter(self.loader), zero.clone(), zero.clone(), zero.clone())
        ep = self._pass
        use_random_iter = self.loader.use_random_iter
        keep_graph = not self.detach and not use_random_iter
        if hasattr(net, "snapshot_params"):
            net.snapshot_params = keep_graph
        # An engine may run the whole step itself (the fast engine's CUDA graph): same math, one launch.
        train_step = None if watch else getattr(net, "train_step", None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        finished, watched = False, None
        while True:
            batch = next(ep.batches, None)
            if batch is None:
                finished = True
                break
            X, Y = batch
            if ep.state is None or use_random_iter:
                state = net.begin_state(batch_size=X.shape[0], device=device)
            elif keep_graph:
                state = ep.state  # no detach: the next backward goes on through the earlier minibatches
            else:
                state = tuple(s.detach() for s in ep.state)  # stop gradients at the minibatch boundary
            if train_step is not None:
                loss, norm, state = train_step(X.to(device), Y.to(device), state, self.lr, self.theta)
            else:
                loss, norm, state, watched = self._train_batch(ep, X, Y, state, keep_graph, watch)
            ep.state = state
            ep.loss_sum += loss.detach() * Y.numel()
            ep.norm_sum += norm
            ep.clipped += (norm > self.theta).float()
            ep.batch_losses.append(loss.detach().clone())
            ep.batch_norms.append(norm.detach().clone())
            ep.n_tokens += Y.numel()
            ep.n_batches += 1
            self.batches_done += 1
            if time.perf_counter() - start >= budget_s:
                break
        mean_loss = (ep.loss_sum / ep.n_tokens).item()  # the one host sync of the chunk
        ep.seconds += time.perf_counter() - start
        # Past MAX_LOSS nats exp(loss) overflows a double: the perplexity is infinite, the run has blown up.
        if not math.isfinite(mean_loss) or mean_loss > MAX_LOSS:
            raise self._blown_up(ep, mean_loss)
        if not finished and ep.n_batches < len(self.loader):
            return None, watched
        if not finished:  # the budget ran out on the last minibatch: the epoch is complete all the same
            next(ep.batches, None)
        self._pass = None
        return self._end_epoch(ep, mean_loss), watched

    def _train_batch(self, ep: _EpochPass, X, Y, state, keep_graph: bool, watch: bool):
        """One minibatch of the lesson's loop: forward, loss, backward, clipping, SGD. (loss, ||g|| before
        clipping, the new state, what it did when ``watch`` else None)."""
        net = self.net
        y = Y.T.reshape(-1).to(self.device)  # (steps*batch,), time-major like the outputs
        y_hat, state = net(X.to(self.device), state)
        loss = F.cross_entropy(y_hat, y)
        loss.backward(retain_graph=keep_graph)
        norm = grad_clipping(net, self.theta)
        watched = self._watch(ep, X, Y, y_hat, y, loss, norm, keep_graph) if watch else None
        before = {k: v.clone() for k, v in formula_params(net).items()} if watch else {}
        sgd(net.params, self.lr)
        if watched is not None:
            after = formula_params(net)
            watched["update_ratio"] = {k: _ratio(after[k] - w, w) for k, w in before.items()}
            watched["state"] = state[0].detach().cpu().clone()
        return loss, norm, state, watched

    def _blown_up(self, ep: _EpochPass, mean_loss: float) -> DivergenceError:
        """The error for an epoch whose loss went non-finite, with its record; the model is put back to the last
        good epoch and the epoch in progress is dropped."""
        record = self._diverged_record(ep, mean_loss)
        self._pass = None
        self._restore_good()
        error = DivergenceError(
            f"The loss became non-finite (perplexity overflowed) in epoch {self.epoch + 1}; {self._reset_to()}",
            "diverged_nonfinite" if self.good_epoch else "diverged_nonfinite_start",
            epoch=self.epoch + 1, good=self.good_epoch)
        error.record = record
        return error

    def _end_epoch(self, ep: _EpochPass, mean_loss: float) -> EpochRecord:
        """The finished epoch's record (with a sample every ``sample_every`` epochs), added to the history;
        DivergenceError when the loss has stayed above the blow-up bound for BLOWUP_EPOCHS epochs."""
        epoch = self.epoch + 1
        sample = None
        if self.sample_every and (epoch % self.sample_every == 0 or epoch == 1):
            sample = generate(self.prefix, self.num_preds, self.net, self.vocab, predict=self.predict,
                              seed=self.sample_seed + epoch)
        record = EpochRecord(epoch, mean_loss, math.exp(mean_loss), ep.n_tokens / ep.seconds,
                             ep.norm_sum.item() / ep.n_batches, ep.clipped.item() / ep.n_batches, ep.seconds,
                             sample, batch_losses=torch.stack(ep.batch_losses).cpu().tolist(),
                             batch_grad_norms=torch.stack(ep.batch_norms).cpu().tolist())
        self.history.append(record)
        if mean_loss <= self._blowup_loss:
            self.good_epoch = epoch
            with torch.no_grad():
                torch._foreach_copy_(self._good_params, [p.detach() for p in self.net.params])
        elif epoch - self.good_epoch >= BLOWUP_EPOCHS:
            self._restore_good()
            error = DivergenceError(
                f"The loss stayed above {BLOWUP_FACTOR:g} x log|V| = {self._blowup_loss:.2f} (worse than guessing "
                f"uniformly) for {BLOWUP_EPOCHS} epochs, up to epoch {epoch}; {self._reset_to()}",
                "diverged_stuck" if self.good_epoch else "diverged_stuck_start", factor=f"{BLOWUP_FACTOR:g}",
                bound=f"{self._blowup_loss:.2f}", epochs=BLOWUP_EPOCHS, epoch=epoch, good=self.good_epoch)
            error.record = record  # a whole epoch, in the history too: the caller gets it only here
            raise error
        return record

    def _diverged_record(self, ep: _EpochPass, mean_loss: float) -> EpochRecord:
        """The epoch that blew up, as far as it went: every minibatch's loss and ||g|| (inf/nan kept), marked
        diverged. Not in :attr:`history`: the model is put back to :attr:`good_epoch`."""
        n = max(ep.n_batches, 1)
        perplexity = math.exp(mean_loss) if mean_loss <= MAX_LOSS else math.inf  # nan stays nan
        return EpochRecord(self.epoch + 1, mean_loss, perplexity, ep.n_tokens / ep.seconds if ep.seconds else 0.0,
                           ep.norm_sum.item() / n, ep.clipped.item() / n, ep.seconds,
                           batch_losses=torch.stack(ep.batch_losses).cpu().tolist() if ep.batch_losses else [],
                           batch_grad_norms=torch.stack(ep.batch_norms).cpu().tolist() if ep.batch_norms else [],
                           diverged=True)

    def _watch(self, ep: _EpochPass, X, Y, y_hat, y, loss, norm, keep_graph: bool) -> dict:
        """Step mode: what this minibatch did, taken after clipping and before the SGD update (StepReport's
        fields but the update ratios and the state, which come after it)."""
        params = self.net.params if hasattr(self.net, "params") else list(self.net.parameters())
        with torch.no_grad():
            losses = F.cross_entropy(y_hat.detach(), y, reduction="none")  # (steps*batch,) time-major
            return dict(
                epoch=self.epoch + 1, batch=ep.n_batches, X=X.cpu().clone(), Y=Y.cpu().clone(),
                losses=losses.reshape(Y.shape[1], Y.shape[0]).T.cpu(), loss=float(loss.detach()),
                grad_norm=float(norm), clipped_norm=float(grad_norm(params)), attached=keep_graph,
                graph_batches=ep.n_batches + 1 if keep_graph else 1)

    def _reset_to(self) -> str:
        """The end of a divergence error's message: where the model was put back to, and what to change."""
        to = f"the end of epoch {self.good_epoch}" if self.good_epoch else "its initial parameters"
        return f"the model was reset to {to}. Lower the learning rate or the clipping threshold theta."

    def _restore_good(self) -> None:
        """Put back the parameters of the last good epoch."""
        with torch.no_grad():
            for p, good in zip(self.net.params, self._good_params):
                p.copy_(good)

    def epochs(self, num_epochs: int) -> Iterator[EpochRecord]:
        """Train ``num_epochs`` more epochs, yielding each record."""
        for _ in range(num_epochs):
            yield self.train_epoch()


# run.json is strict JSON: a non-finite number is written as one of these strings and read back as the float
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def json_safe(value):
    """``value`` (dicts, lists, numbers) with every inf/nan float written as "inf", "-inf" or "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def from_json_safe(value):
    """:func:`json_safe` undone: "inf", "-inf" and "nan" in numeric places become floats again.

    Applied to a record's numbers and number lists only (a sample text "nan" stays text)."""
    if isinstance(value, dict):
        return {k: v if k == "sample" else from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return NON_FINITE.get(value, value) if isinstance(value, str) else value


def records_from_json(records):
    """run.json's records with a diverged record's "inf"/"nan" read back as floats (anything else as it is: the
    reader checks it)."""
    if not isinstance(records, list):
        return records
    return [from_json_safe(r) if isinstance(r, dict) and r.get("diverged") is True else r for r in records]


def _ratio(delta: torch.Tensor, w: torch.Tensor) -> float:
    """||delta|| / ||w||; infinity for a change of a parameter that was 0 (a bias at its first step)."""
    d, n = float(torch.linalg.vector_norm(delta)), float(torch.linalg.vector_norm(w))
    return d / n if n > 0 else (math.inf if d > 0 else 0.0)


@torch.no_grad()
def evaluate(net, loader: SeqDataLoader) -> float:
    """Mean cross-entropy per token of ``net`` over one pass of ``loader``, without training.

    The state is carried between minibatches as in training (fresh each minibatch for random partitioning).
    """
    device = net.device
    loss_sum = torch.zeros((), device=device)
    n_tokens, state = 0, None
    for X, Y in loader:
        if state is None or loader.use_random_iter:
            state = net.begin_state(batch_size=X.shape[0], device=device)
        y_hat, state = net(X.to(device), state)  # (steps*batch, V), time-major
        loss_sum += F.cross_entropy(y_hat, Y.T.reshape(-1).to(device), reduction="sum")
        n_tokens += Y.numel()
    return (loss_sum / max(n_tokens, 1)).item()


def train_epoch_ch8(net, train_iter: SeqDataLoader, loss=None, updater=None, device=None,
                    use_random_iter: bool = False, lr: float = 1.0) -> tuple[float, float]:
    """The lesson's signature: (perplexity, tokens/s) of one epoch."""
    train_iter.use_random_iter = use_random_iter
    record = Trainer(net, train_iter, None, lr=lr, sample_every=0).train_epoch()
    return record.perplexity, record.tokens_per_s


def train_ch8(net, train_iter: SeqDataLoader, vocab: Vocab, lr: float, num_epochs: int, device=None,
              use_random_iter: bool = False, print_every: int = 10) -> Trainer:
    """The lesson's ``train_ch8``: trains, prints perplexity and samples; returns the Trainer."""
    train_iter.use_random_iter = use_random_iter
    trainer = Trainer(net, train_iter, vocab, lr=lr, sample_every=print_every)
    for record in trainer.epochs(num_epochs):
        if record.sample is not None:
            print(f"epoch {record.epoch}: perplexity {record.perplexity:.1f}  {record.sample}")
    last = trainer.history[-1]
    print(f"perplexity {last.perplexity:.1f}, {last.tokens_per_s:.1f} tokens/sec on {net.device}")
    print(predict("time traveller", 50, net, vocab))
    print(predict("traveller", 50, net, vocab))
    return trainer
