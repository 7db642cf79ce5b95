import math

import pytest

from macrobatch.optimizers.schedules.cosinedecay import CosineDecay


def test_cosine_decay_matches_torch_cosine_annealing_lr(optimizer, torchParity):
    rates = torchParity(CosineDecay(optimizer, 30), lambda lrs, opt: lrs.CosineAnnealingLR(opt, 30), steps=31)
    assert rates[0] == 0.1 and rates[15] == pytest.approx(0.05) and rates[30] == 0.0


def test_cosine_decay_to_a_minimum_rate_matches_torch(optimizer, torchParity):
    torchParity(CosineDecay(optimizer, 25, minRate=0.01),
                lambda lrs, opt: lrs.CosineAnnealingLR(opt, 25, eta_min=0.01), steps=26)


def test_cosine_decay_per_epoch_matches_torch(optimizer, torchParity):
    torchParity(CosineDecay(optimizer, 12, minRate=1e-3, per="epoch"),
                lambda lrs, opt: lrs.CosineAnnealingLR(opt, 12, eta_min=1e-3), steps=13)


def test_cosine_decay_stays_at_the_minimum_rate_after_total_steps(optimizer, drive):
    rates = drive(CosineDecay(optimizer, 10, minRate=0.002), 40)
    assert rates[10:] == [0.002] * 30
    assert all(a > b for a, b in zip(rates[:11], rates[1:11]))


def test_cosine_decay_follows_its_formula(optimizer):
    schedule = CosineDecay(optimizer, 8, minRate=0.02)
    for t in range(9):
        assert schedule.rateAt(t) == pytest.approx(0.02 + 0.08 * (1 + math.cos(math.pi * t / 8)) / 2, rel=1e-15)


@pytest.mark.parametrize("totalSteps", [0, -5, 1.5, None])
def test_cosine_decay_rejects_bad_total_steps(optimizer, totalSteps):
    with pytest.raises(ValueError, match="CosineDecay: totalSteps must be an integer >= 1"):
        CosineDecay(optimizer, totalSteps)


def test_cosine_decay_rejects_a_negative_minimum_rate(optimizer):
    with pytest.raises(ValueError, match="CosineDecay: minRate must be >= 0"):
        CosineDecay(optimizer, 10, minRate=-1e-3)


def test_cosine_decay_rejects_an_unknown_unit(optimizer):
    with pytest.raises(ValueError, match="CosineDecay: per must be 'batch' or 'epoch'"):
        CosineDecay(optimizer, 10, per="Batch")
