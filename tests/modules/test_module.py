"""Module files: save/load round trips, architecture rebuilt from the file, mismatches refused whole."""
import h5py
import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import ModelFileError
from macrobatch.modules import Concat, Linear, Sequential, loadModel


def net():
    return Sequential(Linear(4, 5, name="hidden"), Linear(5, 3, useBias=False))


def test_save_load_round_trip_restores_every_parameter(tmp_path):
    src, dst = net(), net()
    src.save(tmp_path / "m.h5")
    dst.load(tmp_path / "m.h5")
    for key, var in src.getVariables().items():
        np.testing.assert_array_equal(toHost(dst.getVariables()[key].data), toHost(var.data))


def test_load_model_rebuilds_the_architecture_without_user_code(tmp_path):
    src = net()
    src.save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert [type(m).__name__ for m in rebuilt] == ["Linear", "Linear"] and rebuilt[0].name == "hidden"
    x = toDevice(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    np.testing.assert_array_equal(toHost(rebuilt(x)), toHost(src(x)))


def test_file_for_another_architecture_is_refused_without_partial_load(tmp_path):
    Sequential(Linear(4, 5, name="hidden"), Linear(5, 2, useBias=False)).save(tmp_path / "other.h5")
    dst = net()
    before = {k: toHost(v.data).copy() for k, v in dst.getVariables().items()}
    with pytest.raises(ModelFileError, match=r"1.W has shape \(5, 2\), the model expects \(5, 3\)"):
        dst.load(tmp_path / "other.h5")
    for key, var in dst.getVariables().items():
        np.testing.assert_array_equal(toHost(var.data), before[key])


def test_file_with_missing_or_extra_parameters_is_refused(tmp_path):
    Sequential(Linear(4, 5, name="hidden"), Linear(5, 3)).save(tmp_path / "bias.h5")
    with pytest.raises(ModelFileError, match=r"unexpected \['params/1.b'\]"):
        net().load(tmp_path / "bias.h5")


def test_file_without_blueprint_is_not_a_model(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ModelFileError, match="not a macrobatch model file"):
        loadModel(tmp_path / "x.h5")


def test_param_count_and_modes_walk_the_tree():
    seq = net()
    assert seq.paramCount() == 4 * 5 + 5 + 5 * 3
    seq.evalMode()
    assert not any(m.train for _, m in seq.namedModules())
    seq.trainMode()
    assert all(m.train for _, m in seq.namedModules())


def test_shared_variable_is_listed_once():
    a = Linear(3, 3)
    b = Linear(3, 3)
    b.vars["W"] = a.vars["W"]
    assert Sequential(a, b).paramCount() == 9 + 3 + 3


@pytest.mark.cuda
def test_a_host_array_given_to_a_module_on_the_gpu_is_refused_naming_the_module():
    net = Sequential(Linear(3, 2, name="first"), Concat(axis=1))
    host = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match=r"^Linear 'first': expected a device array \(cupy.ndarray\), got numpy.ndarray; "
                                        r"move host data with macrobatch.engine.toDevice"):
        net[0](host)
    with pytest.raises(TypeError, match=r"^Concat: expected a device array"):
        Concat(axis=1)([toDevice(host), host])
    net[0](toDevice(host))
    with pytest.raises(TypeError, match=r"^Linear 'first' backward: expected a device array"):
        net[0].backward(np.zeros((4, 2), np.float32))
