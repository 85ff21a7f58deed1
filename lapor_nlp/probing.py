"""Linear probing for the open-addressing hash tables kept as numpy arrays (``features._CodeTable``:
the training bigrams' codes; ``chunks._ByteKeys``: chunks by their bytes): where a batch of keys
goes, found for all of them at once in vectorised rounds."""

from __future__ import annotations

import numpy as np


def place(home: np.ndarray, free: np.ndarray, mask: int) -> np.ndarray:
    """The slot of each of a batch of distinct keys not yet in the table, given their home slots
    and the table's free slots (``free``, one bool a slot; the slots taken become False).

    In rounds: the first key that wants a free slot takes it, every other one moves one slot on.
    No slot is ever emptied, so every slot between a key's home and its place is taken, which is
    what a lookup that stops at the first free slot needs."""
    slots = np.empty(len(home), np.int64)
    slot = np.array(home, np.int64)
    pending = np.arange(len(home))
    while len(pending):
        s = slot[pending]
        ok = np.flatnonzero(free[s])
        taken, first = np.unique(s[ok], return_index=True)
        slots[pending[ok[first]]] = taken
        free[taken] = False
        moving = np.ones(len(pending), bool)
        moving[ok[first]] = False
        pending = pending[moving]
        slot[pending] = (slot[pending] + 1) & mask
    return slots
