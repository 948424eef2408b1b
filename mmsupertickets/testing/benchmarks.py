"""Helpers shared by the benchmark scripts of ``tools/benchmarks``.

Timings that are compared are always taken in one run, interleaved round by
round (the order alternates between rounds), and summarised by medians, so
that a machine shared with other work slows every side alike.
"""
import argparse
import copy
import datetime
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn

# Small supernet for --smoke runs: the same kind of stages, blocks and
# kernel paths at a fraction of the size, so that every code path runs in
# seconds.
SMOKE_BACKBONE = dict(
    type='SuperTicketHRNet',
    stem_channels=8,
    stage_channels=((8, ), (8, 16)),
    stage_blocks=((1, ), (1, 1)),
    kernel_sizes=(3, 5),
    out_indices=(0, 1),
    expand_ratio=2)

DATA_PREPROCESSOR = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)


# -- command line and environment --------------------------------------------
def add_common_args(parser: argparse.ArgumentParser, repeats: int,
                    warmup: int) -> None:
    """Options every benchmark takes, with the script's own defaults."""
    parser.add_argument('--repeats', type=int, default=repeats,
                        help='timed rounds per side (medians are reported)')
    parser.add_argument('--warmup', type=int, default=warmup,
                        help='untimed rounds per side before the timed ones')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (default 1: the '
                        'machine is shared, one thread per process keeps '
                        'both sides of a ratio under the same load)')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny model and input, 1 round: checks that '
                        'the script runs, the numbers mean nothing')


def setup(threads: int) -> None:
    """Thread count and quiet logs for a benchmark process."""
    torch.set_num_threads(threads)
    from mmengine.logging import MMLogger

    # The hooks log every event through the current MMLogger; keep the
    # benchmark's own table readable.
    MMLogger.get_instance('supertickets_benchmark', log_level='WARNING')
    from mmseg.utils import register_all_modules

    import mmsupertickets  # noqa: F401  (registers the modules)
    register_all_modules(init_default_scope=True)


def cpu_model() -> str:
    """The CPU's model name, as ``lscpu`` reports it."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def print_header(title: str, threads: int) -> None:
    """What the numbers below were measured on."""
    load = ', '.join(f'{x:.2f}' for x in os.getloadavg())
    print(f'# {title}')
    print(f'# {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, '
          f'{cpu_model()}, nproc {os.cpu_count()}, torch {torch.__version__}'
          f', {threads} thread(s), load average {load}')


# -- timing ------------------------------------------------------------------
class Clock:
    """Wall and process CPU seconds since the last :meth:`start`.

    CPU time counts only the cycles this process got, so a machine shared
    with other work inflates it much less than wall time; with one torch
    thread and one side running at a time it is that side's work.
    """

    def __init__(self):
        self.start()

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def read(self) -> Tuple[float, float]:
        return (time.perf_counter() - self.wall,
                time.process_time() - self.cpu)


@dataclass
class Samples:
    """Timed repeats of one side: wall and CPU seconds."""
    wall: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def med_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def med_cpu(self) -> float:
        return statistics.median(self.cpu)

    @property
    def min_cpu(self) -> float:
        """Least CPU time: other load only ever adds to it."""
        return min(self.cpu)

    def cells(self) -> List[str]:
        """Table cells: wall median, wall range, CPU median."""
        return [f'{self.med_wall:.3f}', spread(self.wall),
                f'{self.med_cpu:.3f}']


TIME_HEADERS = ['wall s (median)', 'wall range', 'CPU s (median)']


def interleaved(fns: Dict[str, Callable[[], None]], repeats: int,
                warmup: int) -> Dict[str, Samples]:
    """Seconds per call of each function, run round by round.

    Every round calls each function once; odd rounds go in reverse order
    so that no side always runs right after the same other one.
    """
    names = list(fns)
    times = {n: Samples() for n in names}
    clock = Clock()
    for r in range(warmup + repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            clock.start()
            fns[n]()
            wall, cpu = clock.read()
            if r >= warmup:
                times[n].add(wall, cpu)
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float]) -> str:
    return f'{min(xs):.3f}-{max(xs):.3f}'


def print_table(headers: Sequence[str], rows: Sequence[Sequence],
                left: int = 1) -> None:
    """A plain-text table; the first ``left`` columns are left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for k, r in enumerate(cells):
        print('  '.join(c.ljust(w) if i < left else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print('  '.join('-' * w for w in widths))


# -- models ------------------------------------------------------------------
def seg_model_cfg(tiny: bool = False, num_classes: int = 19) -> dict:
    """mmseg EncoderDecoder: SuperTicketHRNet + HRNASSegHead (Cityscapes).

    Args:
        tiny (bool): The small --smoke supernet instead of the paper's.
        num_classes (int): Classes of the head. Defaults to 19.
    """
    if tiny:
        backbone = copy.deepcopy(SMOKE_BACKBONE)
        head = dict(in_channels=[8, 16], in_index=[0, 1], channels=16,
                    kernel_sizes=(3, 5), expand_ratio=2)
    else:
        backbone = dict(type='SuperTicketHRNet')
        head = dict(in_channels=[18, 36, 72, 144], in_index=[0, 1, 2, 3],
                    channels=90)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=copy.deepcopy(DATA_PREPROCESSOR),
        backbone=backbone,
        decode_head=dict(
            type='HRNASSegHead', input_transform='resize_concat',
            num_classes=num_classes,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0),
            **head),
        test_cfg=dict(mode='whole'))


def build_seg_model(tiny: bool = False, seed: int = 0) -> nn.Module:
    """The supernet segmentor with the HR-NAS init."""
    from mmseg.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(seg_model_cfg(tiny))
    # The parts' own init, without the per-parameter init log of
    # BaseModule.init_weights.
    model.backbone.init_weights()
    model.decode_head.init_weights()
    return model


# -- events outside a training loop ------------------------------------------
class EventRunner:
    """What the hooks use of a runner, for one event outside a loop."""

    def __init__(self, model, optim_wrapper, hooks, work_dir):
        from mmengine.logging import MessageHub
        self.message_hub = MessageHub(f'event_runner_{id(self)}')
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.hooks = hooks
        self.work_dir = work_dir
        self.visualizer = None
        self.iter = 0
        self.epoch = 0
        # The hooks check the epoch's geometry before training.
        self.train_dataloader = torch.utils.data.DataLoader(
            list(range(4)), batch_size=1)

    def call_hook(self, fn_name, **kwargs):
        for hook in self.hooks:
            if hasattr(hook, fn_name):
                getattr(hook, fn_name)(self, **kwargs)


def optimizer_with_state(model: nn.Module):
    """AdamW with state for every parameter, as after a training step."""
    from mmengine.optim import OptimWrapper
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return OptimWrapper(optimizer)


def kill_channels(models, share, seed=0):
    """γ = β = 0 for ``share`` of every path's channels in all ``models``.

    Unlike the per-channel draw of
    :class:`~mmsupertickets.testing.KillChannelsHook`, exactly
    ``round(share * channels)`` per unit, so a benchmark knows how many
    channels its shrink must remove. Returns that number.
    """
    from mmsupertickets.structures.searchable import find_searchable_units
    g = torch.Generator().manual_seed(seed)
    unit_lists = [find_searchable_units(m) for m in models]
    killed = 0
    with torch.no_grad():
        for units in zip(*unit_lists):
            c = units[0].channels
            dead = torch.randperm(c, generator=g)[:int(round(share * c))]
            killed += len(dead)
            for u in units:
                u.norm.weight[dead] = 0
                u.norm.bias[dead] = 0
    return killed


def fmt_count(n: float) -> str:
    """12.34G / 5.67M / 8.90K, the project's way of printing counts."""
    from mmsupertickets.flops import format_count
    return format_count(n)


def fmt_mb(n: float) -> str:
    return f'{n / 2**20:.2f} MiB'
