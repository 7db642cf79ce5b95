import numpy as np
import pytest

from macrobatch.optimizers.adagrad import AdaGrad


def test_adagrad_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(AdaGrad())


def test_adagrad_matches_torch(torchParity):
    torchParity(AdaGrad(learnRate=0.1, epsilon=1e-3), steps=8)


def test_adagrad_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.Adagrad([torch.zeros(1, requires_grad=True)]).defaults
    opt = AdaGrad()
    assert (opt.learnRate, opt.epsilon) == (ref["lr"], ref["eps"])
    assert ref["lr_decay"] == 0 and ref["initial_accumulator_value"] == 0  # what AdaGrad implements


def test_adagrad_follows_its_formula_step_by_step(run):
    lr, eps = 0.1, 1e-3
    init, grads, final = run(AdaGrad(lr, eps), steps=4)
    for name, p in init.items():
        p, h = p.astype(np.float64), 0.0
        for step in grads:
            g = step[name].astype(np.float64)
            h = h + g * g
            p = p - lr * g / (np.sqrt(h) + eps)
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_adagrad_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: AdaGrad(0.1, 1e-3))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -0.01}, "learnRate"), ({"epsilon": 0.0}, "epsilon"),
                                          ({"epsilon": float("nan")}, "epsilon")])
def test_adagrad_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"AdaGrad: {name} must be"):
        AdaGrad(**kwargs)
