"""The RNN from scratch (d2l 8.5), its defects fixed, and a ``torch.nn.RNN`` twin with the same weights.

    H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)      (the lesson's written formula drops b_h; its code keeps it)
    O_t = H_t W_hq + b_q

The lesson's exercises change one thing each (``rnn_core.variants``): ``activation="relu"`` puts ReLU in
place of tanh, ``input="embedding"`` feeds X_t = E[x_t] (a learnable (V, e) matrix E, e = V by default)
instead of one-hot(x_t); E = I gives one-hot exactly.

Fixed here: the state is a tuple both into and out of the forward pass (the lesson's ``init_rnn_state``
returned a bare tensor, which the forward pass could not take back), and the device defaults to what
exists instead of a hard-coded ``cuda:0``.
"""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .errors import UserError

State = tuple[torch.Tensor]  # (H,) with H of shape (batch, num_hiddens)


class DeviceError(UserError, ValueError):
    """A device that was asked for but is not there."""


def default_device() -> torch.device:
    """The best device present: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def try_gpu(i: int = 0) -> torch.device:
    """The lesson's ``d2l.try_gpu``: GPU i if it exists, else the best device present."""
    if torch.cuda.device_count() > i:
        return torch.device(f"cuda:{i}")
    return default_device()


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps' -> a device that exists, or a DeviceError."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return default_device()
    if name == "cpu":
        return torch.device("cpu")
    if isinstance(name, str) and name.startswith("cuda"):
        try:
            device = torch.device(name)
        except RuntimeError:
            raise DeviceError(f"Unknown device {name!r}: use auto, cpu, cuda or mps.", "unknown_device",
                              name=name) from None
        if not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"Device {name!r} was asked for but no CUDA GPU is available: use auto or cpu.",
                              "no_cuda", name=name)
        return device
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("Device 'mps' was asked for but Apple MPS is not available: use auto or cpu.",
                              "no_mps")
        return torch.device("mps")
    raise DeviceError(f"Unknown device {name!r}: use auto, cpu, cuda or mps.", "unknown_device", name=name)


def device_label(device: torch.device) -> str:
    """Human name of a device, e.g. 'CUDA: NVIDIA H100' or 'CPU'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return "CPU"


# ---------------------------------------------------------------- the lesson's functions

def get_rnn_params(vocab_size: int, num_hiddens: int, device=None, generator: torch.Generator | None = None,
                   num_inputs: int | None = None):
    """[W_xh (V, h), W_hh (h, h), b_h (h,), W_hq (h, V), b_q (V,)], weights ~ N(0, 0.01^2), biases 0.

    ``num_inputs`` (default V) is the input width: an embedding's size e makes W_xh (e, h).
    """
    # The lesson's get_params (rnn_core.d2l_code) again, on purpose: that one stays as the book writes it, and
    # this one adds a generator (one seed, the same weights on every device) and the input width.
    device = resolve_device(device)
    num_outputs = vocab_size
    num_inputs = num_inputs or vocab_size

    def normal(shape):
        # Drawn on the CPU from one generator, so a seed gives the same weights on every device.
        return (torch.randn(size=shape, generator=generator) * 0.01).to(device)

    W_xh = normal((num_inputs, num_hiddens))
    W_hh = normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens, device=device)
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_rnn_state(batch_size: int, num_hiddens: int, device=None) -> State:
    """The initial state as a tuple ``(H,)``, H zeros of shape (batch, h): the lesson's bare tensor, fixed."""
    return (torch.zeros((batch_size, num_hiddens), device=resolve_device(device)),)


ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
INPUTS = ("onehot", "embedding")


def rnn_step(X_t: torch.Tensor, H: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor, b_h: torch.Tensor,
             activation: str = "tanh") -> torch.Tensor:
    """One step of the recurrence, H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h): (batch, h).

    X_t: (batch, V) one-hot rows or (batch, e) embeddings; or (batch,) token ids, read as the rows W_xh[X_t]
    (a one-hot row times W_xh picks exactly that row, so both give the same bits, without the (batch, V)
    product). H: H_{t-1} (batch, h). The lesson model (:func:`rnn_forward`), :func:`shape_trace` and the Inside
    views (``inspection``, ``inside``, ``gradflow``) step with it; the fast engine (``rnn_core.fast``) and
    :class:`TorchRNN` are separate implementations, tested equal to the lesson model.
    """
    XW = W_xh[X_t] if X_t.dtype == torch.long else torch.mm(X_t, W_xh)  # (batch, h)
    return ACTIVATIONS[activation](XW + torch.mm(H, W_hh) + b_h)  # the lesson's order of the sums


def rnn_output(H: torch.Tensor, W_hq: torch.Tensor, b_q: torch.Tensor) -> torch.Tensor:
    """The output layer, O_t = H_t W_hq + b_q: (..., V) for H (..., h), so one step or all steps at once."""
    return H @ W_hq + b_q


def rnn_forward(inputs: torch.Tensor, state: State, params, activation: str = "tanh") -> tuple[torch.Tensor, State]:
    """Run the RNN over one-hot inputs (steps, batch, V); outputs (steps*batch, V) and new state ``(H,)``.

    ``activation``: "tanh" (the lesson's) or "relu" (its exercise). Inputs may be embeddings (steps, batch, e).
    """
    W_xh, W_hh, b_h, W_hq, b_q = params[:5]
    H, = state
    outputs = []
    for X in inputs:  # X: (batch, V), one time step
        H = rnn_step(X, H, W_xh, W_hh, b_h, activation)  # (batch, h)
        outputs.append(rnn_output(H, W_hq, b_q))  # (batch, V)
    return torch.cat(outputs, dim=0), (H,)  # (steps*batch, V): time-major rows


# The lesson's own names for the same functions.
get_params = get_rnn_params
rnn = rnn_forward


def embedding_matrix(vocab_size: int, size: int = 0, init: str = "normal", device=None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E (V, e), e = V when ``size`` is 0: "normal" ~ N(0, 1) (as ``nn.Embedding``), "identity" = one-hot's I."""
    size = size or vocab_size
    if init == "identity":
        E = torch.eye(vocab_size, size)
    elif init == "normal":
        E = torch.randn((vocab_size, size), generator=generator)
    else:
        raise ValueError(f"Unknown embedding init {init!r}: normal or identity.")
    return E.to(resolve_device(device)).requires_grad_(True)


class RNN:
    """The lesson's ``RNNModelScratch``: one-hot of ``X.T``, then ``forward_fn`` over time.

    Variants (the lesson's exercises): ``activation`` "tanh" | "relu"; ``input`` "onehot" | "embedding"
    (then ``params`` ends with E (V, e), e = ``embed`` or V, initialised by ``embed_init``). With
    ``snapshot_params`` set (the Trainer's no-detach mode), a forward pass reads copies of the parameters
    made in the graph, so a later backward through it sees the values it ran with after SGD changed them.
    """

    engine = "lesson"

    def __init__(self, vocab_size: int, num_hiddens: int, device=None, get_params=get_rnn_params,
                 init_state=init_rnn_state, forward_fn=rnn_forward, seed: int | None = None,
                 activation: str = "tanh", input: str = "onehot", embed: int = 0, embed_init: str = "normal"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}: {' or '.join(ACTIVATIONS)}.")
        if input not in INPUTS:
            raise ValueError(f"Unknown input {input!r}: {' or '.join(INPUTS)}.")
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.activation, self.input = activation, input
        self.embed = (embed or vocab_size) if input == "embedding" else 0
        self.device = resolve_device(device)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if get_params is get_rnn_params:
            self.params = get_params(vocab_size, num_hiddens, self.device, generator, num_inputs=self.embed or None)
        else:
            self.params = get_params(vocab_size, num_hiddens, self.device)
        if input == "embedding":  # drawn after the five, so the same seed gives the same W_hh, W_hq as one-hot
            self.params.append(embedding_matrix(vocab_size, self.embed, embed_init, self.device, generator))
        self.init_state, self.forward_fn = init_state, forward_fn
        self.snapshot_params = False

    def inputs(self, X: torch.Tensor, params) -> torch.Tensor:
        """X (batch, steps) token ids -> (steps, batch, V) one-hot, or (steps, batch, e) rows of E."""
        if self.input == "embedding":
            return F.embedding(X.T, params[5])  # E[x_t]: the one-hot product X_t E as a row lookup
        return F.one_hot(X.T, self.vocab_size).type(torch.float32)  # (batch, steps) -> (steps, batch, V)

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        params = [p.clone() for p in self.params] if self.snapshot_params else self.params
        inputs = self.inputs(X, params)
        if self.forward_fn is rnn_forward:
            return rnn_forward(inputs, state, params, self.activation)
        return self.forward_fn(inputs, state, params)

    def begin_state(self, batch_size: int, device=None) -> State:
        return self.init_state(batch_size, self.num_hiddens, device or self.device)

    def load_formula_params(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy parameters in place (keeps the tensors the optimiser and other views hold)."""
        with torch.no_grad():
            for name, p in zip(ALL_PARAM_NAMES, self.params):
                p.copy_(tensors[name].to(p.device))


RNNModelScratch = RNN
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")
ALL_PARAM_NAMES = (*PARAM_NAMES, "E")  # E: the embedding, for input="embedding" only


def formula_params(net) -> dict[str, torch.Tensor]:
    """{W_xh, W_hh, b_h, W_hq, b_q} (and E with an embedding) of any engine, detached."""
    if hasattr(net, "scratch_state_dict"):
        return net.scratch_state_dict()
    return dict(zip(ALL_PARAM_NAMES, (p.detach() for p in net.params)))


def float_params(net_or_params) -> dict[str, torch.Tensor]:
    """{W_xh, W_hh, b_h, W_hq, b_q} as CPU float32 copies, from a model or such a dict.

    A model with an embedding E (V, e) gets W_xh = E W_xh (V, h): a token's embedding times W_xh is that row of
    E W_xh, so every view below reads it as a one-hot model with the same outputs.
    """
    p = net_or_params if isinstance(net_or_params, dict) else formula_params(net_or_params)
    p = {k: v.detach().float().cpu() for k, v in p.items()}
    if "E" in p:
        p["W_xh"] = p.pop("E") @ p["W_xh"]  # (V, e) @ (e, h) -> (V, h)
    return p


def activation_of(net) -> str:
    """The model's φ: "tanh" (the lesson's) or "relu" (its exercise); a bare parameter dict is the lesson's."""
    return getattr(net, "activation", "tanh")


class TorchRNN(nn.Module):
    """The framework twin: ``nn.RNN`` + ``nn.Linear``, loading the scratch model's weights.

    ``nn.RNN`` computes ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``, so W_ih = W_xh^T, W_hh^T = W_hh,
    b_ih = b_h and b_hh = 0 give the lesson's recurrence exactly.
    """

    engine = "torch"
    input, embed, snapshot_params = "onehot", 0, False  # one-hot only: an embedding runs on the lesson engine

    def __init__(self, vocab_size: int, num_hiddens: int, device=None, seed: int | None = None,
                 activation: str = "tanh"):
        super().__init__()
        self.vocab_size, self.num_hiddens, self.activation = vocab_size, num_hiddens, activation
        self.device = resolve_device(device)
        self.rnn = nn.RNN(vocab_size, num_hiddens, nonlinearity=activation)
        self.linear = nn.Linear(num_hiddens, vocab_size)
        # Same initialisation as the scratch model, so engines can be compared from one seed.
        self.load_scratch(get_rnn_params(vocab_size, num_hiddens, "cpu",
                                         torch.Generator().manual_seed(seed) if seed is not None else None))
        self.to(self.device)

    @property
    def params(self) -> list[torch.Tensor]:
        return list(self.parameters())

    def load_scratch(self, params) -> None:
        """Copy [W_xh, W_hh, b_h, W_hq, b_q] into nn.RNN / nn.Linear layout."""
        W_xh, W_hh, b_h, W_hq, b_q = (p.detach() for p in params)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(W_xh.T)
            self.rnn.weight_hh_l0.copy_(W_hh.T)
            self.rnn.bias_ih_l0.copy_(b_h)
            self.rnn.bias_hh_l0.zero_()
            self.linear.weight.copy_(W_hq.T)
            self.linear.bias.copy_(b_q)

    def load_formula_params(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load {W_xh, W_hh, b_h, W_hq, b_q} (e.g. from a checkpoint)."""
        self.load_scratch([tensors[name].to(self.device) for name in PARAM_NAMES])

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        X = F.one_hot(X.T, self.vocab_size).type(torch.float32)  # (steps, batch, V)
        Y, H = self.rnn(X, state[0].unsqueeze(0))  # Y: (steps, batch, h); H: (1, batch, h)
        output = self.linear(Y.reshape(-1, Y.shape[-1]))  # (steps*batch, V)
        return output, (H.squeeze(0),)

    def begin_state(self, batch_size: int, device=None) -> State:
        return init_rnn_state(batch_size, self.num_hiddens, device or self.device)

    def scratch_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters in the scratch layout (b_hh folded into b_h)."""
        return {"W_xh": self.rnn.weight_ih_l0.detach().T, "W_hh": self.rnn.weight_hh_l0.detach().T,
                "b_h": (self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0).detach(),
                "W_hq": self.linear.weight.detach().T, "b_q": self.linear.bias.detach()}


# ---------------------------------------------------------------- shape trace

def shape_trace(vocab_size: int = 28, batch_size: int = 32, num_steps: int = 35, num_hiddens: int = 512,
                device=None, seed: int = 0, max_steps_listed: int | None = None) -> pd.DataFrame:
    """One forward pass of the scratch model, one row per tensor: name, formula, shape, dtype, device.

    Runs on random tokens with the real parameters. ``max_steps_listed`` keeps the per-step rows of the
    first steps only (the final rows always describe the whole pass).
    """
    device = resolve_device(device)
    g = torch.Generator().manual_seed(seed)
    net = RNN(vocab_size, num_hiddens, device, seed=seed)
    W_xh, W_hh, b_h, W_hq, b_q = net.params
    rows = []

    def add(name, formula, t, step=None):
        rows.append({"step": step, "name": name, "formula": formula, "shape": tuple(t.shape),
                     "dtype": str(t.dtype).replace("torch.", ""), "device": str(t.device)})

    with torch.no_grad():
        X = torch.randint(0, vocab_size, (batch_size, num_steps), generator=g).to(device)
        Y = torch.randint(0, vocab_size, (batch_size, num_steps), generator=g).to(device)
        add("X", "token indices (batch, steps)", X)
        for name, p in zip(PARAM_NAMES, net.params):
            add(name, "parameter", p)
        XT = X.T
        add("X.T", "transpose: time first (steps, batch)", XT)
        inputs = F.one_hot(XT, vocab_size).type(torch.float32)
        add("one_hot(X.T)", "one-hot (steps, batch, vocab)", inputs)
        H, = net.begin_state(batch_size)
        outputs = []
        for t, X_t in enumerate(inputs):
            listed = max_steps_listed is None or t < max_steps_listed
            if listed:  # the two terms of the step, computed again here only to show their shapes
                add("X_t", "one-hot input at step t (batch, vocab)", X_t, t)
                add("H_{t-1}", "previous hidden state (batch, hidden)", H, t)
                add("X_t W_xh", "input projection (batch, hidden)", X_t @ W_xh, t)
                add("H_{t-1} W_hh", "recurrent projection (batch, hidden)", H @ W_hh, t)
            H = rnn_step(X_t, H, W_xh, W_hh, b_h)
            O = rnn_output(H, W_hq, b_q)
            if listed:
                add("H_t", "tanh(X_t W_xh + H_{t-1} W_hh + b_h)", H, t)
                add("O_t", "H_t W_hq + b_q", O, t)
            outputs.append(O)
        out = torch.cat(outputs, dim=0)
        add("outputs", "cat(O_1..O_T, dim=0) (steps*batch, vocab)", out)
        add("H", "new state (batch, hidden)", H)
        y = Y.T.reshape(-1)
        add("y", "Y.T.reshape(-1) targets (steps*batch)", y)
        loss = F.cross_entropy(out, y)
        add("loss", "mean cross-entropy (scalar)", loss)
    return pd.DataFrame(rows)


def lesson_shape_checks(trace: pd.DataFrame, vocab_size: int, batch_size: int, num_steps: int,
                        num_hiddens: int) -> pd.DataFrame:
    """The lesson's two checks on a trace: outputs (steps*batch, V) and new state (batch, h)."""
    got = dict(zip(trace["name"], trace["shape"]))
    checks = [("outputs", (num_steps * batch_size, vocab_size)), ("H", (batch_size, num_hiddens))]
    return pd.DataFrame([{"tensor": n, "expected": e, "actual": got[n], "passed": got[n] == e} for n, e in checks])
