"""The fast engine's training step on CUDA, captured as one CUDA graph: the ~150 small kernels of a step
(forward, loss, backward, clipping, SGD) are launched by one call."""
from __future__ import annotations

import warnings

import torch
from torch.nn import functional as F

from .model import State
from .training import grad_clipping, sgd


class CudaGraphStep:
    """One training step (forward, cross-entropy, backward, clipping at theta, SGD) replayed as a CUDA graph.

    ``step(X, Y, state, lr, theta) -> (loss, grad_norm, new_state)`` does what the Trainer's loop body does,
    with the same math. A graph is captured per (batch, steps, lr, theta) the first time it is needed;
    inputs and state are copied into its static buffers and the outputs are its static tensors, valid until
    the next call (the Trainer consumes them on the same stream before that). If capture fails, the step
    runs eagerly from then on.
    """

    warmup_iters = 3

    def __init__(self, net):
        self.net = net
        self.graphs: dict[tuple, tuple] = {}
        self.eager = False  # set when capture failed

    def _body(self, X, Y, H0, lr: float, theta: float):
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
