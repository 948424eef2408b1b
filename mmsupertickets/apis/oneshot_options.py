"""How one S+P run prunes: the scorer, ratio and selection settings that
go to the one-shot hook, into the ticket and to the retraining."""
from dataclasses import dataclass
from typing import Sequence

from mmsupertickets.engine.hooks.oneshot_pruning_hook import OneShotPruningHook
from mmsupertickets.pruning.builder import part_name
from mmsupertickets.pruning.prunable import DEFAULT_EXCLUDE

__all__ = ['OneShotOptions', 'result_name']


def result_name(scorer, ratio: float) -> str:
    """``'<scorer>_<ratio>'``, e.g. ``'snip_0.93'``: the run's file stem."""
    return f'{part_name(scorer)}_{ratio:g}'


@dataclass(frozen=True)
class OneShotOptions:
    """The pruning settings of one S+P run (already validated).

    The arguments are those of
    :func:`~mmsupertickets.apis.oneshot.prune_oneshot`.

    Example:
        >>> options = OneShotOptions('magnitude', 0.9)
        >>> options.name
        'magnitude_0.9'
        >>> options.record('iter_80000.pth')['scope']
        'global'
    """

    scorer: str
    ratio: float
    scope: str = 'global'
    exclude: Sequence[str] = DEFAULT_EXCLUDE
    seed: int = 0
    snip_batches: int = 100
    snip_bn: str = 'eval'
    iterative: bool = False

    @property
    def name(self) -> str:
        """The run's file stem, see :func:`result_name`."""
        return result_name(self.scorer, self.ratio)

    def pruning_hook(self) -> OneShotPruningHook:
        """The hook that prunes the loaded subnet before it is evaluated."""
        return OneShotPruningHook(
            self.ratio, scorer=self.scorer, scope=self.scope,
            exclude=self.exclude, seed=self.seed,
            snip_batches=self.snip_batches, snip_bn=self.snip_bn,
            iterative=self.iterative)

    def record(self, source: str) -> dict:
        """``checkpoint['supertickets']['oneshot']`` of the ticket pruned from
        the checkpoint ``source`` (the SNIP settings only for SNIP)."""
        record = dict(scorer=self.scorer, scope=self.scope,
                      ratio=self.ratio, seed=self.seed, source=source,
                      iterative=self.iterative)
        if self.scorer == 'snip':
            record.update(snip_batches=self.snip_batches,
                          snip_bn=self.snip_bn)
        return record

    def fixed_masks_hook(self) -> dict:
        """The config of the hook that loads the ticket's masks and keeps
        them fixed while retraining."""
        return dict(type='ProgressivePruningHook', target_sparsity=self.ratio,
                    prune_interval=None, scorer=self.scorer,
                    scope=self.scope, exclude=list(self.exclude),
                    seed=self.seed)
