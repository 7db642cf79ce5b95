import numpy as np
import pytest

from macrobatch.engine.backend import toHost
from macrobatch.modules.linear import Linear
from macrobatch.optimizers.adamw import AdamW


def test_adamw_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(AdamW())


def test_adamw_matches_torch(torchParity):
    torchParity(AdamW(learnRate=0.05, beta1=0.8, beta2=0.99, epsilon=1e-3, weightDecay=0.5), steps=8)


def test_adamw_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults
    opt = AdamW()
    assert ((opt.learnRate, (opt.beta1, opt.beta2), opt.epsilon, opt.weightDecay)
            == (ref["lr"], ref["betas"], ref["eps"], ref["weight_decay"]))


def test_adamw_follows_its_formula_step_by_step(run):
    lr, b1, b2, eps, wd = 0.05, 0.8, 0.99, 1e-3, 0.5
    init, grads, final = run(AdamW(lr, b1, b2, eps, wd), steps=4)
    for name, p in init.items():
        p, m, v = p.astype(np.float64), 0.0, 0.0
        for t, step in enumerate(grads, 1):
            g = step[name].astype(np.float64)
            p = p - lr * wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_adamw_amsgrad_matches_torch(torchParity):
    torchParity(AdamW(learnRate=0.05, beta1=0.8, beta2=0.9, epsilon=1e-3, weightDecay=0.5, amsgrad=True), steps=8)


def test_adamw_amsgrad_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: AdamW(0.05, 0.8, 0.5, 1e-3, 0.5, amsgrad=True))


def test_adamw_decays_weights_that_get_no_gradient():
    mod = Linear(3, 2)
    before = toHost(mod.vars["W"].data).copy()
    opt = AdamW(learnRate=0.1, weightDecay=0.5).setupOn(mod)
    opt.update()
    np.testing.assert_allclose(toHost(mod.vars["W"].data), before * (1 - 0.1 * 0.5), rtol=1e-6)


def test_adamw_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: AdamW(0.05, 0.8, 0.99, 1e-3, 0.5))


@pytest.mark.parametrize("kwargs, name", [({"weightDecay": -0.01}, "weightDecay"), ({"beta1": 1.0}, "beta1"),
                                          ({"beta2": -0.5}, "beta2"), ({"learnRate": -1.0}, "learnRate")])
def test_adamw_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"AdamW: {name} must be"):
        AdamW(**kwargs)
