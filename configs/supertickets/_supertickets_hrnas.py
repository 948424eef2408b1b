# What the four tasks' SuperTickets configs share: the paper's search space
# (DESIGN §2) and the three hooks with the settings common to all tasks.
# Each task config builds its backbone from `supernet` (adding its
# norm_cfg) and its custom_hooks from `supertickets_hooks` (adding ρ, the
# intervals and the profiling input shape).

# The HR-NAS supernet: four branches give 18/36/72/144 channels at strides
# 4/8/16/32 like HRNet-W18.
supernet = dict(
    type='SuperTicketHRNet',
    stem_channels=24,
    stage_channels=((24, ), (18, 36), (18, 36, 72), (18, 36, 72, 144),
                    (18, 36, 72, 144)),
    stage_blocks=((1, ), (2, 2), (2, 2, 3), (2, 2, 3, 4), (2, 2, 3, 4)),
    kernel_sizes=(3, 5, 7),
    expand_ratio=4)

# Intervals in epochs (by_epoch=True): the hooks convert them to
# iterations, also inside an iteration-based loop.
target_sparsity = 0.9
supertickets_hooks = [
    # Network slimming: ρ ramped in over 25 epochs; a shrink removes the
    # channels with |γ| <= 1e-3 if they add up to 1 MMACs or more.
    dict(
        type='SuperNetSearchHook',
        warmup=25,
        threshold=1e-3,
        min_macs=1e6,
        by_epoch=True),
    # Global magnitude pruning, +10 % per event up to the target (0.1, 0.2,
    # ... then the target at every later event).
    dict(
        type='ProgressivePruningHook',
        target_sparsity=target_sparsity,
        schedule='step',
        step=0.1,
        scorer='magnitude',
        scope='global',
        by_epoch=True),
    # Iterative reactivation: layers rebuilt by a shrink start dense again.
    dict(type='IterativeReactivationHook'),
]
