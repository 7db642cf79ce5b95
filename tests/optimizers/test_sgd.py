import numpy as np
import pytest

from macrobatch.optimizers.sgd import SGD


def test_sgd_matches_torch_with_default_learn_rate(torchParity):
    torchParity(SGD())


def test_sgd_matches_torch(torchParity):
    torchParity(SGD(learnRate=0.1))


def test_sgd_default_learn_rate_is_torchs():
    torch = pytest.importorskip("torch")
    assert SGD().learnRate == torch.optim.SGD([torch.zeros(1, requires_grad=True)]).defaults["lr"]


def test_sgd_follows_its_formula_step_by_step(run):
    lr = 0.1
    init, grads, final = run(SGD(lr), steps=3)
    for name, p in init.items():
        p = p.astype(np.float64)
        for step in grads:
            p = p - lr * step[name]
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_sgd_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: SGD(0.1))


@pytest.mark.parametrize("learnRate", [-1e-3, float("nan"), float("inf")])
def test_sgd_rejects_bad_learn_rate(learnRate):
    with pytest.raises(ValueError, match="learnRate must be >= 0"):
        SGD(learnRate)
