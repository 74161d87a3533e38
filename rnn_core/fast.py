"""The fast engine: the lesson's RNN with the same parameters and loss, with backpropagation through time by hand.

    H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)      O_t = H_t W_hq + b_q

What makes it fast, with identical math:

- ``X_t W_xh`` with a one-hot ``X_t`` is row ``x_t`` of ``W_xh``: one gather for all steps, no one-hot, no matmul.
- Only ``H_{t-1} W_hh`` is sequential: one in-place ``addmm_`` and one ``tanh_`` per step, into views of one
  preallocated buffer (no per-step allocations).
- The output projection is one (steps*batch, h) x (h, V) matmul over all steps.
- The backward pass (:class:`RNNFunction`) is written by hand: per step one ``addmm_`` and one ``mul_``;
  ``dW_hh`` is then one large (h, steps*batch) x (steps*batch, h) matmul, ``dW_xh`` one scatter-add.

On CUDA, :class:`CudaGraphStep` captures the whole training step (forward, loss, backward, clipping, SGD)
as one CUDA graph, so the ~150 small kernels of a step are launched by one call.
"""
from __future__ import annotations

import warnings

import torch
from torch.nn import functional as F

from .model import RNN, State


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
    W_hq (h, V); b_q (V,); a BufferPool or None; whether autograd records this call. Outputs: O (steps*batch, V) time-major, H_T (batch, h).

    tanh is evaluated as ``tanh(z) = 2 sigmoid(2z) - 1``: the same function, within float rounding, and
    three times faster than torch's tanh on this CPU. The factor 2 is exact in floating point and rides in
    the matmul's alpha and beta, so it costs nothing.
    """

    @staticmethod
    def forward(ctx, tokens, H0, W_xh, W_hh, b_h, W_hq, b_q, pool, recording):
        batch, h = H0.shape
        steps = tokens.numel() // batch
        shape = (steps + 1, batch, h)
        Hs = pool.take(shape, H0) if pool is not None else H0.new_empty(shape)  # Hs[0] = H_0, Hs[t] = H_t
        Hs[0].copy_(H0)
        # X_t W_xh + b_h for every step at once: a row gather from (W_xh + b_h), shape (steps*batch, h).
        torch.index_select(W_xh + b_h, 0, tokens, out=Hs[1:].view(steps * batch, h))
        minus_one = H0.new_full((), -1.0)
        H = Hs.unbind(0)  # views, made once
        for t in range(steps):
            Z2 = H[t + 1].addmm_(H[t], W_hh, beta=2, alpha=2)  # 2 (X_t W_xh + b_h + H_{t-1} W_hh), (batch, h)
            torch.add(minus_one, Z2.sigmoid_(), alpha=2, out=Z2)  # H_t = 2 sigmoid(2z) - 1 = tanh(z)
        H_all = Hs[1:].view(steps * batch, h)
        # (V, h) x (h, steps*batch), then transposed: faster than (steps*batch, h) x (h, V) here.
        O = torch.addmm(b_q.unsqueeze(1), W_hq.t(), H_all.t()).t().contiguous()  # (steps*batch, V)
        H_T = H[steps].clone()
        if recording:
            ctx.save_for_backward(tokens, W_hh, W_hq)
            ctx.Hs, ctx.pool, ctx.W_xh_shape = Hs, pool, W_xh.shape  # Hs is ours alone: no version check needed
        elif pool is not None:
            pool.give(Hs)
        return O, H_T

    @staticmethod
    def backward(ctx, dO, dH_T):
        tokens, W_hh, W_hq = ctx.saved_tensors
        Hs, pool = ctx.Hs, ctx.pool
        if Hs is None:
            raise RuntimeError("The fast engine's activations were already used by a backward pass: "
                               "backward through it once per forward.")
        ctx.Hs = None
        steps, batch, h = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
        H_all = Hs[1:].view(steps * batch, h)
        need = ctx.needs_input_grad
        dW_hq = torch.mm(dO.t(), H_all).t() if need[5] else None  # (h, V), computed as (V, ...) x (..., h)
        db_q = dO.sum(0) if need[6] else None
        # dL/dA_t, A_t the pre-activation; starts as the gradient reaching H_t from O_t, (steps, batch, h).
        shape = (steps, batch, h)
        dA = pool.take(shape, Hs) if pool is not None else Hs.new_empty(shape)
        torch.mm(dO, W_hq.t(), out=dA.view(steps * batch, h))
        if dH_T is not None:
            dA[steps - 1] += dH_T
        # tanh' = 1 - H_t^2 for all steps in one pass.
        dtanh = pool.take(shape, Hs) if pool is not None else Hs.new_empty(shape)
        torch.addcmul(torch.ones((), dtype=Hs.dtype, device=Hs.device), Hs[1:], Hs[1:], value=-1, out=dtanh)
        dA_t, dtanh_t = dA.unbind(0), dtanh.unbind(0)
        W_hh_T = W_hh.t()
        dA_t[steps - 1].mul_(dtanh_t[steps - 1])
        for t in range(steps - 2, -1, -1):
            dA_t[t].addmm_(dA_t[t + 1], W_hh_T).mul_(dtanh_t[t])  # (batch, h)
        dA_all = dA.view(steps * batch, h)
        dH0 = torch.mm(dA_t[0], W_hh_T) if need[1] else None
        dW_hh = torch.mm(Hs[:-1].view(steps * batch, h).t(), dA_all) if need[3] else None  # one big matmul
        db_h = dA_all.sum(0) if need[4] else None
        dW_xh = None
        if need[2]:
            dW_xh = dA_all.new_zeros(ctx.W_xh_shape).index_add_(0, tokens, dA_all)  # scatter-add of rows
        if pool is not None:
            pool.give(Hs, dA, dtanh)
        return None, dH0, dW_xh, dW_hh, db_h, dW_hq, db_q, None, None


def rnn_fast(X: torch.Tensor, state: State, params, pool: BufferPool | None = None) -> tuple[torch.Tensor, State]:
    """The lesson's ``rnn(inputs, state, params)`` on token indices X (batch, steps) instead of one-hot."""
    tokens = X.T.reshape(-1)  # (steps*batch,) time-major, like the outputs
    recording = torch.is_grad_enabled() and any(t.requires_grad for t in (state[0], *params))
    O, H = RNNFunction.apply(tokens, state[0], *params, pool, recording)
    return O, (H,)


class FastRNN(RNN):
    """The scratch model (same parameters, init, state and outputs) with the fast forward and backward."""

    engine = "fast"

    def __init__(self, vocab_size: int, num_hiddens: int, device=None, seed: int | None = None):
        super().__init__(vocab_size, num_hiddens, device, seed=seed)
        # On CUDA the Trainer hands the whole step to a captured graph; elsewhere it runs the step itself.
        self.train_step = CudaGraphStep(self) if self.device.type == "cuda" else None
        # CUDA's caching allocator already reuses memory (and a graph owns its own); the CPU's does not.
        self.pool = BufferPool() if self.device.type == "cpu" else None

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return rnn_fast(X, state, self.params, self.pool)


class CudaGraphStep:
    """One training step (forward, cross-entropy, backward, clipping at theta, SGD) replayed as a CUDA graph.

    ``step(X, Y, state, lr, theta) -> (loss, grad_norm, new_state)`` does what the Trainer's loop body does,
    with the same math. A graph is captured per (batch, steps, lr, theta) the first time it is needed;
    inputs and state are copied into its static buffers and the outputs are its static tensors, valid until
    the next call (the Trainer consumes them on the same stream before that). If capture fails, the step
    runs eagerly from then on.
    """

    warmup_iters = 3

    def __init__(self, net: FastRNN):
        self.net = net
        self.graphs: dict[tuple, tuple] = {}
        self.eager = False  # set when capture failed

    def _body(self, X, Y, H0, lr: float, theta: float):
        from .training import grad_clipping, sgd  # training imports the engines: import here, not at the top

        net = self.net
        y_hat, (H,) = net(X, (H0,))
        loss = F.cross_entropy(y_hat, Y.T.reshape(-1))
        loss.backward()
        norm = grad_clipping(net, theta)
        sgd(net.params, lr)
        return loss.detach(), norm, H.detach()

    def _capture(self, X, Y, lr: float, theta: float):
        net, device = self.net, self.net.device
        static_X, static_Y = X.to(device, copy=True), Y.to(device, copy=True)
        static_H = torch.zeros((X.shape[0], net.num_hiddens), device=device)
        # Warm-up runs change the parameters: keep them, and put them back after capture.
        saved = [p.detach().clone() for p in net.params]
        try:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup_iters):
                    self._body(static_X, static_Y, static_H, lr, theta)
            torch.cuda.current_stream(device).wait_stream(side)
            for p in net.params:
                p.grad = None  # so the captured backward writes its gradients into the graph's own memory
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                outputs = self._body(static_X, static_Y, static_H, lr, theta)
            torch.cuda.synchronize(device)
        finally:
            with torch.no_grad():
                for p, s in zip(net.params, saved):
                    p.copy_(s)
                    if p.grad is not None:
                        p.grad.zero_()
        return graph, static_X, static_Y, static_H, outputs

    def __call__(self, X: torch.Tensor, Y: torch.Tensor, state: State, lr: float, theta: float):
        device = self.net.device
        key = (tuple(X.shape), float(lr), float(theta))
        if not self.eager and key not in self.graphs:
            try:
                self.graphs[key] = self._capture(X, Y, lr, theta)
            except RuntimeError as exc:  # e.g. a driver without graph support: same math, eagerly
                warnings.warn(f"CUDA graph capture failed ({exc}); the fast engine runs eagerly.")
                self.eager = True
        if self.eager:
            loss, norm, H = self._body(X.to(device), Y.to(device), state[0], lr, theta)
            return loss, norm, (H,)
        graph, static_X, static_Y, static_H, (loss, norm, H) = self.graphs[key]
        static_X.copy_(X, non_blocking=True)
        static_Y.copy_(Y, non_blocking=True)
        static_H.copy_(state[0])
        graph.replay()
        return loss, norm, (H,)
