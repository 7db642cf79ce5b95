"""ONNX converters of the containers: Sequential, and Graph (Parallel too), whose nodes become the ONNX graph's
in their order; a value is a tensor name, or a list of them where a module takes or gives a list."""


def childPath(path, child):
    return f"{path}.{child.name}" if path else child.name


def sequential(g, module, x, path):
    for child in module.modules:
        x = g.convert(child, x, childPath(path, child))
    return x


def graph(g, module, x, path):
    """Each node on its parents' values, in the Graph's own order; node[i] picks the i-th of a list value."""
    values = dict(zip(module.inputs, x if module.listInput else [x]))

    def fetch(ref):
        node, index = ref
        return values[node] if index is None else values[node][index]

    for node in module.steps:
        args = [fetch(ref) for ref in node.parents]
        values[node] = g.convert(node.module, args[0] if len(args) == 1 else args, childPath(path, node.module))
    outputs = [fetch(ref) for ref in module.outputs]
    return outputs if module.listOutput else outputs[0]
