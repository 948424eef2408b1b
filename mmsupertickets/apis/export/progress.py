"""Progress lines of the export's slow steps."""
import time
from contextlib import contextmanager

from mmengine.logging import print_log

__all__ = ['logged_step']


@contextmanager
def logged_step(step: str):
    """Say that a step that takes tens of seconds at paper-scale sizes (a
    profiler pass, a full forward, the ONNX export) starts, and how long it
    took when that was over 5 s.

    Args:
        step (str): What the step does, as the log line shows it.

    Example:
        >>> with logged_step('counting the ticket'):  # doctest: +SKIP
        ...     cost = complexity(model, (512, 1024))
        export: counting the ticket ...
        export: counting the ticket: 12 s
    """
    print_log(f'export: {step} ...', logger='current')
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    if took > 5:
        print_log(f'export: {step}: {took:.0f} s', logger='current')
