"""CurvePlot: a PNG of the training curves (loss and each metric, training and validation, per epoch)."""
import os

from ...engine.serialize import checkWritable
from .callback import Callback


class CurvePlot(Callback):
    """Redrawn after every epoch, written atomically. Needs matplotlib (``pip install macrobatch[plot]``)."""

    def __init__(self, path):
        try:
            import matplotlib
        except ImportError as e:
            raise ImportError("CurvePlot needs matplotlib: pip install macrobatch[plot]") from e
        matplotlib.use("Agg")
        self.path = path

    def onTrainBegin(self, fit):
        folder = os.path.dirname(os.path.abspath(self.path))
        checkWritable(folder, "curve folder")
        os.makedirs(folder, exist_ok=True)

    def onEpochEnd(self, fit, logs):
        from matplotlib import pyplot
        from matplotlib.ticker import MaxNLocator
        names = [key for key in fit.history if key not in ("epoch", "time", "learnRate") and not key.startswith("val_")]
        figure, axes = pyplot.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
        for ax, name in zip(axes[0], names):
            for key, label in ((name, "train"), (f"val_{name}", "validation")):
                if key in fit.history:
                    ax.plot(fit.history["epoch"], fit.history[key], marker="o", label=label)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend()
        figure.tight_layout()
        tmp = f"{self.path}.tmp.png"
        figure.savefig(tmp, dpi=100)
        pyplot.close(figure)
        os.replace(tmp, self.path)
