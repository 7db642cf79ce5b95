"""ONNX import: RNN, LSTM and GRU as macrobatch RNN layers, the gates put in torch's order."""
import numpy

from ..engine.errors import ConversionError
from ..modules.concat import Concat
from ..modules.rnn import RNN
from ..modules.split import Split
from .importhelpers import setWeights, used
from .onnxrnn import gateOrder
from .onnxview import OnnxView, fmt


def recurrentProblems(imp, node, attrs, mode, acts, defaults):
    """What an LSTM, GRU or RNN node asks that macrobatch's RNN cannot do, as a list of phrases."""
    op, direction = node.op_type, attrs.get("direction", "forward")
    problems = [f"activations {acts}" if mode is None or (op != "RNN" and acts != defaults) else "",
                "clip" if "clip" in attrs else "", "input_forget=1" if attrs.get("input_forget", 0) else "",
                "linear_before_reset=0 (torch's GRU applies the reset after the linear map)"
                if op == "GRU" and not attrs.get("linear_before_reset", 0) else "",
                f"direction {direction!r}" if direction not in ("forward", "bidirectional") else "",
                "sequence_lens" if len(node.input) > 4 and node.input[4] else "",
                "peepholes (P)" if len(node.input) > 7 and node.input[7] else "",
                "the cell state Y_c used (macrobatch's RNN gives no cell state)"
                if len(node.output) > 2 and used(imp, node.output[2]) else ""]
    for i in (5, 6):
        state = imp.input(node, i)
        if isinstance(state, OnnxView) or (state is not None and any(v.any() for v in state.values)):
            problems.append(f"a non-zero initial state (input {i})")
    return [p for p in problems if p]


def recurrent(imp, node):
    """LSTM, GRU and RNN (forward or bidirectional, zero initial states) as one RNN layer, the gates put
    in torch's order. getSequences when Y is used; Y_h is then cut out of it (lastStates)."""
    attrs, where, op = imp.attrs(node), imp.where(node), node.op_type
    defaults = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[op]
    acts = list(attrs.get("activations", defaults))
    if len(acts) == 2 * len(defaults) and acts[:len(defaults)] == acts[len(defaults):]:  # listed per direction
        acts = acts[:len(defaults)]
    mode = {"LSTM": "lstm", "GRU": "gru"}.get(op) or {("Tanh",): "tanh", ("Relu",): "relu"}.get(tuple(acts))
    problems = recurrentProblems(imp, node, attrs, mode, acts, defaults)
    if problems:
        raise ConversionError(f"{where}: not supported: {'; '.join(problems)}")
    layout = attrs.get("layout", 0)
    source = imp.view(node, 0)
    view, order = source.batchFirst()
    if len(order) != 3 or order[:2] != ([1, 0] if layout == 0 else [0, 1]):
        raise ConversionError(f"{where}: input of shape {fmt(source.onnxShape)}, expected "
                              f"{'(time, N, features)' if layout == 0 else '(N, time, features)'}")
    _, T, insize = view.onnxShape
    W, R = imp.const(node, 1), imp.const(node, 2)
    H, D = attrs["hidden_size"], W.shape[0]
    G = W.shape[1] // H
    B = imp.const(node, 3, numpy.zeros((D, 2 * G * H), numpy.float32))
    sequences = used(imp, node.output[0])
    module = RNN(insize, H, mode=mode, direction="bi" if D == 2 else "uni", getSequences=sequences)
    arrays = {}
    for d in range(D):
        for key, ary in (("weight_ih", W[d]), ("weight_hh", R[d]), ("bias_ih", B[d, :G * H]),
                         ("bias_hh", B[d, G * H:])):
            arrays[RNN.paramName(key, 0, d)] = ary.reshape(G, H, -1)[numpy.argsort(gateOrder[mode])].reshape(ary.shape)
    setWeights(module, arrays)
    ref = view.materialize(where)
    statePerm = (1, 0, 2) if layout == 0 else None  # Y_h: (directions, N, hidden), or (N, directions, hidden)
    if not sequences:
        out = imp.apply(module, ref, (None, D * H))
        imp.setOutput(node, 1, OnnxView(out.ref, out.refShape, (None, D, H), statePerm))
        return
    out = imp.apply(module, ref, (None, T, D * H))  # Y: (time, directions, N, hidden), or (N, time, ...)
    imp.setOutput(node, 0, OnnxView(out.ref, out.refShape, (None, T, D, H), (1, 2, 0, 3) if layout == 0 else None))
    if len(node.output) > 1 and used(imp, node.output[1]):
        imp.setOutput(node, 1, OnnxView(lastStates(imp, out.ref, T, D), (None, 1, D * H), (None, D, H), statePerm))


def lastStates(imp, ref, T, D):
    """The final states Y_h of an RNN from its sequence output ref (N, T, D * H): the last step's forward
    states and the first step's backward ones, as (N, 1, D * H)."""
    steps = imp.node(Split(1, T), ref)
    if D == 1:
        return steps[T - 1]
    forward, backward = imp.node(Split(2, 2), steps[T - 1])[0], imp.node(Split(2, 2), steps[0])[1]
    return imp.node(Concat(2), [forward, backward])
