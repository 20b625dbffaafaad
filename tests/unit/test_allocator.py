"""glibc's malloc thresholds are set where the C library is glibc, and nowhere else."""

from __future__ import annotations

import platform
import sys

from offline.allocator import keep_large_buffers


def test_the_thresholds_are_set_exactly_where_the_c_library_is_glibc() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_large_buffers() is glibc
    assert keep_large_buffers() is glibc  # again: the same answer, no harm
