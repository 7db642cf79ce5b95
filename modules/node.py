"""Node: one step of a Graph, a module applied to the outputs of its parent nodes."""
import numbers

from .module import Module


class Node:
    """``Node(module, parents)`` applies module to the outputs of parents; ``Node()`` (no module, no
    parents) is a placeholder for one of a Graph's inputs.

    parents: a Node, or a list of them. A module with one parent gets that parent's output as it is
    (an array, or the list a Split returns); with several, the list of their outputs (Concat, Add).
    ``node[i]`` stands for the i-th output of a node whose module returns a list, wherever a parent
    may be given: ``Node(Linear(4, 2), split[1])``.
    """

    def __init__(self, module=None, parents=()):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"a Node's module must be a Module, got {type(module).__name__}")
        self.module = module
        self.parents = [self.asRef(p) for p in ([parents] if self.isRef(parents) else parents)]
        if module is None and self.parents:
            raise ValueError("an input Node (no module) cannot have parents")

    def __getitem__(self, index):
        if not isinstance(index, numbers.Integral) or isinstance(index, bool):
            raise TypeError(f"a Node's output is selected by an int index, got {index!r}")
        return self, int(index)

    @staticmethod
    def isRef(obj):
        """Whether obj stands for one parent: a Node, or a (Node, index) pair from node[i]."""
        return isinstance(obj, Node) or (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], Node)
                                         and isinstance(obj[1], numbers.Integral))

    @classmethod
    def asRef(cls, obj):
        """obj as a (Node, index) pair, index None for a node's whole output."""
        if not cls.isRef(obj):
            raise TypeError(f"a parent must be a Node or node[i], got {type(obj).__name__}")
        return (obj, None) if isinstance(obj, Node) else obj

    def describe(self):
        return "input Node" if self.module is None else f"Node of {self.module.describe()}"

    def __repr__(self):
        return self.describe()
