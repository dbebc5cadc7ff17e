"""perf/allocator.py: freed activation-sized blocks are reused instead of faulted in afresh each time."""

import os
import subprocess
import sys
import textwrap

import pytest

# In a fresh interpreter (mallopt is process-wide): 40 times, three 48 MiB tensors alive at once and then
# freed, as a layer's activations are, and print the minor page faults that took. 48 MiB is above the
# 32 MiB ceiling of glibc's self-adjusting mmap threshold, so by default every such block is mmapped and
# faulted in afresh, every time (smaller blocks are reused or not depending on glibc's history: flaky).
PROBE = textwrap.dedent("""
    import resource, sys
    import torch
    from daar.perf.allocator import keep_freed_memory
    on = keep_freed_memory() if sys.argv[1] == "call" else False
    x = torch.ones(12 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        a = x * 2.0
        b = a * 2.0
        c = b * 2.0
        del a, b, c
    print(int(on), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str, **env) -> tuple[bool, int]:
    run_env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=run_env,
                         check=True).stdout.split()
    return out[0] == "1", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
                    reason="glibc's mallopt only")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    on, kept = _faults("call")
    off, fresh = _faults("skip")
    assert on and not off
    # 40 x 3 x 48 MiB on fresh pages is ~1,470,000 faults of 4 KiB; reused, only the first blocks' ~40,000
    assert fresh > 1_000_000, fresh
    assert kept < fresh / 10, (kept, fresh)


def test_the_environment_switch_turns_it_off():
    on, _ = _faults("call", DAAR_KEEP_FREED_MEMORY="0")
    assert not on
