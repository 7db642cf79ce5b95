import numpy as np
import pytest

from macrobatch.optimizers.momentumsgd import MomentumSGD


def test_momentum_sgd_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(MomentumSGD())


def test_momentum_sgd_matches_torch(torchParity):
    torchParity(MomentumSGD(learnRate=0.05, momRate=0.7))


def test_momentum_sgd_defaults():
    opt = MomentumSGD()
    assert (opt.learnRate, opt.momRate) == (1e-3, 0.9)


def test_momentum_sgd_follows_its_formula_step_by_step(run):
    lr, mom = 0.05, 0.7
    init, grads, final = run(MomentumSGD(lr, mom), steps=4)
    for name, p in init.items():
        p, v = p.astype(np.float64), 0.0
        for step in grads:
            v = mom * v + step[name]
            p = p - lr * v
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_momentum_sgd_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: MomentumSGD(0.05, 0.7))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -0.1}, "learnRate"), ({"momRate": -0.1}, "momRate"),
                                          ({"momRate": 1.0}, "momRate")])
def test_momentum_sgd_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"MomentumSGD: {name} must be"):
        MomentumSGD(**kwargs)
