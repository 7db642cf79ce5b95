import numpy as np
import pytest

from macrobatch.optimizers.rmsprop import RMSProp


def test_rmsprop_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(RMSProp())


def test_rmsprop_matches_torch(torchParity):
    torchParity(RMSProp(learnRate=0.02, decay=0.9, epsilon=1e-3), steps=8)


def test_rmsprop_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.RMSprop([torch.zeros(1, requires_grad=True)]).defaults
    opt = RMSProp()
    assert (opt.learnRate, opt.decay, opt.epsilon) == (ref["lr"], ref["alpha"], ref["eps"])


def test_rmsprop_follows_its_formula_step_by_step(run):
    lr, decay, eps = 0.02, 0.9, 1e-3
    init, grads, final = run(RMSProp(lr, decay, eps), steps=4)
    for name, p in init.items():
        p, ms = p.astype(np.float64), 0.0
        for step in grads:
            g = step[name].astype(np.float64)
            ms = decay * ms + (1 - decay) * g * g
            p = p - lr * g / (np.sqrt(ms) + eps)
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_rmsprop_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: RMSProp(0.02, 0.9, 1e-3))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -0.01}, "learnRate"), ({"decay": 1.0}, "decay"),
                                          ({"decay": -0.1}, "decay"), ({"epsilon": 0.0}, "epsilon")])
def test_rmsprop_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"RMSProp: {name} must be"):
        RMSProp(**kwargs)
