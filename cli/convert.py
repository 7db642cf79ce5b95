"""macrobatch convert: .npy/.npz, CSV, image folders or IDX files into the HDF5 layout train reads."""
from ..datasets.convert import readAny, writeTrainingH5
from .arguments import fractionOrZero, positiveInt


def convert(args):
    data, labels, classNames = readAny(args.inputs, args.label_column, args.data_key, args.labels_key)
    written = writeTrainingH5(args.out, data, labels, classNames, shuffle=args.shuffle, seed=args.seed,
                              val=args.val, test=args.test, chunkRows=args.chunk, channelsFirst=args.channels_first)
    shape = data.shape[1:] if not args.channels_first else (data.shape[3], *data.shape[1:3])
    parts = ", ".join(f"{name} {size}" for name, size in written.items())
    classes = len(classNames) if classNames else int(labels.max()) + 1
    print(f"wrote {args.out}: samples of {tuple(shape)} {data.dtype}, {classes} classes; {parts}"
          + (" (shuffled once)" if args.shuffle else ""))


def addParser(sub):
    c = sub.add_parser("convert", help="make the HDF5 file train reads from .npy/.npz, CSV, image folders or IDX",
                       description="Read data into memory and write it in train's layout: 'data' and 'labels', and "
                                   "'val_data'/'val_labels', 'test_data'/'test_labels' when split off. Inputs: "
                                   "a .npz (arrays 'data' and 'labels', or 'x' and 'y'), two .npy files (data, "
                                   "labels), a .csv with a header (--label-column), a folder with one subfolder "
                                   "of images per class (needs Pillow: macrobatch[images]), or an IDX images file "
                                   "and labels file (MNIST's format, .gz too). Labels that are not integers "
                                   "(names) become indices 0..K-1 in sorted order, the names kept in the file's "
                                   "'classNames' attribute.")
    c.add_argument("inputs", nargs="+", help="input file(s) or folder")
    c.add_argument("--out", required=True, help="HDF5 file to write")
    c.add_argument("--label-column", metavar="NAME", help="CSV: the column holding the labels")
    c.add_argument("--data-key", default="data", help=".npz: the array holding the samples")
    c.add_argument("--labels-key", default="labels", help=".npz: the array holding the labels")
    c.add_argument("--shuffle", action="store_true",
                   help="shuffle the samples once, so that every contiguous macrobatch holds every class")
    c.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    c.add_argument("--val", type=fractionOrZero, default=0.0, help="fraction split off as validation set")
    c.add_argument("--test", type=fractionOrZero, default=0.0, help="fraction split off as test set")
    c.add_argument("--chunk", type=positiveInt, metavar="ROWS",
                   help="rows per HDF5 chunk (default: about 1 MiB of rows), read whole by contiguous macrobatches")
    c.add_argument("--channels-first", action="store_true",
                   help="store (N, H, W, C) images as (N, C, H, W), the layout --model cnn takes")
    c.set_defaults(run=convert)
    return c
