"""rnn_core: the "RNN from scratch" lesson (Dive into Deep Learning 8.5) as a plain, tested library.

torch, numpy and pandas only; the dashboard and notebooks both use it. The lesson's own names work:
``train_iter, vocab = rnn_core.load_data_time_machine(32, 35)``, ``rnn_core.RNNModelScratch``,
``rnn_core.predict_ch8``, ``rnn_core.train_ch8``, ``rnn_core.try_gpu``.
"""
from . import openmp  # noqa: F401  first: sets OpenMP's spin count before torch loads it (rnn_core/openmp.py)
from .checkpoint import load_checkpoint, save_checkpoint
from .compat import Accumulator, Animator, Timer
from .corpus import BUILTIN_CORPORA, Corpus, CorpusError, builtin_corpus, load_corpus, time_machine_status
from .data import (SeqDataLoader, load_corpus_time_machine, load_data, load_data_time_machine, make_loader,
                   tokenize_corpus)
from .engines import ENGINES, make_model
from .guards import SettingsError, check_settings, estimate
from .identity import concat_identity
from .inspection import inspect_sequence
from .model import (RNN, DeviceError, RNNModelScratch, TorchRNN, default_device, get_params, get_rnn_params,
                    init_rnn_state, resolve_device, rnn, rnn_forward, rnn_output, rnn_step, shape_trace, try_gpu)
from .training import (DivergenceError, EpochRecord, Trainer, generate, grad_clipping, predict, predict_ch8,
                       sgd, train_ch8, train_epoch_ch8)
from .vocab import Vocab, count_corpus, tokenize

__all__ = [name for name in dir() if not name.startswith("_")]
