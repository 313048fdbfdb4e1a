"""cbam_course.fast.cpu: the allocator setting that saves a CPU training loop its page faults."""
import platform
import subprocess
import sys

_STEP_FAULTS = """
import resource, torch
from cbam_course.fast.cpu import keep_freed_memory
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # a training step's pattern: a few 16 MiB tensors alive at once, then all freed
    tensors = [torch.ones(4 << 20) for _ in range(4)]
    return sum(float(t[0]) for t in tensors)
def faults_per_step():
    for _ in range(4):
        step()
    before = faults()
    for _ in range(5):
        step()
    return (faults() - before) / 5
default = faults_per_step()
kept = keep_freed_memory()
print(kept, default, faults_per_step())
"""


def test_keep_freed_memory_stops_page_faults_between_steps():
    """With glibc's defaults a step usually takes its freed memory back page by page (a page
    fault each; whether it does depends on where the process's memory happens to lie, so a few
    fresh processes are tried). After keep_freed_memory() the freed memory is reused. Elsewhere
    it changes nothing and says so."""
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    for _ in range(6):
        out = subprocess.run([sys.executable, "-c", _STEP_FAULTS], capture_output=True, text=True,
                             check=True).stdout.split()
        kept, faults_default, faults_kept = out[0] == "True", float(out[1]), float(out[2])
        assert kept == glibc
        if not glibc:
            return
        assert faults_kept < 100
        if faults_default > 4000:  # at least one 16 MiB tensor's pages, every step
            return
    raise AssertionError("the default allocator never gave memory back between steps in 6 processes")
