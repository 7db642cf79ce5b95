import numpy as np
import pytest

from macrobatch.optimizers.rmspropgraves import RMSPropGraves


def test_rmspropgraves_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(RMSPropGraves())


@pytest.mark.parametrize("momRate", [0.0, 0.9])
def test_rmspropgraves_matches_torch(torchParity, momRate):
    torchParity(RMSPropGraves(learnRate=0.02, decay=0.9, epsilon=1e-3, momRate=momRate), steps=8)


def test_rmspropgraves_learn_rate_schedule_matches_torch(torchParity):
    torchParity(RMSPropGraves(momRate=0.5), steps=4, learnRates=[0.05, 0.05, 0.005, 0.02])


def test_rmspropgraves_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.RMSprop([torch.zeros(1, requires_grad=True)], centered=True).defaults
    opt = RMSPropGraves()
    assert (opt.learnRate, opt.decay, opt.epsilon, opt.momRate) == (ref["lr"], ref["alpha"], ref["eps"],
                                                                    ref["momentum"])


def test_rmspropgraves_follows_its_formula_step_by_step(run):
    lr, decay, eps, mom = 0.02, 0.9, 1e-3, 0.5
    init, grads, final = run(RMSPropGraves(lr, decay, eps, mom), steps=4)
    for name, p in init.items():
        p, ms, mg, v = p.astype(np.float64), 0.0, 0.0, 0.0
        for step in grads:
            g = step[name].astype(np.float64)
            ms = decay * ms + (1 - decay) * g * g
            mg = decay * mg + (1 - decay) * g
            v = mom * v + g / (np.sqrt(ms - mg * mg) + eps)
            p = p - lr * v
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_rmspropgraves_keeps_a_velocity_only_with_momentum():
    from macrobatch.modules.linear import Linear
    assert len(RMSPropGraves().setupOn(Linear(2, 2)).slots[0][2]) == 2
    assert len(RMSPropGraves(momRate=0.9).setupOn(Linear(2, 2)).slots[0][2]) == 3


@pytest.mark.parametrize("momRate", [0.0, 0.9])
def test_rmspropgraves_global_and_per_variable_state_give_identical_weights(modesAgree, momRate):
    modesAgree(lambda: RMSPropGraves(0.02, 0.9, 1e-3, momRate))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -0.01}, "learnRate"), ({"decay": 1.0}, "decay"),
                                          ({"epsilon": 0.0}, "epsilon"), ({"momRate": 1.0}, "momRate"),
                                          ({"momRate": -0.5}, "momRate")])
def test_rmspropgraves_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"RMSPropGraves: {name} must be"):
        RMSPropGraves(**kwargs)
