"""macrobatch inspect: what an HDF5 file holds, before training on it."""
from ..datasets.inspect import classHistogram, formatReport, inspectH5
from .arguments import positiveInt


def inspectData(args):
    info = inspectH5(args.data, sampleSize=args.sample, labels=args.labels)
    print(formatReport(info), end="")
    if args.histogram:
        classHistogram(info, args.histogram)
        print(f"wrote {args.histogram}")


def addParser(sub):
    i = sub.add_parser("inspect", help="describe every dataset of an HDF5 file: layout, statistics, NaN/Inf, "
                                       "classes, label order, duplicate rows")
    i.add_argument("data", help="HDF5 file")
    i.add_argument("--sample", type=positiveInt, default=10000,
                   help="rows sampled (contiguous blocks) to count duplicates")
    i.add_argument("--labels", nargs="+", help="integer datasets to count per class (default: names ending in 'labels')")
    i.add_argument("--histogram", metavar="OUT.png", help="bar chart of the class counts (needs macrobatch[plot])")
    i.set_defaults(run=inspectData)
    return i
