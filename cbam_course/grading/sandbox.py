"""A learner's kernel, out of the grader's reach: its own session, and on Linux its own PID,
network and mount namespaces with everything but its working folder read-only.

The grader starts each kernel behind :func:`command`: a launcher (this very file, run by path
with only the standard library, so it costs milliseconds) that

- **everywhere:** runs the kernel as its own child, in a session of its own (jupyter_client starts
  it so): the grader is not the kernel's parent and not in its process group, so
  ``os.kill(os.getppid(), ...)`` and ``os.killpg(0, ...)`` end only the notebook's own run;
- **on Linux:** dies with the grader, and the kernel with it (``PR_SET_PDEATHSIG``), so a grader
  that is killed leaves no kernel running;
- **on Linux, where unprivileged user namespaces are allowed:** gives the kernel a PID namespace
  (``kill(-1)`` reaches only the notebook's own processes), a network namespace with no interface
  up (no network, not even 127.0.0.1) and a mount namespace in which every mount is read-only
  but the notebook's working folder and the kernel's socket folder, with a private ``/dev/shm``.

:func:`status` says once which a machine gets, for the grader's first line and the gradebook.
What a same-user process can still do without namespaces (macOS, or a Linux that forbids them)
is in docs/instructors.md: grade in a container or on a machine you do not mind.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["status", "command"]

LAUNCHER = Path(__file__).resolve()
_STATUS: list[tuple[bool, str]] = []


def status() -> tuple[bool, str]:
    """``(namespaces, sentence)``: whether kernels get namespaces of their own here, and a sentence
    for the instructor that says what each notebook runs in. Found out once per process, by
    starting the launcher in its check mode, which confines itself and tests that it is confined."""
    if not _STATUS:
        if not sys.platform.startswith("linux"):
            _STATUS.append((False, "this is not Linux"))
        else:
            try:
                done = subprocess.run([sys.executable, "-I", str(LAUNCHER), "--check", "--"],
                                      capture_output=True, text=True, timeout=30)
                ok = done.returncode == 0 and done.stdout.strip() == "confined"
                why = "" if ok else ((done.stderr or done.stdout).strip().splitlines() or ["the check failed"])[-1][:200]
            except (OSError, subprocess.SubprocessError) as err:
                ok, why = False, f"{type(err).__name__}: {err}"[:200]
            _STATUS.append((ok, why))
    ok, why = _STATUS[0]
    if ok:
        return True, ("each notebook runs in its own session and its own PID, network and mount namespaces: "
                      "no network, and read-only outside its working folder")
    return False, (f"each notebook runs in its own session, but without namespaces ({why}): a notebook can "
                   f"still signal, read and write what you can, and use the network. Grade in a container "
                   f"or on a machine you do not mind (docs/instructors.md, 'What the grader protects')")


def command(writable: list[Path], memory_mib: int | None = None) -> list[str]:
    """The prefix that starts a kernel command sandboxed: ``writable`` stay writable inside,
    ``memory_mib`` caps the kernel's data segment (RLIMIT_DATA)."""
    namespaces, _ = status()
    launcher = [sys.executable, "-I", str(LAUNCHER)]
    for path in writable:
        launcher += ["--writable", str(Path(path).resolve())]
    if memory_mib:
        launcher += ["--memory", str(int(memory_mib))]
    return [*launcher, *(["--namespaces"] if namespaces else []), "--"]


# ----------------------------------------------------------------------------------------------
# the launcher: the kernel's parent, in new namespaces where it can

_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
_PR_SET_PDEATHSIG = 1


def _libc():
    return ctypes.CDLL("libc.so.6", use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies."""
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    args = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    _call(_libc().mount(args[0], args[1], args[2], flags, args[3]), f"mount {target}")


def _enter_namespaces() -> None:
    """A user namespace (this user as root inside, and nobody else), then new mount, PID and
    network namespaces: the next child of this process is PID 1 of its own world."""
    uid, gid = os.getuid(), os.getgid()
    _call(_libc().unshare(_CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _confine(writable: list[str]) -> None:
    """In the new mount namespace (as PID 1 of the new PID namespace): its own /proc, ``writable``
    writable, a private /dev/shm, every other mount read-only."""
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing done here reaches the machine's mounts
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    for path in writable:
        _mount(path, path, None, _MS_BIND | _MS_REC)
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=256m")
    keep = [*writable, "/dev/shm", "/proc"]
    with open("/proc/self/mountinfo") as f:
        mounts = [(line.split()[4].replace("\\040", " "), line.split()[5]) for line in f]
    for point, options in mounts:
        if any(point == p or point.startswith(p.rstrip("/") + "/") for p in keep) or "ro" in options.split(","):
            continue
        try:
            _mount(None, point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
        except OSError:
            if point in ("/", "/tmp", "/home", "/root", "/var", "/usr"):
                raise  # these must not stay writable


def _check() -> None:
    """``--check``, in the new namespaces: prove the confinement, print "confined"."""
    import socket

    try:
        open("/usr/.cbam-sandbox-check", "w").close()
        sys.exit("the root filesystem is still writable")
    except OSError:
        pass
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", 9))
            sys.exit("the network is reachable")
        except OSError:
            pass
    if os.getpid() != 1:
        sys.exit("not in a PID namespace of its own")
    print("confined", flush=True)


def main(argv: list[str]) -> None:
    """``launcher.py [--writable DIR]... [--memory MIB] [--namespaces | --check] -- COMMAND...``"""
    split = argv.index("--")
    options, kernel = argv[:split], argv[split + 1:]
    writable = [options[i + 1] for i, o in enumerate(options) if o == "--writable"]
    check = "--check" in options
    _die_with_parent()
    if "--namespaces" in options or check:
        _enter_namespaces()
    if "--memory" in options:
        import resource

        limit = int(options[options.index("--memory") + 1]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    pid = os.fork()
    if pid == 0:  # the kernel: this launcher's child, never the grader's
        _die_with_parent()
        if "--namespaces" in options or check:
            _confine(writable)
        if check:
            _check()
            os._exit(0)
        os.execvp(kernel[0], kernel)
    _, code = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(code) & 0xFF)


if __name__ == "__main__":
    main(sys.argv[1:])
