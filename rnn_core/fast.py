"""The fast engine: the lesson's RNN with the same parameters and loss, with backpropagation through time by hand.

    H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)      O_t = H_t W_hq + b_q

What makes it fast, with the same math (equal within float rounding, tested against autograd):

- Only ``H_{t-1} W_hh`` is sequential: one in-place ``addmm_`` and one ``sigmoid_`` + ``add`` per step, into
  views of one buffer reused from minibatch to minibatch (no per-step allocations, no page faults).
- The input projection ``X_t W_xh + b_h`` of all steps is one matmul, and so is the output projection.
- The backward pass (:class:`RNNFunction`) is written by hand: per step one ``addmm_`` and one ``mul_``;
  ``dW_hh``, ``dW_xh`` and ``db_h`` then come from one large matmul over all steps.

On the CPU (float32) the same forward and backward also exist in C++ (``rnn_core/csrc/rnn_cpu.cpp``, same math
and buffers): the loop over time runs there in one team of threads, each step's matmul in register tiles
with the elementwise work (input gather, tanh, outputs; tanh') done on the tiles, and the large matmuls over
all steps stay ATen (MKL) calls. It is compiled once on first use (:func:`kernels`, ~30 s) and cached by
torch; until it is built, or where it cannot be (no compiler, no ninja, ``RNN_LAB_NO_EXT=1``), the Python
path runs.

The ReLU variant (``activation="relu"``, a lesson exercise) runs the Python path: ``H_t = relu(z)``, its
derivative ``1[H_t > 0]``. The fast engine takes one-hot inputs and detaches the state between minibatches
(its backward frees the activations): an embedding or no-detach training runs on the lesson engine
(``rnn_core.engines.engine_for`` picks it).

On CUDA, :class:`CudaGraphStep` captures the whole training step (forward, loss, backward, clipping, SGD)
as one CUDA graph, so the ~150 small kernels of a step are launched by one call.
"""
from __future__ import annotations

import torch

from .cuda_graph import CudaGraphStep
# the kernels' build, re-exported: callers ask rnn_core.fast for its kernels
from .kernel_build import CSRC, KernelBuild, compile_kernels, kernel_status, kernels, reset_kernels  # noqa: F401
from .model import RNN, State


def _cpu_kernels(*tensors: torch.Tensor):
    """The C++ kernels if they apply to these tensors (all CPU, float32) and are ready, else None."""
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    return kernels(block=False)


class BufferPool:
    """Activation buffers reused from one minibatch to the next.

    A fresh multi-megabyte tensor per minibatch costs page faults (the allocator hands the memory back to
    the OS and takes it again): about 10% of a step at the lesson's size. A buffer is in the pool only
    while no pass holds it, so reuse can never overwrite activations a pending backward still needs; a
    forward whose backward never comes simply leaves its buffer to the garbage collector.
    """

    def __init__(self, per_shape: int = 2):
        self.per_shape = per_shape
        self.free: dict[tuple, list[torch.Tensor]] = {}

    def take(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        stack = self.free.get((shape, like.dtype, like.device))
        return stack.pop() if stack else like.new_empty(shape)

    def give(self, *tensors: torch.Tensor) -> None:
        for t in tensors:
            stack = self.free.setdefault((tuple(t.shape), t.dtype, t.device), [])
            if len(stack) < self.per_shape:
                stack.append(t)


class RNNFunction(torch.autograd.Function):
    """Forward and hand-written backward of the whole sequence.

    Inputs: tokens (steps*batch,) long, time-major; H0 (batch, h); W_xh (V, h); W_hh (h, h); b_h (h,);
    W_hq (h, V); b_q (V,); a BufferPool or None; whether autograd records this call; the C++ kernels
    (:func:`kernels`) or None for the Python path.
    Outputs: O (steps*batch, V) time-major, H_T (batch, h).

    Layout: one buffer ``Hs`` of shape (h+V+1, steps+1, batch). Rows ``:h``, column block t hold H_t^T
    (hidden-major: the per-step matmul ``W_hh^T H_{t-1}^T`` is faster in this orientation here). Rows
    ``h:h+V``, block t-1 hold one-hot(x_t)^T and the last row holds ones, so ``Hs[:, :steps]`` is
    [H_{t-1}; x_t; 1] for every t as one (h+V+1, steps*batch) matrix: one matmul with dA gives dW_hh,
    dW_xh and db_h together.

    tanh is evaluated as ``tanh(z) = 2 sigmoid(2z) - 1``: the same function within float rounding, three
    times faster than torch's tanh on this CPU. Doubling is exact in floating point; it is folded into the
    input projection and a copy of W_hh.
    """

    @staticmethod
    def forward(ctx, tokens, H0, W_xh, W_hh, b_h, W_hq, b_q, pool, recording, cpp=None, activation="tanh"):
        batch, h = H0.shape
        relu = activation == "relu"
        ctx.relu = relu
        V = W_xh.shape[0]
        steps = tokens.numel() // batch
        N = steps * batch
        shape = (h + V + 1, steps + 1, batch)
        Hs = pool.take(shape, H0) if pool is not None else H0.new_empty(shape)
        ctx.cpp = cpp
        if cpp is not None:  # the same forward, its loop over time in C++
            O, H_T = cpp.forward(tokens, H0, W_xh, W_hh, b_h, W_hq, b_q, Hs)
            return RNNFunction._keep(ctx, recording, Hs, pool, W_hh, W_hq, O, H_T)
        Hs[:h, 0].copy_(H0.t())
        X_aug = Hs[h:, :steps].view(V + 1, N)  # [one-hot(x_t)^T; 1], (V+1, N)
        X_aug.zero_()
        X_aug[:V].scatter_(0, tokens.unsqueeze(0), 1.0)
        X_aug[V].fill_(1.0)
        # 2 (x_t W_xh + b_h) for all steps in one matmul: (h, V+1) x (V+1, N) -> rows :h of blocks 1..T.
        W2_aug_T = torch.cat([W_xh, b_h.unsqueeze(0)]).t().mul(1 if relu else 2)  # (h, V+1)
        torch.mm(W2_aug_T, X_aug, out=Hs[:h, 1:].view(h, N))
        W2_hh_T = pool.take((h, h), W_hh) if pool is not None else torch.empty_like(W_hh)
        W2_hh_T.copy_(W_hh.t())  # contiguous: the matmul is slower on a transposed view
        if not relu:
            W2_hh_T.mul_(2)  # 2 W_hh^T
        minus_one = H0.new_full((), -1.0)
        H = Hs[:h].unbind(1)  # H[t]: H_t^T, (h, batch) views
        for t in range(steps):
            if relu:
                H[t + 1].addmm_(W2_hh_T, H[t]).relu_()  # H_t = relu(x_t W_xh + b_h + H_{t-1} W_hh)
                continue
            Z2 = H[t + 1].addmm_(W2_hh_T, H[t])  # 2z = 2 (x_t W_xh + b_h + H_{t-1} W_hh), transposed
            torch.add(minus_one, Z2.sigmoid_(), alpha=2, out=Z2)  # H_t = 2 sigmoid(2z) - 1 = tanh(z)
        if pool is not None:
            pool.give(W2_hh_T)
        # O^T = W_hq^T H^T + b_q: (V, h) x (h, N), then (N, V) time-major rows.
        O = torch.addmm(b_q.unsqueeze(1), W_hq.t(), Hs[:h, 1:].view(h, N)).t().contiguous()
        H_T = H[steps].t().contiguous()  # (batch, h)
        return RNNFunction._keep(ctx, recording, Hs, pool, W_hh, W_hq, O, H_T)

    @staticmethod
    def _keep(ctx, recording, Hs, pool, W_hh, W_hq, O, H_T):
        """What backward needs, kept when autograd records; else the activations go back to the pool."""
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None, not as zeros
        if recording:
            ctx.save_for_backward(W_hh, W_hq)
            ctx.Hs, ctx.pool = Hs, pool  # Hs is ours alone: no version check needed
        elif pool is not None:
            pool.give(Hs)
        return O, H_T

    @staticmethod
    def backward(ctx, dO, dH_T):
        W_hh, W_hq = ctx.saved_tensors
        Hs, pool = ctx.Hs, ctx.pool
        if Hs is None:
            raise RuntimeError("The fast engine's activations were already used by a backward pass: "
                               "backward through it once per forward.")
        ctx.Hs = None
        h, V = W_hh.shape[0], W_hq.shape[1]
        steps, batch = Hs.shape[1] - 1, Hs.shape[2]
        N = steps * batch
        H_all_T = Hs[:h, 1:].view(h, N)  # H_1..H_T, (h, N)
        need = ctx.needs_input_grad
        if ctx.cpp is not None:  # the same backward, its loop over time in C++
            dA = pool.take((h, steps, batch), Hs) if pool is not None else Hs.new_empty((h, steps, batch))
            dW_xh, dW_hh, db_h, dW_hq, db_q, dH0 = ctx.cpp.backward(dO, dH_T, W_hh, W_hq, Hs, dA,
                                                                   need[1], need[5], need[6])
            if pool is not None:
                pool.give(Hs, dA)
            return None, dH0, dW_xh, dW_hh, db_h, dW_hq, db_q, None, None, None, None
        if dO is None:  # only the new state was used
            dO = Hs.new_zeros((N, V))
        dW_hq = torch.mm(H_all_T, dO) if need[5] else None  # (h, V)
        db_q = dO.sum(0) if need[6] else None
        # dA_t^T = dL/dA_t^T, A_t the pre-activation; starts as the gradient reaching H_t from O_t.
        shape = (h, steps, batch)
        dA = pool.take(shape, Hs) if pool is not None else Hs.new_empty(shape)
        dA_all = dA.view(h, N)
        torch.mm(W_hq, dO.t(), out=dA_all)  # (h, V) x (V, N)
        if dH_T is not None:
            dA[:, steps - 1] += dH_T.t()
        # tanh' = 1 - H_t^2 for all steps in one pass.
        dtanh = pool.take(shape, Hs) if pool is not None else Hs.new_empty(shape)
        if ctx.relu:
            torch.gt(Hs[:h, 1:], 0, out=dtanh)  # relu' = 1[H_t > 0]
        else:
            torch.addcmul(Hs.new_ones(()), Hs[:h, 1:], Hs[:h, 1:], value=-1, out=dtanh)
        dA_t, dtanh_t = dA.unbind(1), dtanh.unbind(1)  # (h, batch) views
        dA_t[steps - 1].mul_(dtanh_t[steps - 1])
        for t in range(steps - 2, -1, -1):
            dA_t[t].addmm_(W_hh, dA_t[t + 1]).mul_(dtanh_t[t])  # dA_t^T = (dH_t^T + W_hh dA_{t+1}^T) tanh'
        dH0 = torch.mm(W_hh, dA_t[0]).t() if need[1] else None
        # [dW_hh; dW_xh; db_h] = [H_{t-1}; x_t; 1] dA: one (h+V+1, N) x (N, h) matmul.
        grads = torch.mm(Hs[:, :steps].view(h + V + 1, N), dA_all.t())
        if pool is not None:
            pool.give(Hs, dA, dtanh)
        return None, dH0, grads[h:h + V], grads[:h], grads[h + V], dW_hq, db_q, None, None, None, None


def rnn_fast(X: torch.Tensor, state: State, params, pool: BufferPool | None = None,
             cpp: bool = True, activation: str = "tanh") -> tuple[torch.Tensor, State]:
    """The lesson's ``rnn(inputs, state, params)`` on token indices X (batch, steps) instead of one-hot.

    ``cpp=False`` runs the Python path even where the C++ kernels are ready (the tests compare the two);
    the C++ kernels compute tanh only, so ``activation="relu"`` always runs the Python path.
    """
    tokens = X.T.reshape(-1)  # (steps*batch,) time-major, like the outputs
    recording = torch.is_grad_enabled() and any(t.requires_grad for t in (state[0], *params))
    ext = _cpu_kernels(state[0], *params) if cpp and activation == "tanh" else None
    O, H = RNNFunction.apply(tokens, state[0], *params, pool, recording, ext, activation)
    return O, (H,)


class FastRNN(RNN):
    """The scratch model (same parameters, init, state and outputs) with the fast forward and backward."""

    engine = "fast"

    def __init__(self, vocab_size: int, num_hiddens: int, device=None, seed: int | None = None,
                 activation: str = "tanh"):
        super().__init__(vocab_size, num_hiddens, device, seed=seed, activation=activation)
        self.use_kernels = True  # False: the Python path even where the C++ kernels are ready
        # On CUDA the Trainer hands the whole step to a captured graph; elsewhere it runs the step itself.
        self.train_step = CudaGraphStep(self) if self.device.type == "cuda" else None
        # CUDA's caching allocator already reuses memory (and a graph owns its own); the CPU's does not.
        self.pool = BufferPool() if self.device.type == "cpu" else None

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return rnn_fast(X, state, self.params, self.pool, cpp=self.use_kernels, activation=self.activation)
