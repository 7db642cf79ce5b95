"""Sequential: a chain of modules, each feeding the next."""
from .module import Module, activationsReleased, buildFromBlueprint


class Sequential(Module):
    """Runs children in order; backward runs them in reverse. Children added without a name are
    named by their position, so parameters are saved as '0.W', '1.b', ..."""

    def __init__(self, *modules, name=None):
        super().__init__(name)
        self.modules = []
        for mod in modules:
            self.append(mod)

    def append(self, mod):
        if not isinstance(mod, Module):
            raise TypeError(f"{self.describe()}: can only append Modules, got {type(mod).__name__}")
        if mod.name is None:
            mod.name = str(len(self.modules))
        if any(m.name == mod.name for m in self.modules):
            raise ValueError(f"{self.describe()}: a child named {mod.name!r} already exists")
        self.modules.append(mod)
        return self

    def extend(self, modules):
        for mod in modules:
            self.append(mod)
        return self

    def __getitem__(self, index):
        return self.modules[index]

    def __len__(self):
        return len(self.modules)

    def children(self):
        return {mod.name: mod for mod in self.modules}

    def checkDataType(self, dtype):
        pass  # every child checks its own input

    def updateData(self, data):
        """Each child on the last one's output; under withoutActivations a child and the next one run as one
        where the child offers it (Module.fusedWith: an eval-mode BatchNorm folded into the convolution before it)."""
        i, released = 0, activationsReleased()
        while i < len(self.modules):
            mod, after = self.modules[i], self.modules[i + 1] if i + 1 < len(self.modules) else None
            fused = mod.fusedWith(after) if released and after is not None else None
            data = mod(data) if fused is None else fused(data)
            i += 1 if fused is None else 2
        return data

    def backward(self, grad, updGrad=True, updParamGrads=True):
        for i in range(len(self.modules) - 1, -1, -1):
            grad = self.modules[i].backward(grad, updGrad=updGrad or i > 0, updParamGrads=updParamGrads)
        return grad

    def getBlueprint(self):
        blueprint = super().getBlueprint()
        blueprint["args"] = {"name": self.name}
        blueprint["children"] = [mod.getBlueprint() for mod in self.modules]
        return blueprint

    @classmethod
    def fromBlueprint(cls, blueprint):
        return cls(*(buildFromBlueprint(child) for child in blueprint["children"]), **blueprint["args"])
