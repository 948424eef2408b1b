"""Timing a module in a runtime: PyTorch eager or ONNX Runtime.

Every timed thing is a call without arguments (:func:`make_runner`); many of
them are timed round by round (:func:`time_round_robin`), so that a machine
whose load changes slows every entry alike, and summarised by medians and
quartiles. The thread count is set for the runtime and stated.
"""
import io
import platform
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, Hashable, List, Optional, Sequence

import torch
import torch.nn as nn

from .table import RUNTIMES

# Wall time is what a user waits; process CPU time counts only the cycles
# this process got, so on a machine shared with other work (and one thread,
# one call at a time) it is the call's own cost, which load barely moves.
CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)

# Runners alive at once per runtime when a table is timed (None: all). An
# ONNX Runtime session keeps its arena: at 512x1024 a unit's holds tens of
# MB and a whole model's about 1 GB, so a table's ~600 sessions at once
# exhaust 24 GB.
AT_ONCE = dict(pytorch=None, onnxruntime=8)

__all__ = ['CLOCKS', 'AT_ONCE', 'make_runner', 'time_round_robin',
           'time_in_chunks', 'summarize', 'onnx_bytes',
           'library_versions', 'check_runtime']


def check_runtime(runtime: str, device: str) -> None:
    """Refuse a runtime/device pair that cannot be timed here."""
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime={runtime!r} is not one of {RUNTIMES}')
    if device not in ('cpu', 'cuda'):
        raise ValueError(f'device={device!r} must be "cpu" or "cuda"')
    if device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device="cuda" but torch sees no CUDA device')
    if runtime == 'onnxruntime':
        try:
            import onnxruntime
        except ImportError as e:
            raise ImportError(
                'runtime="onnxruntime" needs the onnxruntime package: '
                'pip install -r requirements/deploy.txt') from e
        provider = _provider(device)
        if provider not in onnxruntime.get_available_providers():
            raise ValueError(
                f'device={device!r}: onnxruntime has no {provider} here '
                f'(available: {onnxruntime.get_available_providers()})')


def _provider(device: str) -> str:
    return 'CUDAExecutionProvider' if device == 'cuda' else \
        'CPUExecutionProvider'


def onnx_bytes(module: nn.Module, x: torch.Tensor) -> bytes:
    """``module`` traced on ``x`` into an ONNX model, in memory (the
    exporter and opset of :mod:`mmsupertickets.apis.export.onnx_check`)."""
    from mmsupertickets.apis.export.onnx_check import (
        _EXPORTER_ARGS,
        ONNX_OPSET,
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Tracer warnings about frozen shapes: the shape is fixed on purpose.
        warnings.simplefilter('ignore')
        torch.onnx.export(module.eval(), (x, ), buffer, **_EXPORTER_ARGS,
                          opset_version=ONNX_OPSET, input_names=['input'])
    return buffer.getvalue()


def make_runner(runtime: str, module: nn.Module, x: torch.Tensor,
                threads: int = 1, device: str = 'cpu') -> Callable[[], None]:
    """A call that runs ``module`` on ``x`` once in ``runtime``.

    PyTorch: eval mode, ``torch.inference_mode``, the device synchronised
    after the call on CUDA; the thread count is the process's
    (``torch.set_num_threads``). ONNX Runtime: the module exported to ONNX
    in memory, one session with ``threads`` intra-op threads, one inter-op
    thread, sequential execution, all graph optimisations, the CPU (or
    CUDA) execution provider.
    """
    if runtime == 'pytorch':
        module = module.eval().to(device)
        x = x.to(device)
        sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

        def run():
            with torch.inference_mode():
                module(x)
            sync()

        return run
    check_runtime(runtime, device)
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes(module.cpu(), x.cpu()),
                                   options, providers=[_provider(device)])
    feed = {session.get_inputs()[0].name: x.cpu().numpy()}
    return lambda: session.run(None, feed)


def time_round_robin(fns: Dict[Hashable, Callable[[], None]], rounds: int,
                     warmup: int,
                     clock: str = 'wall') -> Dict[Hashable, List[float]]:
    """Milliseconds per call of each function, ``rounds`` timed calls each
    after ``warmup`` untimed ones, one call of every function per round
    (odd rounds in reverse order), by ``clock`` (a key of
    :data:`CLOCKS`)."""
    if clock not in CLOCKS:
        raise ValueError(f'clock={clock!r} is not one of {list(CLOCKS)}')
    now = CLOCKS[clock]
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(warmup + rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            start = now()
            fns[n]()
            elapsed = (now() - start) * 1e3
            if r >= warmup:
                times[n].append(elapsed)
    return times


def time_in_chunks(factories: Dict[Hashable, Callable[[], Callable]],
                   at_once: Optional[int], rounds: int, warmup: int,
                   clock: str = 'wall') -> Dict[Hashable, List[float]]:
    """:func:`time_round_robin` over at most ``at_once`` entries at a time
    (None: all), each runner built by its factory just before its chunk
    and dropped after it, so that only a chunk's runners hold memory.

    Example:
        >>> times = time_in_chunks({k: (lambda: (lambda: None))
        ...                         for k in 'abc'}, 2, rounds=3, warmup=1)
        >>> sorted(times), [len(v) for v in times.values()]
        (['a', 'b', 'c'], [3, 3, 3])
    """
    if at_once is not None and at_once < 1:
        raise ValueError(f'at_once={at_once} must be >= 1')
    keys = list(factories)
    size = at_once or max(len(keys), 1)
    times = {}
    for i in range(0, len(keys), size):
        fns = {k: factories[k]() for k in keys[i:i + size]}
        times.update(time_round_robin(fns, rounds, warmup, clock))
        # Freed now, not when the next chunk's runners (already built by
        # then) rebind the name: else two chunks are alive at once.
        del fns
    return times


def summarize(samples: Sequence[float]) -> dict:
    """Median and quartiles (ms) of one entry's timed rounds.

    Example:
        >>> summarize([1.0, 2.0, 3.0, 4.0, 100.0])
        {'median': 3.0, 'iqr': [2.0, 4.0]}
    """
    xs = sorted(samples)
    if len(xs) < 2:
        return dict(median=xs[0], iqr=[xs[0], xs[0]])
    q = statistics.quantiles(xs, n=4, method='inclusive')
    return dict(median=statistics.median(xs), iqr=[q[0], q[2]])


def library_versions(runtime: str) -> dict:
    """Versions that decide the timings: Python, torch, NumPy and, for ONNX
    Runtime, onnx and onnxruntime; the CPU model."""
    import numpy
    versions = dict(python=platform.python_version(), torch=torch.__version__,
                    numpy=numpy.__version__)
    if runtime == 'onnxruntime':
        import onnx
        import onnxruntime
        versions.update(onnx=onnx.__version__,
                        onnxruntime=onnxruntime.__version__)
    from mmsupertickets import __version__
    versions['mmsupertickets'] = __version__
    return versions


def machine() -> dict:
    """The CPU model, core count and platform of this machine."""
    cpu = platform.processor() or 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    import os
    return dict(cpu=cpu, nproc=os.cpu_count(), platform=sys.platform)
