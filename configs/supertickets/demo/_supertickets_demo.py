# What the four CPU demos share: the narrowed search space and the hooks'
# settings for a run of a few hundred steps. Each demo config builds its
# backbone from `demo_supernet` and its custom_hooks from `demo_hooks`
# (adding ρ, the intervals, the profiling input shape and how many samples
# re-estimate BN).

# The same search space, narrowed: every block kind is there (three kernel
# paths per block, neighbour fusion, four resolutions) at about half the
# paper's widths, with one block per branch, expand ratio 2 and without the
# paper's second four-branch stage.
demo_widths = (8, 16, 32, 64)
demo_supernet = dict(
    stem_channels=16,
    stage_channels=((16, ), demo_widths[:2], demo_widths[:3], demo_widths),
    stage_blocks=((1, ), (1, 1), (1, 1, 1), (1, 1, 1, 1)),
    expand_ratio=2)

demo_hooks = [
    # Adam moves a penalised γ by about the LR per step, so within a few
    # hundred steps it only settles within a few LR-steps of zero: a channel
    # is dead below |γ| = 0.05 instead of 1e-3.
    dict(type='SuperNetSearchHook', threshold=0.05, by_epoch=True,
         # min_macs is tuned for each demo at its own profiling size.
         min_macs_shape=None),
    # From 0.15 in steps of 0.15: the target 0.9 at the 6th event. The stock
    # classifiers are excluded as by default, and the stem: the narrow stem
    # holds under 1 % of the weights, and global magnitude ranking would
    # leave about 15 of its 2.7 K at 90 %, blinding the network.
    dict(
        type='ProgressivePruningHook',
        target_sparsity=0.9,
        schedule='step',
        step=0.15,
        by_epoch=True,
        exclude=(r'(^|\.)conv_seg\.', r'^head\.final_layer\.',
                 r'^head\.fc\.', r'^auxiliary_head\.',
                 r'^backbone\.stem\.')),
    dict(type='IterativeReactivationHook'),
    # BN statistics re-estimated on training samples (weights fixed) after
    # the step's events and before each validation and checkpoint, like the
    # authors' BN calibration: a shrink, a reactivation or a prune changes
    # every activation statistic at once, and the running averages would lag
    # behind for tens of steps.
    dict(type='mmpretrain.PreciseBNHook', priority='BELOW_NORMAL'),
]
