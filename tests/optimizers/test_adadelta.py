import numpy as np
import pytest

from macrobatch.optimizers.adadelta import AdaDelta


def test_adadelta_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(AdaDelta())


def test_adadelta_matches_torch(torchParity):
    torchParity(AdaDelta(learnRate=0.5, rho=0.8, epsilon=1e-3), steps=8)


def test_adadelta_learn_rate_schedule_matches_torch(torchParity):
    torchParity(AdaDelta(), steps=4, learnRates=[1.0, 0.5, 0.1, 2.0])


def test_adadelta_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.Adadelta([torch.zeros(1, requires_grad=True)]).defaults
    opt = AdaDelta()
    assert (opt.learnRate, opt.rho, opt.epsilon) == (ref["lr"], ref["rho"], ref["eps"])


def adadeltaReference(w, grads, lr, rho, eps):
    """Zeiler's update with torch's learning rate, in float64, for one parameter array."""
    w, ms, md = w.astype(np.float64), 0.0, 0.0
    for g in grads:
        ms = rho * ms + (1 - rho) * g * g
        delta = np.sqrt(md + eps) / np.sqrt(ms + eps) * g
        md = rho * md + (1 - rho) * delta * delta
        w = w - lr * delta
    return w


def test_adadelta_follows_its_formula_step_by_step(run):
    hyper = (0.5, 0.8, 1e-3)
    init, grads, final = run(AdaDelta(*hyper), steps=4)
    for name in init:
        expected = adadeltaReference(init[name], [step[name].astype(np.float64) for step in grads], *hyper)
        np.testing.assert_allclose(final[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_adadelta_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: AdaDelta(0.5, 0.8, 1e-3))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -1.0}, "learnRate"), ({"rho": 1.0}, "rho"),
                                          ({"rho": -0.1}, "rho"), ({"epsilon": 0.0}, "epsilon")])
def test_adadelta_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"AdaDelta: {name} must be"):
        AdaDelta(**kwargs)
