"""macrobatch summary: a saved model's layers, parameters, memory and latency."""
from ..deploy.quantize import fileSizes
from ..modules.module import loadModel, savedInputShape
from ..modules.summary import estimate, formatSummary, inputShapeFor, parseShape, summary
from .arguments import nonNegativeInt, positiveInt


def summarize(args):
    model = loadModel(args.model)
    shape = inputShapeFor(model, args.shape or savedInputShape(args.model))
    speed = estimate(model, shape, args.batchsize, runs=args.runs) if args.runs else None
    print(formatSummary(summary(model, shape, args.batchsize), speed, fileSizes(model, shape)))


def addParser(sub):
    m = sub.add_parser("summary", help="a saved model's layers, parameters, memory and model file size at "
                                           "float32/16/int8, and latency")
    m.add_argument("model", help="model file written by training (Module.save)")
    m.add_argument("--shape", type=parseShape, help="per-sample input shape, e.g. 1,8,8 (default: recorded in the "
                                                     "file, or inferred from a first Linear layer)")
    m.add_argument("--batchsize", type=positiveInt, default=1, help="samples per timed prediction")
    m.add_argument("--runs", type=nonNegativeInt, default=500,
                   help="timed predictions after a warm-up, for the latency (0: none)")
    m.set_defaults(run=summarize)
    return m
