"""Parallel: modules side by side, each on its own input or all on one."""
from .graph import Graph, childBlueprint, childFromBlueprint
from .node import Node


class Parallel(Graph):
    """Applies modules[i] to the i-th array of a list input and returns the list of their outputs.

    shared=True gives every module the same single array instead (its input gradient is the sum of
    theirs): ``Sequential(Parallel(conv1x1, conv3x3, shared=True), Concat(1))`` is an Inception block.
    A Graph with one node per module, so children are named as in Sequential ('0.W', '1.W', ...).
    """

    def __init__(self, *modules, shared=False, name=None):
        if not modules:
            raise ValueError("Parallel needs at least one module")
        inputs = Node() if shared else [Node() for _ in modules]
        parents = [inputs] * len(modules) if shared else inputs
        super().__init__(inputs, [Node(mod, parent) for mod, parent in zip(modules, parents)], name)
        self.shared = shared

    def __getitem__(self, index):
        return self.steps[index].module

    def __len__(self):
        return len(self.steps)

    def getBlueprint(self):
        return {"class": type(self).__name__, "args": {"shared": self.shared, "name": self.name},
                "children": [childBlueprint(node.module) for node in self.steps]}

    @classmethod
    def fromBlueprint(cls, blueprint):
        return cls(*(childFromBlueprint(entry) for entry in blueprint["children"]), **blueprint["args"])
