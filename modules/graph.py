"""Graph: a directed acyclic graph of modules, with several inputs and outputs (ResNet, Inception, U-Net)."""
from ..engine.errors import ShapeError
from .module import buildFromBlueprint
from .multimodule import MultiModule, shapeOf
from .node import Node


class Graph(MultiModule):
    """Runs the nodes that lead from inputs to outputs, in one topological order computed at construction.

    inputs: an input Node (``Node()``), and the Graph takes one array; or a list of them, and it takes
    a list of arrays, the i-th to inputs[i]. outputs: a Node (or node[i]), and the Graph returns one
    array; or a list of them, and it returns a list. Only nodes an output depends on run; every one of
    them must depend on the inputs alone, and a module may sit in one node only (share weights by
    sharing Variables, whose gradients then add up).

    backward runs the modules in reverse order. A node feeding several others receives the sum of
    their gradients: the first is kept as it comes, the second is added into a new array, the rest
    are added into that one in place, so a node with one consumer costs no copy. Children are named
    as in Sequential (a module without a name by its position in that order), which names the saved
    parameters ('0.W', 'block.1.scale').
    """

    sameDtype = False

    def __init__(self, inputs, outputs, name=None):
        super().__init__(name)
        self.listInput, self.listOutput = not isinstance(inputs, Node), not Node.isRef(outputs)
        self.inputs = list(inputs) if self.listInput else [inputs]
        self.outputs = [Node.asRef(ref) for ref in (outputs if self.listOutput else [outputs])]
        if not all(isinstance(node, Node) and node.module is None for node in self.inputs):
            raise TypeError(f"{self.describe()}: inputs must be input Nodes (Node() without a module)")
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"{self.describe()}: an input Node is given twice")
        self.nodes = self.sortNodes()
        self.steps = [node for node in self.nodes if node.module is not None]
        self.checkStructure()
        # A step needs its input gradient even when the caller does not when one of its parents is a step.
        self.feedsSteps = {node: any(p.module is not None for p, _ in node.parents) for node in self.steps}
        self.outLengths = {}  # node -> length of its list output, or None for an array (set by the forward)

    def sortNodes(self):
        """Every node the outputs depend on, parents before children (a depth-first post-order, so the
        same graph always gives the same order); ValueError on a cycle."""
        order, state = [], {}  # state: 1 while a node's ancestors are being visited, 2 once it is placed
        for root, _ in self.outputs:
            stack = [(root, iter(root.parents))]
            state.setdefault(root, 1)
            while stack:
                node, parents = stack[-1]
                for parent, _ in parents:
                    if state.get(parent) == 1:
                        raise ValueError(f"{self.describe()}: the nodes form a cycle through {parent.describe()}")
                    if parent not in state:
                        state[parent] = 1
                        stack.append((parent, iter(parent.parents)))
                        break
                else:
                    stack.pop()
                    if state[node] == 1:
                        state[node] = 2
                        order.append(node)
        return order

    def checkStructure(self):
        """Every node depends only on the inputs, each input reaches an output, each module is used once;
        then the children are named."""
        inputs = set(self.inputs)
        for node in self.nodes:
            if (node.module is None and node not in inputs) or (node.module is not None and not node.parents):
                raise ValueError(f"{self.describe()}: {node.describe()} is not reachable from the inputs "
                                 f"(an input Node not listed in inputs, or a module without parents)")
        for i, node in enumerate(self.inputs):
            if node not in self.nodes:
                raise ValueError(f"{self.describe()}: input {i} does not lead to any output")
        modules = [node.module for node in self.steps]
        if len({id(mod) for mod in modules}) != len(modules):
            raise ValueError(f"{self.describe()}: a module sits in two nodes; give each node its own module "
                             "and share Variables to share weights")
        for i, mod in enumerate(modules):
            if mod.name is None:
                mod.name = str(i)
        names = [mod.name for mod in modules]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.describe()}: child names must be unique, got {names}")

    def children(self):
        return {node.module.name: node.module for node in self.steps}

    def checkDataType(self, dtype):
        pass  # every module checks its own input

    def checkDataShape(self, shapes):
        """The input must be one array or a list of len(inputs) of them, as the Graph was built; the
        modules check the shapes themselves."""
        want = f"a list of {len(self.inputs)} arrays" if self.listInput else "one array"
        if self.listInput != isinstance(shapes, list) or (self.listInput and len(shapes) != len(self.inputs)):
            raise ShapeError(f"{self.describe()}: expected {want}, got an input of shape {shapes}")

    def updateData(self, data):
        values = dict(zip(self.inputs, data if self.listInput else [data]))
        for node in self.steps:
            args = [self.fetch(values, ref) for ref in node.parents]
            values[node] = node.module(args[0] if len(args) == 1 else args)
        self.outLengths = {node: len(value) if isinstance(value, list) else None for node, value in values.items()}
        outputs = [self.fetch(values, ref) for ref in self.outputs]
        return outputs if self.listOutput else outputs[0]

    def fetch(self, values, ref):
        node, index = ref
        value = values[node]
        if index is None:
            return value
        if not isinstance(value, list) or not -len(value) <= index < len(value):
            raise ShapeError(f"{self.describe()}: {node.describe()}[{index}] selects an output it does not have "
                             f"(its output has shape {shapeOf(value)})")
        return value[index]

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.checkGrad(grad)
        grads, owned = {}, set()
        for ref, g in zip(self.outputs, grad if self.listOutput else [grad]):
            self.addGrad(grads, owned, ref, g)
        for node in reversed(self.steps):
            outGrad = self.takeGrad(grads, node)
            if outGrad is None:  # the node only feeds outputs the caller gave no gradient for
                continue
            inGrad = node.module.backward(outGrad, updGrad=updGrad or self.feedsSteps[node],
                                          updParamGrads=updParamGrads)
            if inGrad is None:
                continue
            for ref, g in zip(node.parents, [inGrad] if len(node.parents) == 1 else inGrad):
                if updGrad or ref[0].module is not None:  # an input's gradient only when the caller wants it
                    self.addGrad(grads, owned, ref, g)
        if not updGrad:
            self.grad = None
            return None
        inGrads = [self.takeGrad(grads, node) for node in self.inputs]
        self.grad = inGrads if self.listInput else inGrads[0]
        return self.grad

    def addGrad(self, grads, owned, ref, grad):
        """Add grad (for the output ref names) to the gradients gathered so far, keyed (node, index):
        a list output's gradient is gathered per element, index None is an array output's."""
        node, index = ref
        if index is None and self.outLengths[node] is not None:
            for i, g in enumerate(grad):
                self.addGrad(grads, owned, (node, i), g)
            return
        if grad is None:
            return
        key = (node, index)
        prev = grads.get(key)
        if prev is None:
            grads[key] = grad
        elif key in owned:
            prev += grad
        else:  # prev may belong to a module or the caller: sum into a new array, which later adds may reuse
            grads[key] = prev + grad
            owned.add(key)

    def takeGrad(self, grads, node):
        """The summed gradient of node's output (a list, None for elements no consumer used), dropped
        from grads."""
        length = self.outLengths[node]
        if length is None:
            return grads.pop((node, None), None)
        return [grads.pop((node, i), None) for i in range(length)]

    # --- files ----------------------------------------------------------------------------

    def getBlueprint(self):
        """The nodes in order, each with its module's blueprint (None for an input), the module's name
        and its parents as [node position, output index or None]; inputs and outputs by position."""
        position = {node: i for i, node in enumerate(self.nodes)}
        inputs = [position[node] for node in self.inputs]
        outputs = [[position[node], index] for node, index in self.outputs]
        return {"class": type(self).__name__, "args": {"name": self.name},
                "nodes": [{**(childBlueprint(node.module) if node.module is not None else {"module": None}),
                           "parents": [[position[p], index] for p, index in node.parents]} for node in self.nodes],
                "inputs": inputs if self.listInput else inputs[0],
                "outputs": outputs if self.listOutput else outputs[0]}

    @classmethod
    def fromBlueprint(cls, blueprint):
        nodes = []
        for entry in blueprint["nodes"]:
            module = childFromBlueprint(entry) if entry["module"] is not None else None
            nodes.append(Node(module, [refAt(nodes, *ref) for ref in entry["parents"]]))
        inputs, outputs = blueprint["inputs"], blueprint["outputs"]
        inputs = [nodes[i] for i in inputs] if isinstance(inputs, list) else nodes[inputs]
        outputs = [refAt(nodes, *r) for r in outputs] if isinstance(outputs[0], list) else refAt(nodes, *outputs)
        return cls(inputs, outputs, **blueprint["args"])


def refAt(nodes, position, index):
    """The parent a blueprint's [position, index] names: nodes[position], or its index-th output."""
    return nodes[position] if index is None else nodes[position][index]


def childBlueprint(module):
    """A child's blueprint with its name: a name set after construction is not among its arguments."""
    return {"module": module.getBlueprint(), "name": module.name}


def childFromBlueprint(entry):
    module = buildFromBlueprint(entry["module"])
    module.name = entry["name"]
    return module
