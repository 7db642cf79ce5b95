"""predict gives class probabilities (softmax of the logits; --logits for raw scores), from the command line
and from Python alike, and names both shapes when the data does not fit the model."""
import h5py
import numpy as np
import torch

from macrobatch.engine import toDevice
from macrobatch.handlers.fit import predict
from macrobatch.models import mlp


def test_predict_writes_probabilities_and_logits_on_request(cli, digitsFile, digits, tmp_path):
    images, labels = digits
    assert cli("train", "--data", digitsFile(), "--model", "mlp", "--epochs", "3", "--curve", "none",
               "--out", "m.h5").returncode == 0
    with h5py.File(tmp_path / "new.h5", "w") as f:
        f["data"] = images[1200:1500]
    probs = cli("predict", "m.h5", "new.h5", "--out", "p.h5")
    logits = cli("predict", "m.h5", "new.h5", "--out", "l.h5", "--logits")
    assert probs.returncode == 0 and logits.returncode == 0, probs.stderr + logits.stderr
    assert "class probabilities (softmax)" in probs.stdout and "raw scores (logits)" in logits.stdout
    with h5py.File(tmp_path / "p.h5") as p, h5py.File(tmp_path / "l.h5") as q:
        p_, q_ = p["outputs"][()], q["outputs"][()]
        assert p["outputs"].attrs["kind"] == "probabilities" and q["outputs"].attrs["kind"] == "logits"
        assert (p_ >= 0).all() and np.allclose(p_.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(p_, torch.softmax(torch.from_numpy(q_), 1).numpy(), rtol=1e-5, atol=1e-6)
        assert (p["labels"][()] == q["labels"][()]).all() and (p["labels"][()] == labels[1200:1500]).mean() > 0.8


def test_python_predict_softmax_matches_torch_on_host_and_device_data(npRng):
    net = mlp(20, 5)
    x = npRng.standard_normal((70, 20)).astype(np.float32)
    logits = predict(net, x, batchsize=16)
    expected = torch.softmax(torch.from_numpy(logits), 1).numpy()
    np.testing.assert_allclose(predict(net, x, batchsize=16, softmax=True), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(predict(net, toDevice(x), softmax=True), expected, rtol=1e-5, atol=1e-6)


def test_predict_on_data_of_another_shape_names_both_shapes(cli, digitsFile, tmp_path, npRng):
    assert cli("train", "--data", digitsFile(), "--epochs", "1", "--curve", "none", "--out", "m.h5").returncode == 0
    with h5py.File(tmp_path / "mnist.h5", "w") as f:
        f["data"] = npRng.random((5, 1, 28, 28), np.float32)
    run = cli("predict", "m.h5", "mnist.h5")
    assert run.returncode == 1 and "the model takes (1, 8, 8), the file holds (1, 28, 28) in 'data'" in run.stderr, \
        run.stderr
