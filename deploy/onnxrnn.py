"""ONNX converter of RNN: one ONNX RNN, LSTM or GRU operator per layer, torch's gate order rearranged into ONNX's."""
import numpy

from ..engine.backend import toHost

# ONNX's gate order as positions in torch's: LSTM iofc from torch's ifgo (g is ONNX's c), GRU zrh from torch's
# rzn; a plain RNN has one gate
gateOrder = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "relu": (0,), "tanh": (0,)}
operators = {"lstm": "LSTM", "gru": "GRU", "relu": "RNN", "tanh": "RNN"}


def onnxGates(ary, mode):
    """A torch-layout (gates * hsize, ...) weight or bias with its gate blocks in ONNX's order."""
    order = gateOrder[mode]
    blocks = ary.reshape((len(order), -1) + ary.shape[1:])
    return blocks[list(order)].reshape(ary.shape)


def layerWeights(module, layer):
    """ONNX's W (dirs, gates*H, insize), R (dirs, gates*H, H) and B (dirs, 2*gates*H) of one layer, as host arrays."""
    W, R, B = [], [], []
    for d in range(module.directions):
        w = {key: toHost(value) for key, value in module.weights(layer, d).items()}
        W.append(onnxGates(w["ih"], module.mode))
        R.append(onnxGates(w["hh"], module.mode))
        B.append(numpy.concatenate([onnxGates(w["bih"], module.mode), onnxGates(w["bhh"], module.mode)]))
    return numpy.stack(W), numpy.stack(R), numpy.stack(B)


def rnn(g, module, x, path):
    """(batch, time, insize) -> time-major -> one operator per layer, each layer's (time, dirs, batch, H)
    output joined to (time, batch, dirs*H) for the next; the result as RNN returns it: every step batch-first,
    or the last state of each direction (the operators' Y_h: forward at the last step, backward at the first),
    concatenated. GRU's linear_before_reset=1 is torch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    bi = module.directions == 2
    attrs = {"hidden_size": module.hsize, "direction": "bidirectional" if bi else "forward"}
    if module.mode == "gru":
        attrs["linear_before_reset"] = 1
    elif module.mode in ("relu", "tanh"):
        attrs["activations"] = [module.mode.capitalize()] * module.directions
    seq = g.op("Transpose", [x], path, perm=[1, 0, 2])
    joined = g.ints(f"{path}.joined", [0, 0, -1])
    for layer in range(module.layers):
        names = [g.tensor(f"{path}.{key}_l{layer}", ary) for key, ary in zip("WRB", layerWeights(module, layer))]
        y, yh = g.op(operators[module.mode], [seq, *names], path, outputs=2, **attrs)
        if layer < module.layers - 1:
            seq = g.op("Reshape", [g.op("Transpose", [y], path, perm=[0, 2, 1, 3]), joined], path)
    if module.getSequences:
        return g.op("Reshape", [g.op("Transpose", [y], path, perm=[2, 0, 1, 3]), joined], path)
    return g.op("Reshape", [g.op("Transpose", [yh], path, perm=[1, 0, 2]), g.ints(f"{path}.last", [0, -1])], path)
