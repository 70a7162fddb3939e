"""Torch-free calls for the callgrind tests, imported by the counting processes (``module:function``)."""

import os
import queue
import signal
import threading

WORKER_LOOPS = 5000  # done on the worker thread per call
CALLER_LOOPS = 500  # done on the calling thread per call
BEFORE_LOOPS = 20000  # done on the calling thread before each call, uncounted


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


def handed_to_a_worker():
    """A call that waits for a long-lived worker thread, as ``.backward()`` waits for the autograd
    engine's device thread on CUDA."""
    jobs, done = queue.Queue(), queue.Queue()

    def worker():
        while True:
            done.put(spin(jobs.get()))

    threading.Thread(target=worker, daemon=True).start()

    def call(_):
        jobs.put(WORKER_LOOPS)
        done.get()
        spin(CALLER_LOOPS)

    return call, lambda: spin(BEFORE_LOOPS)


def on_the_caller(loops):
    return (lambda _: spin(loops)), None


def crashing():
    """valgrind's client dies of a signal while counting."""
    return (lambda _: os.kill(os.getpid(), signal.SIGSEGV)), None


def cpus_written_to(path):
    """Writes the CPUs the counting process may run on into ``path``; the call itself is trivial."""
    with open(path, "w") as f:
        f.write(" ".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0))))
    return on_the_caller(10)
