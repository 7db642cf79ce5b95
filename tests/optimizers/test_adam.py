import numpy as np
import pytest

from macrobatch.optimizers.adam import Adam


def test_adam_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(Adam())


def test_adam_matches_torch(torchParity):
    torchParity(Adam(learnRate=0.05, beta1=0.8, beta2=0.99, epsilon=1e-3), steps=8)


def test_adam_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults
    opt = Adam()
    assert (opt.learnRate, (opt.beta1, opt.beta2), opt.epsilon) == (ref["lr"], ref["betas"], ref["eps"])


def test_adam_follows_its_formula_step_by_step(run):
    lr, b1, b2, eps = 0.05, 0.8, 0.99, 1e-3
    init, grads, final = run(Adam(lr, b1, b2, eps), steps=4)
    for name, p in init.items():
        p, m, v = p.astype(np.float64), 0.0, 0.0
        for t, step in enumerate(grads, 1):
            g = step[name].astype(np.float64)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_adam_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: Adam(0.05, 0.8, 0.99, 1e-3))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -1e-3}, "learnRate"), ({"beta1": 1.0}, "beta1"),
                                          ({"beta1": -0.1}, "beta1"), ({"beta2": 1.0}, "beta2"),
                                          ({"beta2": 2.0}, "beta2"), ({"epsilon": 0.0}, "epsilon"),
                                          ({"epsilon": -1e-8}, "epsilon")])
def test_adam_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"Adam: {name} must be"):
        Adam(**kwargs)
