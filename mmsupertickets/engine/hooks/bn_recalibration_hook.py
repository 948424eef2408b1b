"""BN statistics re-estimated on training data before every evaluation."""
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsupertickets.registry import HOOKS

from ..runner_surgery import unwrap
from .oneshot_pruning_hook import build_train_loader

__all__ = ['BNRecalibrationHook']


@HOOKS.register_module()
class BNRecalibrationHook(Hook):
    """Re-estimates BatchNorm running statistics right before evaluating.

    Pruning, shrinking or swapping in averaged weights changes every
    activation statistic at once, so an evaluation with the running
    averages of an earlier model measures that mismatch, not the weights.
    This hook makes every evaluation of every arm see statistics of the
    model it evaluates, as the reference recalibrates before each one.

    Lifecycle:

    - ``before_val_epoch`` / ``before_test_epoch``: runs after
      ``EMAHook`` has swapped the averaged weights in (priority ``LOW``
      against its ``NORMAL``) and after a ``OneShotPruningHook`` has pruned
      (``before_val``). The running mean and variance of every BN layer in
      training mode are replaced by their averages over ``num_samples``
      samples of a fresh loader of the config's ``train_dataloader``
      (seeded like the runner's), with the current masked weights, under
      ``no_grad``; the model's train/eval mode is put back. Layers kept in
      eval mode (``norm_eval``, frozen stages) are left alone.

    Args:
        num_samples (int): Training samples averaged over (rounded down to
            whole batches, at most one pass). Defaults to 200.

    Example:
        >>> custom_hooks = [dict(type='BNRecalibrationHook', num_samples=200)]
    """

    priority = 'LOW'  # after EMAHook (NORMAL) swapped in the EMA weights

    def __init__(self, num_samples: int = 200):
        if isinstance(num_samples, bool) or not isinstance(
                num_samples, int) or num_samples < 1:
            raise ValueError(f'num_samples={num_samples!r} must be a '
                             'positive integer')
        self.num_samples = num_samples

    def recalibrate(self, runner) -> None:
        """Re-estimate the BN statistics of ``runner.model`` now."""
        # mmpretrain's PreciseBN averaging, called on demand.
        from mmpretrain.engine.hooks.precise_bn_hook import update_bn_stats
        model = unwrap(runner.model)
        was_training = model.training
        model.train()
        loader = build_train_loader(runner)
        try:
            # At least one batch (fewer samples would average over none).
            update_bn_stats(model, loader,
                            max(self.num_samples, loader.batch_size or 1),
                            logger='silent')
        finally:
            model.train(was_training)
        print_log(f'[SuperTickets] BN statistics re-estimated on '
                  f'{self.num_samples} training samples before evaluating',
                  logger='current')

    def before_val_epoch(self, runner) -> None:
        self.recalibrate(runner)

    def before_test_epoch(self, runner) -> None:
        self.recalibrate(runner)
