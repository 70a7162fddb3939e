"""The runner's check of the valgrind the instruction counts would use (``benchmarks/settings.py``)."""

from .suite import settings


class ValgrindError(RuntimeError):
    """``TORCH_OVERHEAD_VALGRIND`` names no executable: the message says what to do."""


def check():
    """Refuse a run whose valgrind variable is wrong before anything runs; valgrind missing
    altogether is not an error here: the counts are then skipped with the reason."""
    try:
        settings.chosen_valgrind()
    except ValueError as err:
        raise ValgrindError(str(err))
