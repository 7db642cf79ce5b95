"""Communicator: rank, size and collectives for data-parallel training (issue 8).

Processes are launched and found by MPI (``mpiexec -n 4 ...``), through mpi4py; nothing of ours
speaks sockets. Host arrays are reduced with MPI's ``Allreduce``; on the CuPy backend device arrays
go through NCCL (``cupy.cuda.nccl``), whose unique id rank 0 broadcasts over MPI. Collectives work in
place on contiguous arrays; small host values (sizes, counts, flags) go through MPI's object calls.
Gradients may be summed as 16-bit words (engine.wire16: float16 or bfloat16), half the bytes of float32.
"""
import contextlib
import os
import sys
import traceback

import numpy

from .backend import isCuda, xp
from .parallel import setThreads

_ncclTypes = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
              "int32": "NCCL_INT32", "int64": "NCCL_INT64"}
#: ncclBfloat16 in NCCL's ncclDataType_t (NCCL 2.10 and newer); older CuPy builds do not name it.
_ncclBfloat16 = 9

#: Environment variables that MPI launchers set in every process they start.
_launcherSizeVars = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


def launchedByMpi():
    """Whether this process was started by an MPI launcher with more than one process."""
    return any(int(os.environ.get(name, "1") or 1) > 1 for name in _launcherSizeVars)


def worldCommunicator():
    """A Communicator over every process of the job when it was launched with several MPI processes,
    else None (a single process needs neither MPI nor mpi4py)."""
    return Communicator() if launchedByMpi() else None


@contextlib.contextmanager
def abortOnError(comm, kinds=BaseException):
    """Around a process's work in a job of several: an exception of kinds (default: any, Ctrl-C
    included) prints its traceback, with the rank, and aborts every process, instead of leaving the
    others waiting forever in their next collective."""
    try:
        yield
    except kinds:
        if comm is None or comm.size == 1:
            raise
        print(f"macrobatch: rank {comm.rank} of {comm.size} failed; stopping the job", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        comm.abort(1)


class Communicator:
    """The processes of one data-parallel job. comm: an mpi4py communicator (default COMM_WORLD).

    On the CuPy backend each process uses one GPU (the backend picks it by the rank on the node) and
    an NCCL communicator carries the device collectives. In a job of several processes each one's CPU
    threads (macrobatch's and the BLAS's) are limited to its share of its machine's cores
    (``coresOfMine``), unless the thread variables of engine.parallel are set: N processes each
    running all the cores' threads on N cores is several times slower than one thread each.
    ``threads`` holds the limits set.
    """

    def __init__(self, comm=None):
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError("data-parallel training needs mpi4py and an MPI library: pip install "
                              "macrobatch[mpi] (and e.g. apt install openmpi-bin)") from e
        self.mpi = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.nccl = self.makeNccl() if isCuda else None  # one process too: a single GPU tests the path
        self.wireOps = {}
        self.threads = setThreads(self.coresOfMine()) if self.size > 1 else None

    def coresOfMine(self):
        """The CPU cores this process may use without competing with the job's other processes on its
        machine: the cores it may run on, split evenly among the processes that may run on them too
        (all of a machine's processes when the launcher binds none, one when it binds each to its own)."""
        mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        node = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED)
        sharing = sum(1 for cores in node.allgather(mine) if cores & mine)
        node.Free()
        return max(1, len(mine) // sharing)

    def makeNccl(self):
        from cupy.cuda import nccl
        uid = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.ncclModule = nccl
        return nccl.NcclCommunicator(self.size, uid, self.rank)

    def ncclType(self, ary):
        name = _ncclTypes.get(ary.dtype.name)
        if name is None:
            raise TypeError(f"Communicator: NCCL cannot reduce {ary.dtype} arrays")
        return getattr(self.ncclModule, name)

    def allreduce(self, ary, op="sum"):
        """Sum (or, with op="mean", average) ary over all processes, in place; returns ary."""
        if op not in ("sum", "mean"):
            raise ValueError(f"Communicator.allreduce: op must be 'sum' or 'mean', got {op!r}")
        if isinstance(ary, numpy.ndarray):
            self.comm.Allreduce(self.mpi.IN_PLACE, ary, op=self.mpi.SUM)
        else:
            self.nccl.allReduce(ary.data.ptr, ary.data.ptr, ary.size, self.ncclType(ary),
                                self.ncclModule.NCCL_SUM, xp.cuda.get_current_stream().ptr)
        if op == "mean":
            ary /= self.size
        return ary

    def allreduceWords(self, bits, wire):
        """Sum, in place, uint16 words that hold wire.kind values (engine.wire16.Wire16) over all
        processes: NCCL sums them as its float16 or bfloat16 type; MPI with an operation that decodes,
        adds and encodes again. Returns bits."""
        if isinstance(bits, numpy.ndarray):
            op = self.wireOps.get(wire.kind)
            if op is None:
                op = self.wireOps[wire.kind] = self.mpi.Op.Create(
                    lambda a, b, datatype: wire.addInto(numpy.frombuffer(a, numpy.uint16),
                                                        numpy.frombuffer(b, numpy.uint16)), commute=True)
            self.comm.Allreduce(self.mpi.IN_PLACE, [bits, self.mpi.UINT16_T], op=op)
        else:
            kind = (self.ncclModule.NCCL_FLOAT16 if wire.kind == "float16"
                    else getattr(self.ncclModule, "NCCL_BFLOAT16", _ncclBfloat16))
            self.nccl.allReduce(bits.data.ptr, bits.data.ptr, bits.size, kind, self.ncclModule.NCCL_SUM,
                                xp.cuda.get_current_stream().ptr)
        return bits

    def broadcast(self, ary, root=0):
        """Copy root's ary into every process's ary, in place; returns ary."""
        if isinstance(ary, numpy.ndarray):
            self.comm.Bcast(ary, root=root)
        else:
            self.nccl.bcast(ary.data.ptr, ary.size, self.ncclType(ary), root, xp.cuda.get_current_stream().ptr)
        return ary

    def allgather(self, value):
        """The list of every process's value (small host objects: sizes, flags), by rank."""
        return self.comm.allgather(value)

    def sum(self, value):
        """The sum of a host number over all processes."""
        return self.comm.allreduce(value)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        """End every process of the job now (one failed: the others must not wait on it forever)."""
        self.comm.Abort(code)
