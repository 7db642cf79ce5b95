"""Variable's lazy zeroing: writes replace a stale gradient, reads see zeros, adds accumulate."""
import numpy as np

from macrobatch.engine import Variable, toDevice, toHost
from macrobatch.modules import Linear, Sequential
from macrobatch.optimizers import SGD


def test_zero_grad_is_lazy_but_reads_as_zero():
    var = Variable(toDevice(np.ones((2, 3), np.float32)))
    var.grad += 5
    var.zeroGrad()
    assert var.gradStale and toHost(var._grad).max() == 5  # nothing written yet
    np.testing.assert_array_equal(toHost(var.grad), np.zeros((2, 3)))
    assert not var.gradStale


def test_first_accumulation_after_zeroing_overwrites_then_later_ones_add():
    a = toDevice(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = toDevice(np.ones((3, 2), np.float32))
    var = Variable(toDevice(np.zeros((2, 2), np.float32)))
    var.grad += 100
    var.zeroGrad()
    var.accumulateMatmul(a, b)
    np.testing.assert_array_equal(toHost(var.grad), toHost(a @ b))
    var.accumulateMatmul(a, b)
    np.testing.assert_array_equal(toHost(var.grad), 2 * toHost(a @ b))


def test_accumulate_sum_and_plain_accumulate_follow_the_same_rule():
    var = Variable(toDevice(np.zeros(3, np.float32)))
    var.grad += 7
    var.zeroGrad()
    x = toDevice(np.ones((4, 3), np.float32))
    var.accumulateSum(x, axis=0)
    var.accumulate(x[0])
    np.testing.assert_array_equal(toHost(var.grad), [5, 5, 5])


def test_matmul_into_a_conv_shaped_gradient():
    var = Variable(toDevice(np.zeros((2, 1, 2, 2), np.float32)))
    var.zeroGrad()
    var.accumulateMatmul(toDevice(np.ones((2, 5), np.float32)), toDevice(np.ones((5, 4), np.float32)))
    np.testing.assert_array_equal(toHost(var.grad), np.full((2, 1, 2, 2), 5))


def test_a_parameter_without_gradient_this_step_is_not_moved_by_stale_values():
    net = Sequential(Linear(3, 2), Linear(3, 2))
    opt = SGD(learnRate=1.0).setupOn(net)
    unused = net[1].vars["W"]
    unused.grad += 1.0  # an old gradient
    before = toHost(unused.data).copy()
    opt.zeroGradParams()
    net[0](toDevice(np.ones((4, 3), np.float32)))
    net[0].backward(toDevice(np.ones((4, 2), np.float32)))
    opt.update()
    np.testing.assert_array_equal(toHost(unused.data), before)
    assert toHost(net[0].vars["W"].data).max() < 0  # the used layer did move (by -4 per weight)


def test_a_float16_gradient_sum_over_a_long_axis_is_taken_in_float32():
    """4096 ones add up to 4096 in float32; in float16 the sum sticks at 2048 (2048 + 1 rounds to 2048)."""
    var = Variable(toDevice(np.zeros(3, np.float16)))
    rows = toDevice(np.ones((4096, 3), np.float16))
    var.zeroGrad()
    var.accumulateSum(rows, axis=0)
    var.accumulateSum(rows[:100], axis=0)
    np.testing.assert_array_equal(toHost(var.grad), np.float16(4196))
    assert var.grad.dtype == np.float16
