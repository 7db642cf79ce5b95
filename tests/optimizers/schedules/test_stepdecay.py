import pytest

from macrobatch.optimizers.schedules.stepdecay import StepDecay


def test_step_decay_per_epoch_matches_torch_step_lr(optimizer, torchParity):
    rates = torchParity(StepDecay(optimizer, 7, gamma=0.5), lambda lrs, opt: lrs.StepLR(opt, 7, gamma=0.5))
    assert rates[6] == 0.1 and rates[7] == 0.05


def test_step_decay_per_batch_matches_torch_step_lr(optimizer, torchParity):
    torchParity(StepDecay(optimizer, 3, per="batch"), lambda lrs, opt: lrs.StepLR(opt, 3))


def test_step_decay_with_step_size_one_matches_torch(optimizer, torchParity):
    torchParity(StepDecay(optimizer, 1, gamma=0.9), lambda lrs, opt: lrs.StepLR(opt, 1, gamma=0.9))


def test_step_decay_follows_its_formula(optimizer):
    schedule = StepDecay(optimizer, 4, gamma=0.3)
    assert [schedule.rateAt(t) for t in (0, 3, 4, 7, 8, 12)] == [0.1, 0.1, 0.1 * 0.3, 0.1 * 0.3, 0.1 * 0.3 ** 2,
                                                                 0.1 * 0.3 ** 3]


@pytest.mark.parametrize("stepSize", [-1, 0, 2.5, True, "3"])
def test_step_decay_rejects_bad_step_size(optimizer, stepSize):
    with pytest.raises(ValueError, match="StepDecay: stepSize must be an integer >= 1"):
        StepDecay(optimizer, stepSize)


@pytest.mark.parametrize("gamma", [0.0, -0.5, float("nan")])
def test_step_decay_rejects_non_positive_gamma(optimizer, gamma):
    with pytest.raises(ValueError, match="StepDecay: gamma must be > 0"):
        StepDecay(optimizer, 2, gamma=gamma)


def test_step_decay_rejects_an_unknown_unit(optimizer):
    with pytest.raises(ValueError, match="StepDecay: per must be 'batch' or 'epoch', got 'iteration'"):
        StepDecay(optimizer, 2, per="iteration")
