"""The event clock: where interval-driven events fall."""
import pytest

from mmsupertickets.engine.event_clock import (
    EventClock,
    check_epoch_interval,
    check_epoch_not_empty,
    check_interval,
    iters_per_epoch,
)


def events(clock, interval, max_iters):
    return [(it, clock.event_index(it, interval)) for it in range(max_iters)
            if clock.event_index(it, interval)]


def test_epoch_events_fall_on_epoch_ends_with_odd_lengths():
    # 10 samples, batch 4: 3 iterations an epoch (the last one short).
    clock = EventClock(True, iters_per_epoch(10, 4), max_iters=12)
    assert events(clock, 2, 12) == [(5, 1), (11, 2)]
    assert clock.planned_events(2) == 2


def test_fractional_epoch_intervals_round_to_iterations():
    clock = EventClock(True, iters_per_epoch(10, 4), max_iters=12)
    # 0.5 epochs of 3 iterations rounds to 2 iterations.
    assert [k for _, k in events(clock, 0.5, 12)] == [1, 2, 3, 4, 5, 6]


def test_step_events_count_optimizer_steps_under_accumulation():
    clock = EventClock(False, 5, accumulation=3, max_iters=10)
    # Steps end at iterations 2, 5, 8 and (last, partial) 9.
    assert [it for it in range(10) if clock.stepped(it)] == [2, 5, 8, 9]
    # The partial step of the last iteration counts as step 3 again; the
    # hooks treat the last iteration as their final event anyway.
    assert events(clock, 1, 10) == [(2, 1), (5, 2), (8, 3), (9, 3)]
    assert clock.planned_events(1) == 3


def test_epoch_events_do_not_wait_for_an_accumulated_step():
    clock = EventClock(True, 3, accumulation=2, max_iters=6)
    assert events(clock, 1, 6) == [(2, 1), (5, 2)]


def test_elapsed_time_of_the_rho_ramp():
    by_epoch = EventClock(True, 4)
    by_step = EventClock(False, 4, accumulation=2)
    assert by_epoch.elapsed_before(6) == 1.5
    assert by_step.elapsed_before(5) == 2


def test_iters_per_epoch_per_rank_and_drop_last():
    assert iters_per_epoch(10, 2, world_size=2) == 3
    assert iters_per_epoch(3, 4, drop_last=True) == 1


@pytest.mark.parametrize('bad', [0, -1, 'ten'])
def test_bad_intervals_are_named(bad):
    with pytest.raises(ValueError, match='prune_interval'):
        check_interval(bad, 'prune_interval')


def test_step_intervals_are_whole_steps():
    assert check_interval(4.0, 'prune_interval', by_epoch=False) == 4
    assert check_interval(0.5, 'prune_interval', by_epoch=True) == 0.5
    for bad in (0.5, 2.5):
        with pytest.raises(ValueError, match=rf'prune_interval={bad} counts '
                           'optimizer steps'):
            check_interval(bad, 'prune_interval', by_epoch=False)
    with pytest.raises(ValueError, match='shrink_interval=True'):
        check_interval(True, 'shrink_interval')
    # Even a clock fed a sub-step interval never divides by zero.
    assert EventClock(False, 5, max_iters=10).planned_events(0.5) == 10


def test_epoch_intervals_shorter_than_an_iteration_are_refused():
    check_epoch_interval(1 / 3, 'prune_interval', 3)  # one iteration
    check_epoch_interval(None, 'prune_interval', 3)
    with pytest.raises(ValueError, match=r'prune_interval=0\.01 epochs is '
                       r'shorter than one iteration: an epoch has 12 '
                       r'iteration\(s\), so the shortest interval is '
                       r'1/12 = 0\.08333 epochs'):
        check_epoch_interval(0.01, 'prune_interval', 12)


def test_an_epoch_without_a_batch_is_refused():
    check_epoch_not_empty(3, 4)  # one short batch
    check_epoch_not_empty(8, 4, world_size=2, drop_last=True)
    with pytest.raises(ValueError, match=r'dataset of 3 sample\(s\), '
                       r'batch_size=4, drop_last=True'):
        check_epoch_not_empty(3, 4, drop_last=True)
    with pytest.raises(ValueError, match=r'over 2 ranks \(4 per rank\)'):
        check_epoch_not_empty(8, 8, world_size=2, drop_last=True)
    with pytest.raises(ValueError, match='dataset of 0'):
        check_epoch_not_empty(0, 4)
