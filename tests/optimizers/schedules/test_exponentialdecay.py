import pytest

from macrobatch.optimizers.schedules.exponentialdecay import ExponentialDecay


def test_exponential_decay_per_epoch_matches_torch_exponential_lr(optimizer, torchParity):
    torchParity(ExponentialDecay(optimizer, 0.9), lambda lrs, opt: lrs.ExponentialLR(opt, 0.9))


def test_exponential_decay_per_batch_matches_torch_exponential_lr(optimizer, torchParity):
    torchParity(ExponentialDecay(optimizer, 0.97, per="batch"), lambda lrs, opt: lrs.ExponentialLR(opt, 0.97))


def test_exponential_decay_follows_its_formula(optimizer):
    schedule = ExponentialDecay(optimizer, 0.5)
    assert [schedule.rateAt(t) for t in range(4)] == [0.1, 0.05, 0.025, 0.0125]


@pytest.mark.parametrize("gamma", [0.0, -0.9, float("nan")])
def test_exponential_decay_rejects_non_positive_gamma(optimizer, gamma):
    with pytest.raises(ValueError, match="ExponentialDecay: gamma must be > 0"):
        ExponentialDecay(optimizer, gamma)


def test_exponential_decay_rejects_an_unknown_unit(optimizer):
    with pytest.raises(ValueError, match="ExponentialDecay: per must be 'batch' or 'epoch'"):
        ExponentialDecay(optimizer, 0.9, per="step")
