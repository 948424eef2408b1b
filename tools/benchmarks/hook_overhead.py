"""Cost of the SuperTickets hooks in a training run, and of their events.

1. Steady-state iteration time through the stock mmengine ``Runner`` and
   ``IterBasedTrainLoop``, with ``SuperNetSearchHook``,
   ``ProgressivePruningHook`` and ``IterativeReactivationHook`` vs. the same
   model, data, optimizer and initial weights without them. Each side has
   its own runner training in its own thread of one process; a benchmark
   hook (lowest priority) hands control back to the main thread after every
   block of ``--block-iters`` iterations, so only one side runs at a time,
   the sides alternate, and both see the same machine load.
   The hooks side is pruned to 90 % (``ProgressivePruningHook.prune``)
   after its first block, so the masks are active in every timed
   iteration; ρ is at its final value; no event falls in the timed window.
   A block's time runs from the end of the previous block (after every
   other hook of that iteration) to the end of its last iteration: data
   loading, ``before_train_iter``, ``train_step`` (with the masked forward
   and the γ penalty inside ``optimizer.step``) and ``after_train_iter``.
2. One prune event on the paper-size segmentation model (global magnitude
   over its ~9.9 M prunable weights, rank 0's work plus the event report),
   timed in the hooks side's runner.
3. One shrink event on the paper-size segmentation model: 30 % of every
   kernel path's channels get γ = 0 in the live and the EMA weights, then
   ``SuperNetSearchHook.shrink`` removes them and slices AdamW's state, the
   EMA copy (``EMAHook``) and the 90 % masks (reset to dense by
   ``IterativeReactivationHook``). A fresh model per repeat; the stand-in
   runner carries what a real one gives the hooks.

Default: the paper supernet + HRNASSegHead at 128×256, batch 2;
``--paper-size`` trains at 512×1024 (batch 1, for memory).

Example::

    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmarks/hook_overhead.py
"""
import argparse
import os.path as osp
import queue
import statistics
import tempfile
import threading
import traceback

import torch
import torch.nn as nn
from mmengine.hooks import Hook

from mmsupertickets.testing.benchmarks import (
    DATA_PREPROCESSOR,
    TIME_HEADERS,
    Clock,
    EventRunner,
    Samples,
    add_common_args,
    build_seg_model,
    kill_channels,
    optimizer_with_state,
    print_header,
    print_table,
    seg_model_cfg,
    setup,
)

NEVER = 10**6  # an interval no timed run reaches
SPARSITY = 0.9


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Iteration time with and without the SuperTickets '
        'hooks, and the time of one prune and one shrink event')
    parser.add_argument('--shape', type=int, nargs=2, default=(128, 256),
                        metavar=('H', 'W'), help='training input size')
    parser.add_argument('--batch', type=int, default=2, help='batch size')
    parser.add_argument('--paper-size', action='store_true',
                        help='train at 512x1024 (batch 1)')
    parser.add_argument('--block-iters', type=int, default=1,
                        help='iterations per timed block')
    parser.add_argument('--event-repeats', type=int, default=3,
                        help='repeats of the prune and the shrink event')
    parser.add_argument('--shrink-share', type=float, default=0.3,
                        help='share of every path\'s channels removed by '
                        'the timed shrink event')
    add_common_args(parser, repeats=16, warmup=2)
    args = parser.parse_args(argv)
    if args.paper_size:
        args.shape, args.batch = (512, 1024), 1
    if args.smoke:
        args.shape, args.batch, args.block_iters = (32, 64), 2, 1
        args.repeats, args.warmup, args.event_repeats = 1, 0, 1
    return args


# -- the training runs -------------------------------------------------------
def train_config(data_root, work_dir, shape, batch, tiny, with_hooks):
    """A stock mmseg training config, with or without the three hooks.

    The hooks' intervals are out of reach, so no event falls inside the
    timed iterations; ρ has no warm-up, so its penalty runs from the start.
    """
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    model = seg_model_cfg(tiny)
    model['data_preprocessor'] = dict(DATA_PREPROCESSOR, size=tuple(shape))
    hooks = [
        dict(type='SuperNetSearchHook', rho=1.4e-4, warmup=0,
             shrink_interval=NEVER, input_shape=tuple(shape),
             by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=SPARSITY,
             prune_interval=NEVER, by_epoch=False),
        dict(type='IterativeReactivationHook'),
    ] if with_hooks else []
    return dict(
        default_scope='mmseg',
        work_dir=work_dir,
        model=model,
        train_dataloader=dict(
            batch_size=batch, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(
                type='CityscapesDataset', data_root=data_root,
                data_prefix=dict(img_path='leftImg8bit/train',
                                 seg_map_path='gtFine/train'),
                pipeline=pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=10 * NEVER,
                       val_interval=10 * NEVER),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(
            type='AdamW', lr=1e-4, weight_decay=1e-4)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=NEVER),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=10 * NEVER),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=hooks,
        env_cfg=dict(cudnn_benchmark=False),
        # mmengine's deprecation warnings would break up the table.
        log_level='ERROR',
        randomness=dict(seed=0))


class BatonHook(Hook):
    """Hands control back to the main thread after every block of
    iterations.

    Lowest priority, so a block's time includes every other hook's work.
    While the other side runs, this side's thread waits on its inbox.
    """

    priority = 'LOWEST'

    def __init__(self, side, inbox, outbox, block_iters):
        self.side = side
        self.inbox = inbox
        self.outbox = outbox
        self.block_iters = block_iters
        self.done = 0
        self.clock = Clock()

    def before_train(self, runner):
        self.outbox.put((self.side, 'ready', None))
        self._serve(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.done += 1
        if self.done < self.block_iters:
            return
        wall, cpu = self.clock.read()
        self.outbox.put((self.side, 'block',
                         (wall / self.done, cpu / self.done)))
        self._serve(runner)

    def _serve(self, runner):
        """Wait for 'run' or 'stop' from the main thread."""
        cmd = self.inbox.get()
        if cmd == 'run':
            self.done = 0
            self.clock.start()
        elif cmd == 'stop':
            runner.train_loop.stop_training = True


def _pruning_hook(runner):
    from mmsupertickets.engine.run_state import TicketRunState
    return TicketRunState.of(runner).mask_owner


def _train(runner, side, outbox):
    try:
        runner.train()
        outbox.put((side, 'done', None))
    except BaseException:  # report it to the main thread, which raises
        outbox.put((side, 'error', traceback.format_exc()))


# -- events ------------------------------------------------------------------
def time_prune(runner, repeats):
    """A prune event of the runner's pruning hook, and two of its parts."""
    from mmsupertickets.engine.model_status import model_status
    from mmsupertickets.engine.run_state import TicketRunState
    from mmsupertickets.pruning.builder import build_scorer, build_selection
    hook = _pruning_hook(runner)
    scorer, select = build_scorer(hook.scorer), build_selection(hook.scope)
    estimator = TicketRunState.of(runner).estimator
    weights = hook.prunable(runner)
    out = dict(total=Samples(), select=Samples(), status=Samples(),
               weights=sum(w.numel() for w in weights.values()))
    clock = Clock()
    for _ in range(repeats):
        clock.start()
        hook.prune(runner, SPARSITY, event='benchmark prune')
        out['total'].add(*clock.read())
        clock.start()
        select(scorer(weights), SPARSITY)
        out['select'].add(*clock.read())
        clock.start()
        model_status(runner, hook.masks, list(weights), estimator=estimator)
        out['status'].add(*clock.read())
    return out


def time_shrink(shape, tiny, share, repeats, work_dir):
    """Seconds of one shrink event (fresh model each time), and of its MAC
    recount, the FlopAnalyzer trace that reports the new size."""
    from mmengine.hooks import EMAHook

    from mmsupertickets.engine.hooks import (
        IterativeReactivationHook,
        ProgressivePruningHook,
        SuperNetSearchHook,
    )
    from mmsupertickets.flops import analyze_macs
    from mmsupertickets.structures.searchable import find_searchable_units
    out = dict(total=Samples(), recount=Samples(), removed=0, channels=0)
    clock = Clock()
    for _ in range(repeats):
        model = build_seg_model(tiny=tiny)
        out['channels'] = sum(u.channels
                              for u in find_searchable_units(model))
        # min_macs=0: the smoke model's dead channels are below the
        # default floor, and the event must happen.
        search = SuperNetSearchHook(input_shape=shape, min_macs=0,
                                    by_epoch=False)
        pruning = ProgressivePruningHook(by_epoch=False)
        ema = EMAHook()
        runner = EventRunner(model, optimizer_with_state(model),
                             [search, pruning, IterativeReactivationHook(),
                              ema], work_dir)
        ema.before_run(runner)
        search.before_train(runner)
        search.before_train_iter(runner, 0)  # profiles the supernet
        pruning.prune(runner, SPARSITY, event='benchmark prune')
        out['removed'] = kill_channels([model, ema.ema_model.module], share)
        clock.start()
        search.shrink(runner)
        out['total'].add(*clock.read())
        left = sum(u.channels for u in find_searchable_units(model))
        if left != out['channels'] - out['removed']:
            raise RuntimeError(f'the shrink left {left} channels, expected '
                               f'{out["channels"] - out["removed"]}')
        clock.start()
        analyze_macs(model, shape).total()
        out['recount'].add(*clock.read())
        search.after_train(runner)
    return out


# -- orchestration -----------------------------------------------------------
class Sides:
    """The two runners, each training in its own thread, one at a time."""

    def __init__(self, runners, block_iters):
        self.runners = runners
        self.outbox = queue.Queue()
        self.inboxes = {n: queue.Queue() for n in runners}
        self.threads = {}
        for name, runner in runners.items():
            runner.register_hook(BatonHook(name, self.inboxes[name],
                                           self.outbox, block_iters))

    def _expect(self, side, kind):
        got_side, msg, value = self.outbox.get()
        if msg == 'error':
            raise RuntimeError(f'{got_side} side failed:\n{value}')
        if (got_side, msg) != (side, kind):
            raise RuntimeError(f'{got_side} side sent {msg!r}, expected '
                               f'{kind!r} from {side}')
        return value

    def start(self, name):
        """Start a side's training and wait until its loop is set up."""
        from mmengine.runner import set_random_seed

        # Each side draws its initial weights from the same seed.
        set_random_seed(0)
        thread = threading.Thread(
            target=_train, args=(self.runners[name], name, self.outbox),
            daemon=True)
        thread.start()
        self.threads[name] = thread
        self._expect(name, 'ready')

    def block(self, name):
        """Run one block of a side; wall and CPU seconds per iteration."""
        self.inboxes[name].put('run')
        return self._expect(name, 'block')

    def stop(self):
        for name, thread in self.threads.items():
            self.inboxes[name].put('stop')
            self._expect(name, 'done')
            thread.join()


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) for k in sa)


def build_runners(data_root, work_root, args):
    """The two stock runners, with and without the hooks, by side."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    runners = {}
    for name, with_hooks in (('with_hooks', True), ('without_hooks', False)):
        cfg = train_config(data_root, osp.join(work_root, name), args.shape,
                           args.batch, args.smoke, with_hooks)
        # Distinct names: mmengine keys its message hubs and loggers by it.
        cfg['experiment_name'] = f'benchmark_{name}'
        runners[name] = Runner.from_cfg(Config(cfg))
    return runners


def time_training(data_root, work_root, args):
    """Iteration times of both sides (alternating blocks, the hooks side
    pruned first), then the prune event on the hooks side.

    Returns:
        tuple: ``(times by side, same initial weights, sparsity of the
        hooks side, prune event times)``.
    """
    runners = build_runners(data_root, work_root, args)
    sides = Sides(runners, args.block_iters)
    names = list(runners)
    for name in names:
        sides.start(name)
    same = same_weights(runners['with_hooks'].model,
                        runners['without_hooks'].model)
    for name in names:  # first iterations: profiling, lazy set-up
        sides.block(name)
    # Between blocks the hooks side's thread waits, so the main thread may
    # use its runner.
    hooks_runner = runners['with_hooks']
    pruning = _pruning_hook(hooks_runner)
    pruning.prune(hooks_runner, SPARSITY, event='benchmark prune')
    sparsity = pruning.sparsity(hooks_runner)
    times = {n: Samples() for n in names}
    for r in range(args.warmup + args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            wall, cpu = sides.block(name)
            if r >= args.warmup:
                times[name].add(wall, cpu)
    prune = time_prune(hooks_runner, args.event_repeats)
    sides.stop()
    return times, same, sparsity, prune


def print_iterations(times, same, sparsity, args):
    """Print the iteration table and the with/without ratios; returns the
    ratios of the medians, wall and CPU."""
    with_, without = times['with_hooks'], times['without_hooks']
    wall_ratio = with_.med_wall / without.med_wall
    cpu_ratio = with_.med_cpu / without.med_cpu
    paired = statistics.median([a / b for a, b in zip(with_.cpu, without.cpu)])
    print(f'Training iteration, stock Runner + IterBasedTrainLoop, AdamW, '
          f'same initial weights: {"yes" if same else "NO"}; hooks side '
          f'pruned to sparsity {sparsity:.3f}. {args.repeats} timed blocks '
          f'of {args.block_iters} iterations per side, alternating, after '
          f'{1 + args.warmup} untimed; seconds per iteration')
    print_table(['side'] + TIME_HEADERS,
                [[n] + times[n].cells() for n in times])
    print(f'with/without: wall {wall_ratio:.3f}, CPU {cpu_ratio:.3f} '
          f'(ratios of medians); CPU: median of the paired blocks\' ratios '
          f'{paired:.3f}, ratio of minima '
          f'{with_.min_cpu / without.min_cpu:.3f}')
    return wall_ratio, cpu_ratio


def print_events(prune, shrink, args):
    """The table of the prune and the shrink event."""
    print(f'Events on the {"smoke" if args.smoke else "paper-size"} '
          f'segmentation model, median of {args.event_repeats}; the parts '
          'are timed separately')
    prune_row = ['prune to 0.9 (global magnitude over '
                 f'{prune["weights"] / 1e6:.2f} M weights)']
    shrink_row = [f'shrink ({shrink["removed"]} of {shrink["channels"]} '
                  'channels; AdamW, EMA, masks follow)']
    print_table(
        ['event'] + TIME_HEADERS + ['parts, CPU s (median)'],
        [prune_row + prune['total'].cells() + [
            f'scores+select {prune["select"].med_cpu:.3f}, status '
            f'{prune["status"].med_cpu:.3f}'],
         shrink_row + shrink['total'].cells() + [
             f'MAC recount at {args.shape[0]}x{args.shape[1]} '
             f'{shrink["recount"].med_cpu:.3f}']])


def main(argv=None):
    args = parse_args(argv)
    setup(args.threads)
    print_header(
        f'hook_overhead: iteration time with vs without the SuperTickets '
        f'hooks, input {args.shape[0]}x{args.shape[1]}, batch {args.batch}'
        + (' (smoke: tiny model)' if args.smoke else ''), args.threads)
    from mmsupertickets.testing.cityscapes import generate_cityscapes

    tmp = tempfile.TemporaryDirectory(prefix='supertickets_bench_')
    data_root = osp.join(tmp.name, 'cityscapes')
    generate_cityscapes(data_root, num_train=2 * args.batch, num_val=1,
                        image_size=args.shape, seed=0)
    # The runners are freed on return, before the shrink event is timed.
    times, same, sparsity, prune = time_training(data_root, tmp.name, args)
    shrink = time_shrink(args.shape, args.smoke, args.shrink_share,
                         args.event_repeats, tmp.name)
    tmp.cleanup()

    wall_ratio, cpu_ratio = print_iterations(times, same, sparsity, args)
    print()
    print_events(prune, shrink, args)
    print(f'ratio with_hooks/without_hooks = {wall_ratio:.3f} wall, '
          f'{cpu_ratio:.3f} CPU (target <= 1.05); prune event '
          f'{prune["total"].med_wall:.3f} s wall, '
          f'{prune["total"].med_cpu:.3f} s CPU (target < 1 s); shrink event '
          f'{shrink["total"].med_wall:.3f} s wall, '
          f'{shrink["total"].med_cpu:.3f} s CPU')

if __name__ == '__main__':
    main()
