#!/usr/bin/env python3
"""Side-by-side benchmark of pysampler and py-spy (issue 5).

For each metric of the issue's table, runs pysampler and py-spy on the same
fixture programs in the same run, interleaved (the order alternates between
repetitions), and reports medians. Profiler CPU comes from the rusage of the
profiler process (os.wait4), never from wall-clock guesses; samples are
counted in each tool's raw (collapsed) output, the same way for both.

    python3 scripts/bench.py [--quick] [--long] [--pythons 3.9,3.12,3.13,3.14]
        [--pysampler target/release/pysampler] [--py-spy PATH] [--out target/bench]

--quick is a smoke test for CI: one interpreter (3.12), one repetition,
short runs. It checks only that both tools ran and produced numbers, never
the targets. --long measures peak RSS over 1,000,000 samples (slow).

--only tachyon (make bench-tachyon): Python 3.15 only, CPython's own sampler
("Tachyon", python3.15 -m profiling.sampling, run from the sid root) beside
pysampler and py-spy, all non-blocking: marginal CPU per sample and delivered
share at 1,000 to 100,000 Hz, and the target's slowdown at 1,000 Hz.

Writes OUT/results.md (the table), OUT/results.json (the table and every
run behind it) and prints the table. Exits 1 when pysampler failed to
produce a number, or py-spy did on an interpreter it supports.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
BENCH_FIXTURES = [
    "deep_busy.py",
    "bench_fixed_work.py",
    "bench_many_stacks.py",
    "bench_threads.py",
]
READY_TIMEOUT = 60.0

# ---------------------------------------------------------------------------
# interpreters


class Python:
    """An interpreter that runs the fixtures: pyenv's, or Debian's in the sid
    root (run with chroot; the fixtures are copied into ROOT/tmp)."""

    def __init__(self, label, argv, fixture_dir, root=None):
        self.label = label
        self.argv = argv
        self.fixture_dir = fixture_dir
        self.root = root
        minor = int(label.split(".")[1].rstrip("t"))  # "3.13t": free-threaded
        self.family = "3.11+" if minor >= 11 else "<=3.10"

    def fixture(self, name):
        return "%s/%s" % (self.fixture_dir, name)

    def command(self, fixture, *args):
        return self.argv + [self.fixture(fixture)] + [str(a) for a in args]


def pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    try:
        return subprocess.check_output(["pyenv", "root"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def find_python(label, sid_root):
    """The interpreter for "3.X" (or "3.13t", the free-threaded build
    `make python313t` installs); exits with a clear message when missing."""
    if label == "3.13t":
        prefix = os.environ.get("PYSAMPLER_PY313T") or os.path.expanduser("~/.cache/pysampler/py313t")
        exe = os.path.join(prefix, "bin", "python3.13t")
        if not os.access(exe, os.X_OK):
            sys.exit("bench: Python 3.13t is required but %s does not exist (make python313t builds it)" % exe)
        return Python(label, [exe], str(FIXTURES))
    if label in ("3.14", "3.15"):
        exe = os.path.join(sid_root, "usr/bin/python" + label)
        if not os.access(exe, os.X_OK):
            sys.exit(
                "bench: Python %s is required but %s does not exist (make sid-root builds it)"
                % (label, exe)
            )
        if os.geteuid() != 0:
            sys.exit("bench: Python %s runs in the sid root with chroot, which needs root" % label)
        inside = "/tmp/pysampler-bench"
        dest = os.path.join(sid_root, inside.lstrip("/"))
        os.makedirs(dest, exist_ok=True)
        for name in BENCH_FIXTURES:
            shutil.copy(FIXTURES / name, os.path.join(dest, name))
        return Python(label, ["chroot", sid_root, "/usr/bin/python" + label], inside, sid_root)
    matches = sorted(glob.glob(os.path.join(pyenv_root(), "versions", label + ".*", "bin", "python")))
    if not matches:
        sys.exit(
            "bench: Python %s is required but no %s/versions/%s.*/bin/python exists (pyenv install %s)"
            % (label, pyenv_root(), label, label)
        )
    return Python(label, [matches[-1]], str(FIXTURES))


# ---------------------------------------------------------------------------
# processes


class Target:
    """A fixture process; started, then READY awaited; killed on exit."""

    def __init__(self, python, fixture, *args, stdin=False):
        self.proc = subprocess.Popen(
            python.command(fixture, *args),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        line = self.readline(READY_TIMEOUT)
        if line is None or line.strip() != "READY":
            err = self.stop()
            raise BenchError(
                "%s on Python %s did not print READY (got %r): %s"
                % (fixture, python.label, line, err.strip()[-500:])
            )

    def readline(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            _, err = self.proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            err = ""
        return err or ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class BenchError(Exception):
    pass


class OtherCpusBusy:
    """Keeps every CPU but one busy with a spinning process while in use, as
    on a loaded server: a profiler's costs there differ from an idle
    machine's (no idle CPU to wake, and none for a resumed thread to move to)."""

    def __init__(self):
        self.procs = []

    def __enter__(self):
        for _ in range(max(1, (os.cpu_count() or 2) - 1)):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


class Run:
    """A finished profiler process: exit code, CPU (user + system, from
    wait4), wall time from spawn to exit, peak RSS, outputs."""

    def __init__(self, argv, rc, cpu, utime, stime, wall, maxrss_kb, stdout, stderr):
        self.argv = argv
        self.rc = rc
        self.cpu = cpu
        self.utime = utime
        self.stime = stime
        self.wall = wall
        self.maxrss_kb = maxrss_kb
        self.stdout = stdout
        self.stderr = stderr

    def failure(self):
        """One line saying why the run failed, or None."""
        if self.rc == 0:
            return None
        text = (self.stderr + "\n" + self.stdout).strip().splitlines()
        text = [t for t in text if t.strip() and "Traceback" not in t]
        return "exit %s: %s" % (self.rc, text[-1][:200] if text else "no output")


class Profiler:
    """A running profiler process (spawned now, reaped by `wait`)."""

    def __init__(self, argv, timeout):
        self.argv = argv
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)
        self.timed_out = False
        self.timer = threading.Timer(timeout, self._timeout)
        self.timer.daemon = True
        self.timer.start()

    def _timeout(self):
        self.timed_out = True
        try:
            self.proc.send_signal(signal.SIGINT)
            time.sleep(5)
            self.proc.kill()
        except OSError:
            pass

    def wait(self):
        _, status, ru = os.wait4(self.proc.pid, 0)
        wall = time.monotonic() - self.start
        self.timer.cancel()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.out.seek(0)
        self.err.seek(0)
        stdout, stderr = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        if self.timed_out:
            stderr += "\n(bench: stopped after the time limit)"
        return Run(
            self.argv,
            self.proc.returncode,
            ru.ru_utime + ru.ru_stime,
            ru.ru_utime,
            ru.ru_stime,
            wall,
            ru.ru_maxrss,
            stdout,
            stderr,
        )


def run_profiler(argv, timeout):
    return Profiler(argv, timeout).wait()


# Peak RSS comes from GNU time, not from our own wait4: a child forked from
# this harness and then exec'd keeps the harness's RSS at the fork (~24 MiB
# of Python) as its ru_maxrss floor, since the kernel records the old
# image's high-water mark at exec. GNU time forks the profiler from its own
# process of ~2 MiB.
GNU_TIME = "/usr/bin/time"


def peak_rss_kb(run):
    m = re.search(r"PEAK_RSS_KB (\d+)", run.stderr)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------
# the two tools


class Tool:
    def __init__(self, name, exe):
        self.name = name
        self.exe = exe

    def record(self, pid, rate, duration, out, fmt="raw", nonblocking=False, idle=False, nolineno=False):
        argv = [self.exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", fmt, "--output", out]
        if nolineno:
            argv.append("--nolineno")
        if duration is not None:
            argv += ["--duration", str(duration)]
        if nonblocking:
            argv.append("--nonblocking")
        if idle:
            argv.append("--idle")
        return argv

    def dump(self, pid):
        return [self.exe, "dump", "--pid", str(pid)]

    def summary(self, run):
        """What the tool says about its own recording: samples, late %, errors."""
        if self.name == "pysampler":
            m = re.search(r"pysampler: (\d+) samples in ([\d.]+) s \(([\d.]+)% late, (\d+) errors\)", run.stderr)
            if m:
                return {"samples": int(m.group(1)), "late_pct": float(m.group(3)), "errors": int(m.group(4))}
        else:
            m = re.search(r"Samples: (\d+) Errors: (\d+)", run.stdout + run.stderr)
            if m:
                return {"samples": int(m.group(1)), "late_pct": None, "errors": int(m.group(2))}
        return {}


class PauseFloor(Tool):
    """examples/tick_floor pausing and resuming a process each tick as the
    pausing sampler does, reading nothing: the slowdown pausing alone causes."""

    def __init__(self, exe):
        super().__init__("pausing floor", exe)

    def record(self, pid, rate, duration, out, **_):
        return [self.exe, str(rate), str(duration or 3600), "pause", str(pid)]


class Tachyon(Tool):
    """CPython 3.15's own sampler (`python3.15 -m profiling.sampling`,
    "Tachyon"), run from the sid root with chroot: it reads only a target
    of its own minor version. Non-blocking by default (its --blocking is
    opt-in), wall mode; writes collapsed stacks ("tid:N;frames COUNT"),
    counted with raw_counts like the other tools' raw output. Its -o path
    is seen from inside the root, so its output goes under ROOT/tmp."""

    INSIDE = "/tmp/pysampler-bench"

    def __init__(self, root):
        super().__init__("Tachyon", os.path.join(root, "usr/bin/python3.15"))
        self.root = root
        self.out_dir = os.path.join(root, self.INSIDE.lstrip("/"))

    def record(self, pid, rate, duration, out, **_):
        inside = "/" + os.path.relpath(out, self.root)
        argv = ["chroot", self.root, "/usr/bin/python3.15", "-m", "profiling.sampling", "attach",
                "-r", str(rate), "--collapsed", "-o", inside]
        if duration is not None:
            argv += ["-d", str(duration)]
        return argv + [str(pid)]

    def summary(self, run):
        m = re.search(r"Error rate: ([\d.]+)", run.stdout + run.stderr)
        return {"error_rate_pct": float(m.group(1))} if m else {}


class ProcInRoot:
    """/proc inside the sid root while Tachyon runs: it finds the target's
    interpreter through /proc/PID/maps, and the root has no /proc of its own.
    A bind mount of the host's /proc on ROOT/proc, unmounted on exit; left
    alone (and not unmounted) when something already mounted it. Not a
    private mount namespace (unshare): there /proc/PID/maps shows the
    target's files by their host paths, which Tachyon cannot open in the root."""

    def __init__(self, root):
        self.path = os.path.join(root, "proc")
        self.mounted = False

    def __enter__(self):
        if not os.path.ismount(self.path):
            os.makedirs(self.path, exist_ok=True)
            r = subprocess.run(["mount", "--bind", "/proc", self.path], capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError("cannot bind-mount /proc on %s: %s" % (self.path, r.stderr.strip()))
            self.mounted = True
        return self

    def __exit__(self, *exc):
        if self.mounted:
            r = subprocess.run(["umount", self.path], capture_output=True, text=True)
            if r.returncode != 0:
                log("could not unmount %s (umount %s by hand): %s" % (self.path, self.path, r.stderr.strip()))


def raw_counts(path, marker=None):
    """Samples in a collapsed-stack file ("a;b;c N" lines): total, those whose
    stack contains `marker`, and the number of distinct stacks."""
    total = marked = lines = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not count.isdigit():
                    continue
                n = int(count)
                total += n
                lines += 1
                if marker is not None and marker in stack:
                    marked += n
    except FileNotFoundError:
        pass
    return total, marked, lines


# ---------------------------------------------------------------------------
# results


class Cell:
    """One tool's value for one metric on one interpreter: the median of the
    repetitions, their range, or why there is none."""

    def __init__(self, values=None, error=None, note=None, extra=None):
        self.values = [v for v in (values or []) if v is not None]
        self.error = error
        self.note = note
        self.extra = extra or {}

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    def to_json(self):
        return {
            "median": self.median,
            "values": self.values,
            "error": self.error,
            "note": self.note,
            "extra": self.extra,
        }


class Row:
    def __init__(self, metric, python, unit, ps, spy, target="", lower_is_better=True, fmt="{:.1f}", ratio=True,
                 tach=None):
        self.has_ratio = ratio
        self.tach = tach  # Tachyon's cell: only on its rows (Python 3.15)
        self.metric = metric
        self.python = python
        self.unit = unit
        self.ps = ps
        self.spy = spy
        self.target = target
        self.lower_is_better = lower_is_better
        self.fmt = fmt

    def show(self, cell):
        if cell.median is None:
            return cell.error or "n/a"
        text = self.fmt.format(cell.median) + (" " + self.unit if self.unit else "")
        if len(cell.values) > 1:
            text += " [" + self.fmt.format(min(cell.values)) + "–" + self.fmt.format(max(cell.values)) + "]"
        if cell.note:
            text += " (" + cell.note + ")"
        return text

    def ratio(self, other=None):
        a, b = self.ps.median, (other or self.spy).median
        if not self.has_ratio or a is None or b is None or a <= 0 or b <= 0:
            return None
        return b / a if self.lower_is_better else a / b

    def to_json(self):
        return {
            "metric": self.metric,
            "python": self.python,
            "unit": self.unit,
            "target": self.target,
            "lower_is_better": self.lower_is_better,
            "format": self.fmt,
            "has_ratio": self.has_ratio,
            "pysampler": self.ps.to_json(),
            "py-spy": self.spy.to_json(),
            "ratio_in_pysamplers_favour": self.ratio(),
            **({"tachyon": self.tach.to_json(), "ratio_vs_tachyon": self.ratio(self.tach)} if self.tach else {}),
        }


def with_tachyon(rows):
    """Whether the table has Tachyon's columns (any of its rows ran)."""
    return any(r.tach is not None for r in rows)


def markdown(rows):
    tach = with_tachyon(rows)
    if tach:
        out = [
            "| metric | python | pysampler | py-spy | ratio | Tachyon | ratio vs Tachyon | target |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    else:
        out = [
            "| metric | python | pysampler | py-spy | ratio | target |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
    for r in rows:
        ratio = r.ratio()
        cols = [
            r.metric,
            r.python,
            r.show(r.ps).replace("|", "/"),
            r.show(r.spy).replace("|", "/"),
            "%.1f×" % ratio if ratio is not None else "—",
        ]
        if tach:
            tr = r.ratio(r.tach) if r.tach else None
            cols += [r.show(r.tach).replace("|", "/") if r.tach else "—", "%.1f×" % tr if tr is not None else "—"]
        out.append("| " + " | ".join(cols + [r.target]) + " |")
    return "\n".join(out)


def text_table(rows):
    tach = with_tachyon(rows)
    header = ["metric", "python", "pysampler", "py-spy", "ratio"] + (["Tachyon", "vs Tachyon"] if tach else [])
    header.append("target")
    body = []
    for r in rows:
        ratio = r.ratio()
        line = [r.metric, r.python, r.show(r.ps), r.show(r.spy), "%.1fx" % ratio if ratio is not None else "-"]
        if tach:
            tr = r.ratio(r.tach) if r.tach else None
            line += [r.show(r.tach) if r.tach else "-", "%.1fx" % tr if tr is not None else "-"]
        body.append(line + [r.target])
    widths = [min(60, max(len(h), *(len(b[i]) for b in body))) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(b, widths)))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# the benchmark


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


UNSUPPORTED = re.compile(r"unsupported|not supported|unknown version|Failed to find python version", re.I)


class Bench:
    def __init__(self, args, tools, pythons):
        self.args = args
        self.tools = tools
        self.pythons = pythons
        self.quick = args.quick
        self.reps = args.reps or (1 if args.quick else 3)
        self.rows = []
        self.runs = []  # every profiler run, for the JSON
        self.loads = []
        self.tmp = Path(tempfile.mkdtemp(prefix="pysampler-bench-"))
        self.failures = []

    # -- helpers -------------------------------------------------------------

    def order(self, rep, tools=None):
        """Tools in the order of this repetition (alternating)."""
        tools = tools or self.tools
        return tools if rep % 2 == 0 else list(reversed(tools))

    def out_path(self, tool, ext="txt"):
        # Tachyon writes inside the sid root (its out_dir).
        fd, path = tempfile.mkstemp(prefix=tool.name + "-", suffix="." + ext, dir=getattr(tool, "out_dir", self.tmp))
        os.close(fd)
        os.unlink(path)
        return path

    def note_run(self, metric, python, tool, run, **facts):
        self.runs.append(
            {
                "metric": metric,
                "python": python.label,
                "tool": tool.name,
                "argv": run.argv,
                "rc": run.rc,
                "cpu_s": run.cpu,
                "utime_s": run.utime,
                "stime_s": run.stime,
                "wall_s": run.wall,
                "maxrss_kb": run.maxrss_kb,
                "summary": tool.summary(run),
                "failure": run.failure(),
                "loadavg": os.getloadavg(),
                **facts,
            }
        )

    def failed(self, tool, python, run):
        """A failed run's message: py-spy on an interpreter it cannot read is
        reported as such, not as a harness failure."""
        why = run.failure() or "no samples"
        if tool.name == "py-spy" and UNSUPPORTED.search(run.stderr + run.stdout):
            return "py-spy cannot read Python %s (%s)" % (python.label, why)
        return "%s failed: %s" % (tool.name, why)

    def add(self, row):
        self.rows.append(row)
        cells = [("pysampler", row.ps), ("py-spy", row.spy)] + ([("Tachyon", row.tach)] if row.tach else [])
        for tool, cell in cells:
            if cell.median is None and cell.error and not cell.error.startswith(
                    ("py-spy cannot read", "< ", "not reported", "not measurable")):
                self.failures.append("%s / Python %s / %s: %s" % (row.metric, row.python, tool, cell.error))
        log("  %s | %s | pysampler %s | py-spy %s%s" % (row.metric, row.python, row.show(row.ps), row.show(row.spy),
                                                       " | Tachyon %s" % row.show(row.tach) if row.tach else ""))

    def section(self, name):
        load = os.getloadavg()
        self.loads.append({"section": name, "loadavg": load, "time": time.time()})
        log("%s (load average %.2f %.2f %.2f)" % (name, *load))

    def record_on(self, python, tool, metric, fixture, fixture_args, rate, duration, marker=None, peak_rss=False,
                  **flags):
        """Starts a fixture, records it for `duration` s, returns (run, facts).
        `peak_rss`: run the profiler under GNU time, whose %M is the
        profiler's own peak (see `peak_rss_kb`)."""
        with Target(python, fixture, *fixture_args) as target:
            out = self.out_path(tool)
            argv = tool.record(target.pid, rate, duration, out, **flags)
            if peak_rss:
                argv = [GNU_TIME, "-f", "PEAK_RSS_KB %M"] + argv
            run = run_profiler(argv, timeout=duration * 20 + 60)
            total, marked, stacks = raw_counts(out, marker)
            facts = {
                "samples": total,
                "marked_samples": marked if marker else None,
                "distinct_stacks": stacks,
                "target_alive_at_end": target.alive(),
            }
            self.note_run(metric, python, tool, run, **facts)
            if os.path.exists(out):
                os.unlink(out)
            return run, facts

    # -- metrics ---------------------------------------------------------------

    def cpu_per_sample(self, python, nonblocking, others_busy=False):
        """Profiler CPU (user + system) per sample on the 100-deep busy stack,
        -r 1000 -d 5: total CPU / samples (start-up and writing the output
        included). Outside --quick, also a 1 s run per repetition, giving the
        marginal cost (CPU of the 5 s run less the 1 s run, over the sample
        difference), which leaves start-up and output out. `others_busy`:
        the same with every other CPU kept busy (OtherCpusBusy)."""
        mode = "--nonblocking" if nonblocking else "pausing"
        if not others_busy:
            return self.cpu_per_sample_in(python, nonblocking, mode, "")
        with OtherCpusBusy():
            return self.cpu_per_sample_in(python, nonblocking, mode + ", other CPUs busy", ", other CPUs busy")

    def cpu_per_sample_in(self, python, nonblocking, mode, load):
        metric = "CPU per sample, 100-deep stack, 1 thread, -r 1000 -d {d} (" + mode + ")"
        duration = 1 if self.quick else 5
        short = None if self.quick else 1
        cells = {
            t.name: {"v": [], "marginal": [], "err": None, "late": [], "wall": [], "samples": []} for t in self.tools
        }
        floors = []
        for rep in range(self.reps):
            if short:
                floors.append(self.wake_floor(1000, short, duration, pause=not nonblocking))
            for tool in self.order(rep):
                c = cells[tool.name]
                got = {}
                for d in [duration] + ([short] if short else []):
                    # py-spy's --duration counts samples (rate x seconds), so
                    # it can run far longer than asked when it cannot keep up.
                    run, facts = self.record_on(
                        python, tool, metric.format(d=d), "deep_busy.py", [d * 30 + 30], 1000, d,
                        nonblocking=nonblocking,
                    )
                    if run.rc != 0 or facts["samples"] == 0:
                        c["err"] = self.failed(tool, python, run)
                        break
                    got[d] = (run, facts)
                if duration not in got:
                    continue
                run, facts = got[duration]
                c["v"].append(run.cpu / facts["samples"] * 1e6)
                c["late"].append(tool.summary(run).get("late_pct"))
                c["wall"].append(run.wall)
                c["samples"].append(facts["samples"])
                if short in got:
                    run1, facts1 = got[short]
                    extra = facts["samples"] - facts1["samples"]
                    if extra > 0:
                        c["marginal"].append((run.cpu - run1.cpu) / extra * 1e6)
        target = "≤ 15 µs" if python.family == "3.11+" else "≤ 60 µs"
        out = {}
        marginal = {}
        for name, c in cells.items():
            note = None
            if c["v"]:
                wall = statistics.median(c["wall"])
                note = "%d samples, %.1f s wall" % (statistics.median(c["samples"]), wall)
                lates = [x for x in c["late"] if x is not None]
                if lates:
                    note += ", %.1f%% late" % statistics.median(lates)
            out[name] = Cell(c["v"], c["err"], note)
            marginal[name] = Cell(c["marginal"], c["err"] or "no runs")
        self.add(Row(metric.format(d=duration), python.label, "µs", out["pysampler"], out["py-spy"], target))
        if short:
            self.add(
                Row("CPU per sample, marginal (%d s run less %d s run), %s" % (duration, short, mode),
                    python.label, "µs", marginal["pysampler"], marginal["py-spy"], target)
            )
            floors = [f for f in floors if f is not None]
            floor = statistics.median(floors) if floors else None
            floor_name = "wake floor: CPU per tick of an empty loop at 1000 Hz (examples/tick_floor)"
            if not nonblocking:
                floor_name = ("pausing floor: CPU per tick of a loop at 1000 Hz that pauses and resumes a spinning"
                              " process (examples/tick_floor pause)")
            self.add(
                Row(floor_name + ", marginal" + load,
                    python.label, "µs", Cell(floors, "tick_floor failed"),
                    Cell([], "not reported (the same for both tools)"), ratio=False)
            )
            above = {}
            for name, c in cells.items():
                values = [m - floor for m in c["marginal"]] if floor is not None else []
                above[name] = Cell(values, c["err"] or "no runs")
            self.add(
                Row("CPU per sample above the %s floor (marginal less floor), %s"
                    % ("wake" if nonblocking else "pausing", mode),
                    python.label, "µs", above["pysampler"], above["py-spy"])
            )

    def wake_floor(self, rate, short, long, pause=False):
        """Marginal CPU per tick of examples/tick_floor, which wakes on
        pysampler's schedule and reads nothing: (CPU of the long run less
        the short run) / (tick difference). Every sampling profiler pays it
        per sample; on a VM it is most of a cheap sample's cost. `pause`:
        each tick also pauses and resumes a spinning process as the pausing
        sampler does, which every pausing profiler pays too."""
        got = {}
        for d in (short, long):
            argv = [self.args.tick_floor, str(rate), str(d)] + (["pause"] if pause else [])
            run = run_profiler(argv, timeout=d * 10 + 30)
            m = re.match(r"ticks (\d+) late (\d+)", run.stdout)
            self.runs.append({"metric": "wake floor", "argv": run.argv, "rc": run.rc, "cpu_s": run.cpu,
                              "wall_s": run.wall, "stdout": run.stdout, "loadavg": os.getloadavg()})
            if run.rc != 0 or not m:
                return None
            got[d] = (run.cpu, int(m.group(1)))
        extra = got[long][1] - got[short][1]
        return (got[long][0] - got[short][0]) / extra * 1e6 if extra > 0 else None

    def max_rate(self, python):
        """Climbs a ladder of rates (--nonblocking, 100-deep busy stack) until
        a tool stops keeping up, by two criteria:

        - delivered: at least 99% of the expected samples arrived, i.e.
          samples / (rate x sampling time) >= 0.99, where the sampling time is
          the profiler's wall time less its own start-up and shutdown (its
          wall time at the first rung less the duration), never less than the
          duration. The same rule for both tools (py-spy's --duration counts
          samples, so falling behind shows as a longer run).
        - on time: pysampler's own count of late samples (a tick that starts
          more than a tenth of an interval after it was due) is under 1%.
          py-spy reports lateness only past 1 s, so it has no such number.
        """
        duration = 1 if self.quick else 3
        ladder = [100, 1000, 10000] if self.quick else [100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]
        # Three, as elsewhere: the median of two is their mean, and one of the
        # host's bad seconds (the empty loop alone misses 1% of its ticks at
        # 1000 Hz in some runs) then fails the rung for either tool.
        reps = 1 if self.quick else 3
        state = {
            t.name: {"delivered": None, "on_time": None, "climbing": True, "overhead": None, "err": None,
                     "steps": []}
            for t in self.tools
        }
        for rate in ladder:
            if not any(s["climbing"] for s in state.values()):
                break
            results = {t.name: [] for t in self.tools}
            for rep in range(reps):
                for tool in self.order(rep):
                    s = state[tool.name]
                    if not s["climbing"]:
                        continue
                    run, facts = self.record_on(
                        python, tool, "rate ladder", "deep_busy.py", [duration * 40 + 30], rate, duration,
                        nonblocking=True,
                    )
                    if run.rc != 0 or facts["samples"] == 0:
                        s["err"] = self.failed(tool, python, run)
                        s["climbing"] = False
                        continue
                    results[tool.name].append((run, facts))
            for tool in self.tools:
                s = state[tool.name]
                got = results[tool.name]
                if not s["climbing"] or not got:
                    continue
                if s["overhead"] is None:
                    s["overhead"] = max(0.0, statistics.median(r.wall for r, _ in got) - duration)
                achieved = []
                lates = []
                for run, facts in got:
                    sampling = max(duration, run.wall - s["overhead"])
                    # One sample of slack: py-spy stops after rate x duration
                    # - 1 samples.
                    achieved.append(facts["samples"] / max(1.0, rate * sampling - 1))
                    late = tool.summary(run).get("late_pct")
                    if late is not None:
                        lates.append(late)
                a = statistics.median(achieved)
                late = statistics.median(lates) if lates else None
                delivered = a >= 0.99
                on_time = late is not None and late < 1.0
                s["steps"].append({"rate": rate, "achieved": a, "late_pct": late})
                log(
                    "    %s at %d Hz: %.1f%% of expected samples%s"
                    % (tool.name, rate, a * 100, "" if late is None else ", %.1f%% late" % late)
                )
                if delivered and s["delivered"] == (s["steps"][-2]["rate"] if len(s["steps"]) > 1 else None):
                    s["delivered"] = rate
                if on_time and s["on_time"] == (s["steps"][-2]["rate"] if len(s["steps"]) > 1 else None):
                    s["on_time"] = rate
                # Climb while either criterion still holds.
                if s["delivered"] != rate and s["on_time"] != rate:
                    s["climbing"] = False

        def cell(name, key):
            s = state[name]
            if s[key] is None:
                if s["err"]:
                    return Cell([], s["err"])
                if key == "on_time" and name == "py-spy":
                    return Cell([], "not reported")
                return Cell([], "< %d Hz" % ladder[0], extra={"steps": s["steps"]})
            note = "top of the ladder" if s[key] == ladder[-1] else None
            return Cell([s[key]], None, note, extra={"steps": s["steps"]})

        self.add(self.floor_delivery(python, 10000, duration, reps))
        self.add(
            Row("highest rate with ≥ 99% of expected samples delivered, --nonblocking", python.label, "Hz",
                cell("pysampler", "delivered"), cell("py-spy", "delivered"), "≥ 10,000 Hz",
                lower_is_better=False, fmt="{:,.0f}")
        )
        self.add(
            Row("highest rate with < 1% late samples (pysampler's own count), --nonblocking", python.label, "Hz",
                cell("pysampler", "on_time"), cell("py-spy", "on_time"), "≥ 10,000 Hz",
                lower_is_better=False, fmt="{:,.0f}")
        )

    def floor_delivery(self, python, rate, duration, reps):
        """The share of its ticks examples/tick_floor (pysampler's schedule,
        reading nothing) takes at `rate`: the most any sampler delivers on
        this machine, whose stray stalls skip ticks however cheap a sample."""
        shares, lates = [], []
        for _ in range(reps):
            run = run_profiler([self.args.tick_floor, str(rate), str(duration)], timeout=duration * 10 + 30)
            m = re.match(r"ticks (\d+) late (\d+)", run.stdout)
            self.runs.append({"metric": "floor delivery", "argv": run.argv, "rc": run.rc, "cpu_s": run.cpu,
                              "wall_s": run.wall, "stdout": run.stdout, "loadavg": os.getloadavg()})
            if run.rc == 0 and m:
                ticks, late = int(m.group(1)), int(m.group(2))
                shares.append(ticks / (rate * duration) * 100)
                lates.append(late / max(1, ticks) * 100)
        note = "%.1f%% of them late" % statistics.median(lates) if lates else None
        return Row("wake floor's delivery: %% of ticks an empty loop takes at %s Hz (examples/tick_floor)"
                   % format(rate, ","), python.label, "%", Cell(shares, "tick_floor failed", note),
                   Cell([], "not reported (the same for both tools)"), ratio=False)

    def cpu_at_100hz(self, python):
        """Profiler CPU / wall time of `record -r 100 -d 10`, start-up and
        output included, in both modes; beside them the wake and pausing
        floors at 100 Hz (tick_floor's CPU / wall over the same 10 s)."""
        duration = 2 if self.quick else 10
        floors = {"wake": [], "pausing": []}
        for nonblocking in (False, True):
            mode = "--nonblocking" if nonblocking else "pausing"
            metric = "profiler CPU at 100 Hz, %s, 100-deep stack" % mode
            cells = {t.name: ([], None) for t in self.tools}
            for rep in range(self.reps):
                if not nonblocking and not self.quick:
                    for kind, extra in (("wake", []), ("pausing", ["pause"])):
                        argv = [self.args.tick_floor, "100", str(duration)] + extra
                        run = run_profiler(argv, timeout=duration * 10 + 30)
                        if run.rc == 0:
                            floors[kind].append(run.cpu / run.wall * 100)
                for tool in self.order(rep):
                    run, facts = self.record_on(python, tool, metric, "deep_busy.py", [duration * 5 + 30], 100,
                                                duration, nonblocking=nonblocking)
                    vals, err = cells[tool.name]
                    if run.rc != 0 or facts["samples"] == 0:
                        cells[tool.name] = (vals, self.failed(tool, python, run))
                        continue
                    vals.append(run.cpu / run.wall * 100)
            c = {n: Cell(v, e) for n, (v, e) in cells.items()}
            self.add(Row(metric, python.label, "% of a core", c["pysampler"], c["py-spy"], "≤ 0.5%", fmt="{:.2f}"))
        names = {
            "wake": "wake floor at 100 Hz: CPU of an empty loop (examples/tick_floor) / wall",
            "pausing": "pausing floor at 100 Hz: CPU of a loop pausing a spinning process"
                       " (examples/tick_floor pause) / wall",
        }
        for kind, values in floors.items():
            if values:
                self.add(Row(names[kind], python.label, "% of a core", Cell(values),
                             Cell([], "not reported (the same for both tools)"), fmt="{:.2f}", ratio=False))

    def fixed_work_run(self, python, tool, iterations, rate, nonblocking, attach_wait):
        """One run of the fixed-work fixture, alone (tool None) or under a
        profiler attached while it waits; returns (seconds of work, run, facts)."""
        with Target(python, "bench_fixed_work.py", iterations, stdin=True) as target:
            prof = None
            out = None
            if tool is not None:
                out = self.out_path(tool)
                argv = tool.record(target.pid, rate, None, out, nonblocking=nonblocking)
                prof = Profiler(argv, timeout=600)
                # Let the profiler attach and start sampling before the work
                # begins (it sees an idle thread until then).
                time.sleep(attach_wait)
                if prof.proc.poll() is not None:
                    run = prof.wait()
                    raise BenchError(run.failure() or "the profiler exited early")
            target.send("GO\n")
            line = target.readline(900)
            if not line or not line.startswith("ELAPSED"):
                raise BenchError("bench_fixed_work.py printed %r" % line)
            elapsed = float(line.split()[1])
            run = facts = None
            if prof is not None:
                target.proc.wait(timeout=30)
                run = prof.wait()
                if isinstance(tool, PauseFloor):
                    return elapsed, run, {"work_s": elapsed}
                total, _, _ = raw_counts(out, None)
                facts = {"samples": total, "work_s": elapsed, "coverage": total / (rate * elapsed)}
                if os.path.exists(out):
                    os.unlink(out)
            return elapsed, run, facts

    def slowdown(self, python, configs=None, tools=None, attach_wait=None):
        """Target slowdown: the same fixed work timed alone and under each
        profiler (attached while the fixture waits, so attaching is not
        counted). Each profiled run is paired with a run alone just before
        it, and the slowdown is the median over repetitions of the paired
        ratios, so slow drifts of the machine's load cancel. The spread of
        consecutive runs alone (the noise floor) is reported with it."""
        # Calibrate the work to the interpreter.
        probe, _, _ = self.fixed_work_run(python, None, 2000, 0, False, 0)
        per_iter = probe / 2000
        long_work = 0.5 if self.quick else 2.0
        short_work = 0.2 if self.quick else 0.5
        configs = configs or [
            ("target slowdown, pausing, -r 100", 100, False, long_work, "≤ 1%"),
            ("target slowdown, pausing, -r 1000", 1000, False, short_work, "≤ 5%"),
            ("target slowdown, --nonblocking, -r 1000", 1000, True, long_work, "≤ 1%"),
        ]
        tools = tools or self.tools
        if attach_wait is None:
            attach_wait = 0.5 if self.quick else 1.0
        for metric, rate, nonblocking, work, target in configs:
            if work is None:
                work = long_work
            iterations = max(100, int(work / per_iter))
            alone = []
            paired = {t.name: [] for t in tools}
            under = {t.name: [] for t in tools}
            errors = {t.name: None for t in tools}
            coverage = {t.name: [] for t in tools}
            skip = set()
            # The noisiest metric: more repetitions than the others.
            reps = self.reps if self.quick or self.args.reps else 5
            for rep in range(reps):
                for tool in self.order(rep, tools):
                    if tool.name in skip:
                        continue
                    base = self.fixed_work_run(python, None, iterations, 0, False, 0)[0]
                    alone.append(base)
                    try:
                        elapsed, run, facts = self.fixed_work_run(
                            python, tool, iterations, rate, nonblocking, attach_wait
                        )
                    except BenchError as e:
                        errors[tool.name] = "%s failed: %s" % (tool.name, e)
                        if tool.name == "py-spy" and UNSUPPORTED.search(str(e)):
                            errors[tool.name] = "py-spy cannot read Python %s (%s)" % (python.label, e)
                        skip.add(tool.name)
                        continue
                    self.note_run(metric, python, tool, run, alone_s=base, **facts)
                    under[tool.name].append(elapsed)
                    paired[tool.name].append((elapsed / base - 1) * 100)
                    coverage[tool.name].append(facts["coverage"])
                    # A run that takes very long (py-spy pausing at 1000 Hz is
                    # ~100x slower) is not repeated.
                    if elapsed > 30:
                        skip.add(tool.name)
            # Noise floor: how much consecutive runs alone differ.
            floor = [abs(b / a - 1) * 100 for a, b in zip(alone, alone[1:])]
            floor_note = "; alone-vs-alone %.0f%%" % statistics.median(floor) if floor else ""
            cells = {}
            for name in paired:
                vals = paired[name]
                note = None
                if vals:
                    note = "%.2f s vs %.2f s [%.2f–%.2f] alone%s" % (
                        statistics.median(under[name]), statistics.median(alone), min(alone), max(alone),
                        floor_note)
                    if coverage[name]:
                        note += ", %.0f%% of expected samples" % (statistics.median(coverage[name]) * 100)
                    if len(vals) < reps:
                        note += ", %d run(s)" % len(vals)
                cells[name] = Cell(vals, errors[name], note, extra={"alone_s": alone, "under_s": under[name],
                                                                    "noise_floor_pct": floor})
            # A ratio of two percentages near zero means nothing.
            self.add(Row(metric, python.label, "%", cells["pysampler"], cells["py-spy"], target, fmt="{:+.1f}",
                         ratio=False, tach=cells.get("Tachyon")))
            if rate == 1000 and not nonblocking:
                self.add(self.floor_slowdown(python, metric, iterations, rate, attach_wait, reps))

    def floor_slowdown(self, python, metric, iterations, rate, attach_wait, reps):
        """The slowdown pausing alone causes: the same paired runs under
        examples/tick_floor pausing the fixture's thread at `rate` as the
        pausing sampler does, reading nothing."""
        floor = PauseFloor(self.args.tick_floor)
        paired, error = [], None
        for _ in range(reps):
            base = self.fixed_work_run(python, None, iterations, 0, False, 0)[0]
            try:
                elapsed, run, _ = self.fixed_work_run(python, floor, iterations, rate, False, attach_wait)
            except BenchError as e:
                error = "tick_floor failed: %s" % e
                break
            self.runs.append({"metric": metric + ", pausing floor", "argv": run.argv, "rc": run.rc,
                              "cpu_s": run.cpu, "wall_s": run.wall, "alone_s": base, "work_s": elapsed})
            if run.rc != 0:
                error = run.failure()
                break
            paired.append((elapsed / base - 1) * 100)
        return Row(metric + ", pausing floor (examples/tick_floor pause PID: pauses the fixture each tick,"
                   " reads nothing)", python.label, "%", Cell(paired, error),
                   Cell([], "not reported (the same for both tools)"), fmt="{:+.1f}", ratio=False)

    def peak_rss(self, python):
        """Peak RSS of `record -f flamegraph` over 10,000 distinct stacks, at
        two lengths (flat = the longer one is no bigger); --long adds
        1,000,000 samples. With --nolineno (both tools): a frame caught at
        its first instruction shows its `def` line, which would multiply the
        fixture's stacks by the lines each frame can show."""
        rate = 1000 if self.quick else 5000
        durations = [1, 3] if self.quick else [4, 12]
        if self.args.long:
            durations.append(200)  # 1,000,000 samples at 5,000 Hz
        # How many distinct stacks a recording of the shorter length sees.
        pys = self.tools[0]
        run, facts = self.record_on(
            python, pys, "distinct stacks", "bench_many_stacks.py", [durations[0] * 40 + 30], rate, durations[0],
            nonblocking=True, nolineno=True,
        )
        stacks = facts["distinct_stacks"]
        log("    %d distinct stacks in %d samples (pysampler, %d s)" % (stacks, facts["samples"], durations[0]))
        results = {t.name: {d: [] for d in durations} for t in self.tools}
        samples = {t.name: {d: [] for d in durations} for t in self.tools}
        errors = {t.name: None for t in self.tools}
        for d in durations:
            reps = 1 if d > 60 else self.reps
            for rep in range(reps):
                for tool in self.order(rep):
                    metric = "peak RSS, record -f flamegraph, 10,000 stacks"
                    run, facts = self.record_on(
                        python, tool, metric, "bench_many_stacks.py", [d * 40 + 30], rate, d,
                        fmt="flamegraph", nonblocking=True, nolineno=True, peak_rss=True,
                    )
                    peak = peak_rss_kb(run)
                    if run.rc != 0 or peak is None:
                        errors[tool.name] = self.failed(tool, python, run)
                        continue
                    results[tool.name][d].append(peak / 1024)
                    summary = tool.summary(run)
                    samples[tool.name][d].append(summary.get("samples"))
        for d in durations:
            cells = {}
            for name in results:
                vals = results[name][d]
                got = [s for s in samples[name][d] if s]
                note = "%s samples" % format(int(statistics.median(got)), ",") if got else None
                cells[name] = Cell(vals, errors[name] if not vals else None, note)
            self.add(
                Row("peak RSS, record -f flamegraph --nonblocking -r %d -d %d, %s distinct stacks"
                    % (rate, d, format(stacks, ",")),
                    python.label, "MiB", cells["pysampler"], cells["py-spy"], "≤ 30 MB, flat")
            )
        # Flatness: growth from the shortest to the longest run.
        cells = {}
        for name in results:
            first, last = results[name][durations[0]], results[name][durations[-1]]
            if first and last:
                growth = statistics.median(last) - statistics.median(first)
                cells[name] = Cell([growth], None, "%d s vs %d s" % (durations[-1], durations[0]))
            else:
                cells[name] = Cell([], errors[name] or "no runs")
        row = Row("peak RSS growth, longest vs shortest run", python.label, "MiB", cells["pysampler"],
                  cells["py-spy"], "≈ 0", fmt="{:+.1f}", ratio=False)
        self.rows.append(row)
        log("  %s | pysampler %s | py-spy %s" % (row.metric, row.show(row.ps), row.show(row.spy)))

    def threads(self, python, nonblocking):
        """Extra CPU per idle thread per sample: CPU per sample with 1 busy +
        99 sleeping threads less CPU per sample with the busy thread alone,
        divided by 99; without and with --idle. Samples are the busy thread's
        (stacks through busy_leaf), i.e. ticks."""
        mode = "--nonblocking" if nonblocking else "pausing"
        rate = 100
        duration = 1 if self.quick else 2
        n = 100
        configs = [("1", 1, False), ("100", n, False), ("100 --idle", n, True)]
        per = {t.name: {c[0]: [] for c in configs} for t in self.tools}
        errors = {t.name: None for t in self.tools}
        for rep in range(self.reps):
            for key, count, idle in configs:
                for tool in self.order(rep):
                    run, facts = self.record_on(
                        python, tool, "threads", "bench_threads.py", [duration * 80 + 30, count], rate, duration,
                        marker="busy_leaf", nonblocking=nonblocking, idle=idle,
                    )
                    ticks = facts["marked_samples"]
                    if run.rc != 0 or not ticks:
                        errors[tool.name] = self.failed(tool, python, run)
                        continue
                    per[tool.name][key].append(run.cpu / ticks * 1e6)
        for key, label in (("100", "default (idle threads left out)"), ("100 --idle", "--idle")):
            cells = {}
            for name in per:
                one = per[name]["1"]
                many = per[name][key]
                if one and many:
                    extra = (statistics.median(many) - statistics.median(one)) / (n - 1)
                    note = "%.0f µs/sample with %d threads vs %.0f with 1" % (
                        statistics.median(many), n, statistics.median(one))
                    cells[name] = Cell([extra], None, note, extra={"one": one, "many": many})
                else:
                    cells[name] = Cell([], errors[name] or "no runs")
            self.add(
                Row("extra CPU per idle thread per sample, %d threads, %s, -r %d, %s" % (n, mode, rate, label),
                    python.label, "µs", cells["pysampler"], cells["py-spy"], "≤ 2 µs", fmt="{:.2f}")
            )

    def attach(self, python):
        """Time from spawning `dump --pid` to its exit, on a live 100-deep
        busy process: an upper bound of attach-to-first-sample (neither tool
        reports when its first sample is taken)."""
        reps = 2 if self.quick else 5
        wall = {t.name: [] for t in self.tools}
        cpu = {t.name: [] for t in self.tools}
        errors = {t.name: None for t in self.tools}
        with Target(python, "deep_busy.py", 600) as target:
            for rep in range(reps):
                for tool in self.order(rep):
                    run = run_profiler(tool.dump(target.pid), timeout=60)
                    self.note_run("attach (dump)", python, tool, run)
                    if run.rc != 0 or "leaf" not in run.stdout:
                        errors[tool.name] = self.failed(tool, python, run)
                        continue
                    wall[tool.name].append(run.wall * 1000)
                    cpu[tool.name].append(run.cpu * 1000)
        cells = {}
        for name in wall:
            note = "CPU %.0f ms" % statistics.median(cpu[name]) if cpu[name] else None
            cells[name] = Cell(wall[name], errors[name], note)
        self.add(Row("attach: spawn to exit of `dump --pid` (upper bound of first sample)", python.label, "ms",
                     cells["pysampler"], cells["py-spy"], "≤ 50 ms", fmt="{:.0f}"))

    # -- Tachyon (issue 26) ------------------------------------------------------

    TACHYON_RATES = [1000, 10000, 50000, 100000]

    def tachyon_rows(self, python):
        """CPython 3.15's own sampler beside pysampler and py-spy, all three
        non-blocking, on the 100-deep busy stack (deep_busy.py), tools
        interleaved (order alternating between repetitions). Per rate:
        marginal CPU per sample = (CPU of a D s run less CPU of a 1 s run)
        / (sample difference), CPU from wait4 of the profiler; delivered =
        samples of the D s run / (rate x sampling seconds), the sampling
        seconds being max(D, wall less the tool's start-up and shutdown), as
        in `max_rate`: py-spy's -d counts samples (rate x D), so falling
        behind shows as a longer run, not as fewer samples. The fixture lives
        2 D + 20 s, which bounds such a run. Then the target's slowdown at
        1,000 Hz (the fixed-work fixture timed alone and under each tool, as
        `slowdown`). Tachyon reads only its own minor version: 3.15 only."""
        if python.label != "3.15":
            log("  Tachyon rows: Python 3.15 only (Tachyon attaches to its own minor version), not %s" % python.label)
            return
        tools = self.tools + [Tachyon(python.root)]
        duration = self.args.tachyon_seconds or (2 if self.quick else 5)
        short = 1
        overhead = {}
        with ProcInRoot(python.root):
            # Each tool's start-up + shutdown: wall less duration of a 1 s run
            # at 100 Hz, a rate every tool keeps up with (py-spy on 3.15 falls
            # behind already at 1,000 Hz, which would count as start-up).
            for tool in tools:
                run, facts = self.record_on(python, tool, "tachyon rows, start-up, -r 100 -d 1", "deep_busy.py",
                                            [30], 100, 1, nonblocking=True)
                if run.rc == 0 and facts["samples"]:
                    overhead[tool.name] = max(0.0, run.wall - 1)
            for rate in self.TACHYON_RATES:
                cells = {t.name: {"marginal": [], "delivered": [], "samples": [], "cpu": [], "err": None,
                                  "wall": [], "leaf": [], "short_walls": []}
                         for t in tools}
                for rep in range(self.reps):
                    for tool in self.order(rep, tools):
                        c = cells[tool.name]
                        got = {}
                        for d in (duration, short):
                            run, facts = self.record_on(
                                python, tool, "tachyon rows, -r %d -d %d" % (rate, d), "deep_busy.py",
                                [d * 2 + 20], rate, d, marker="leaf", nonblocking=True,
                            )
                            if run.rc != 0 or facts["samples"] == 0:
                                c["err"] = self.failed(tool, python, run)
                                break
                            got[d] = (run, facts)
                        if len(got) < 2:
                            continue
                        (run, facts), (run1, facts1) = got[duration], got[short]
                        c["short_walls"].append(run1.wall)
                        c["wall"].append(run.wall)
                        c["leaf"].append(facts["marked_samples"] / facts["samples"] * 100)
                        if tool.name not in overhead:  # its 100 Hz run failed: the 1 s run at this rate
                            overhead[tool.name] = max(0.0, run1.wall - short)
                        sampling = max(duration, run.wall - overhead[tool.name])
                        c["delivered"].append(facts["samples"] / (rate * sampling) * 100)
                        c["samples"].append(facts["samples"])
                        c["cpu"].append(run.cpu)
                        extra = facts["samples"] - facts1["samples"]
                        if extra > 0:
                            c["marginal"].append((run.cpu - run1.cpu) / extra * 1e6)
                        else:
                            # A tool far behind (py-spy here) is cut by the
                            # fixture's exit in both runs: no difference to
                            # take. Said in the cell, with its average cost.
                            c["err"] = (
                                "not measurable: the %d s run took %d samples, the %d s run %d (both ended with "
                                "the fixture, wall %.0f s and %.0f s); CPU ÷ samples of the %d s run %.0f µs"
                                % (short, facts1["samples"], duration, facts["samples"], run1.wall, run.wall,
                                   duration, run.cpu / facts["samples"] * 1e6))
                marginal, delivered = {}, {}
                for name, c in cells.items():
                    note = None
                    if c["samples"]:
                        note = "%s samples, CPU %.2f s, wall %.1f s in the %d s run; %.0f%% with the leaf frame" % (
                            format(int(statistics.median(c["samples"])), ","), statistics.median(c["cpu"]),
                            statistics.median(c["wall"]), duration, statistics.median(c["leaf"]))
                    marginal[name] = Cell(c["marginal"], c["err"] or "no runs", note)
                    dnote = None
                    if c["wall"]:
                        dnote = "wall %.1f s, start-up and shutdown %.1f s" % (
                            statistics.median(c["wall"]), overhead.get(name, 0.0))
                    delivered[name] = Cell(c["delivered"], c["err"] or "no runs", dnote)
                hz = format(rate, ",")
                self.add(Row("CPU per sample, marginal (%d s run less %d s run), --nonblocking, 100-deep stack, "
                             "-r %s" % (duration, short, hz), python.label, "µs", marginal["pysampler"],
                             marginal["py-spy"], tach=marginal["Tachyon"]))
                self.add(Row("delivered: samples / (rate × sampling s, ≥ %d s), --nonblocking, -r %s" % (duration, hz),
                             python.label, "%", delivered["pysampler"], delivered["py-spy"],
                             lower_is_better=False, fmt="{:.1f}", tach=delivered["Tachyon"]))
            self.slowdown(
                python,
                configs=[("target slowdown, --nonblocking, -r 1000 (Tachyon rows)", 1000, True, None, "≤ 1%")],
                tools=tools,
                # Tachyon starts an interpreter before it attaches: give every
                # tool the time to be sampling before the work starts.
                attach_wait=2.0,
            )

    # -- all -------------------------------------------------------------------

    def run(self):
        only = set(self.args.only.split(",")) if self.args.only else None

        def want(name):
            return only is None or name in only

        for python in self.pythons:
            log("=== Python %s ===" % python.label)
            steps = [
                ("cpu", lambda: self.cpu_per_sample(python, True)),
                ("cpu", lambda: self.cpu_per_sample(python, False)),
                ("cpubusy", lambda: self.cpu_per_sample(python, False, others_busy=True)),
                ("rate", lambda: self.max_rate(python)),
                ("cpu100", lambda: self.cpu_at_100hz(python)),
                ("slowdown", lambda: self.slowdown(python)),
                ("threads", lambda: self.threads(python, True)),
                ("attach", lambda: self.attach(python)),
                ("tachyon", lambda: self.tachyon_rows(python)),
            ]
            # Peak RSS measures the aggregation, not the walker: one
            # interpreter is enough (3.12, or the first one given).
            rss_python = "3.12" if any(p.label == "3.12" for p in self.pythons) else self.pythons[0].label
            if python.label == rss_python:
                steps.append(("threads", lambda: self.threads(python, False)))
                steps.append(("rss", lambda: self.peak_rss(python)))
            for name, step in steps:
                if not want(name):
                    continue
                self.section("%s on Python %s" % (name, python.label))
                try:
                    step()
                except BenchError as e:
                    self.failures.append("%s on Python %s: %s" % (name, python.label, e))
                    log("  FAILED: %s" % e)
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------


def render(path):
    """The markdown table (with its header) of a results.json."""
    with open(path) as f:
        data = json.load(f)

    def cell(c):
        return Cell(c["values"], c["error"], c["note"], c.get("extra"))

    rows = []
    for r in data["rows"]:
        fmt = r.get("format")
        if fmt is None:  # files written before the format was saved
            fmt = {"Hz": "{:,.0f}", "ms": "{:.0f}", "%": "{:+.1f}", "% of a core": "{:.2f}"}.get(r["unit"], "{:.1f}")
            if r["metric"].startswith("extra CPU"):
                fmt = "{:.2f}"
            if r["metric"].startswith("peak RSS growth"):
                fmt = "{:+.1f}"
        has_ratio = r.get("has_ratio", not (r["unit"] == "%" or r["metric"].startswith("peak RSS growth")))
        rows.append(Row(r["metric"], r["python"], r["unit"], cell(r["pysampler"]), cell(r["py-spy"]), r["target"],
                        r["lower_is_better"], fmt, has_ratio, cell(r["tachyon"]) if "tachyon" in r else None))
    m = data["machine"]
    return "%s\n%s" % (header_text(m), markdown(rows))


def header_text(info):
    return (
        "Measured %(date)s on %(nproc)s CPUs (%(cpu_model)s), kernel %(kernel)s; "
        "%(pysampler)s vs %(py-spy)s%(tach)s; %(mode)s mode, %(seconds)s s, nice %(nice)s; "
        "load average %(la0)s at the start, %(la1)s at the end.\n"
        "Ratio: how many times better pysampler is (py-spy ÷ pysampler for costs, pysampler ÷ py-spy for rates). "
        "Values: median [min–max] of the repetitions.\n"
        % dict(info, nice=info.get("nice", 0), tach=" and Tachyon (%s)" % info["tachyon"] if "tachyon" in info else "",
               la0="%.2f" % info["loadavg_start"][0],
               la1="%.2f" % info["loadavg_end"][0])
    )


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def set_priority(nice):
    """Nice value for this process and its children; under autogroup
    scheduling, also a new session whose autogroup gets the same value (a
    process nice value alone does not count against other sessions)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            autogroup = f.read().strip() == "1"
    except OSError:
        autogroup = False
    if autogroup and os.getpid() != os.getsid(0):
        if os.getpid() == os.getpgrp():
            # A process-group leader cannot start a session: continue in a child.
            child = os.fork()
            if child:
                _, status = os.waitpid(child, 0)
                sys.exit(os.waitstatus_to_exitcode(status))
        os.setsid()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        if autogroup:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
    except OSError as e:
        sys.exit("bench: cannot set nice %d: %s" % (nice, e))


def sha256(path):
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_state():
    """The commit and whether the work tree differs from it (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return {"commit": head, "modified_files": dirty.splitlines()}
    except OSError:
        return {}


def version_of(argv):
    try:
        out = subprocess.run(argv + ["--version"], capture_output=True, text=True, timeout=30).stdout
        return out.strip().splitlines()[0] if out.strip() else "unknown version"
    except OSError as e:
        return "unavailable: %s" % e


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI smoke: 3.12 only, 1 repetition, short runs")
    ap.add_argument("--long", action="store_true", help="also measure peak RSS after 1,000,000 samples")
    ap.add_argument("--pythons", help="comma-separated, default 3.9,3.12,3.13,3.14 (--quick: 3.12)")
    ap.add_argument("--only", help="comma-separated subset: cpu,cpubusy,rate,cpu100,slowdown,threads,attach,rss,"
                                   "tachyon (tachyon alone: Python 3.15 by default)")
    ap.add_argument("--tachyon-seconds", dest="tachyon_seconds", type=int,
                    help="length of the long run of the Tachyon rows (default 5, --quick 2; the short run is 1 s)")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1)")
    ap.add_argument("--pysampler", default=str(REPO / "target/release/pysampler"))
    ap.add_argument("--tick-floor", dest="tick_floor", default=str(REPO / "target/release/examples/tick_floor"),
                    help="the empty sampling loop whose CPU per tick is the wake floor")
    ap.add_argument("--py-spy", dest="pyspy", default=os.path.expanduser("~/.cache/pysampler/pyspy-venv/bin/py-spy"))
    ap.add_argument("--sid-root", default=os.environ.get("PYSAMPLER_SID_ROOT",
                                                         os.path.expanduser("~/.cache/pysampler/sid-root")))
    ap.add_argument("--out", default=str(REPO / "target/bench"))
    ap.add_argument(
        "--nice", type=int, default=None,
        help="run the harness, the fixtures and both profilers at this nice value (negative needs root). "
             "With the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled = 1) a nice "
             "value only counts within a session, so the harness also starts its own session and gives its "
             "autogroup the same nice value. Off by default: it takes CPU from other work on the machine.",
    )
    ap.add_argument("--render", metavar="RESULTS_JSON", help="print the markdown table of an earlier run and exit")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    if args.nice is not None:
        set_priority(args.nice)

    for exe, what in ((args.pysampler, "pysampler (cargo build --release)"), (args.pyspy, "py-spy (make bench)"),
                      (args.tick_floor, "tick_floor (cargo build --release --example tick_floor)"),
                      (GNU_TIME, "GNU time, for peak RSS (apt-get install time)")):
        if not os.access(exe, os.X_OK):
            sys.exit("bench: %s is missing: %s" % (what, exe))
    default_pythons = "3.12" if args.quick else "3.9,3.12,3.13,3.14"
    if args.only == "tachyon":
        default_pythons = "3.15"  # Tachyon's rows exist on 3.15 only
    labels = (args.pythons or default_pythons).split(",")
    pythons = [find_python(label.strip(), args.sid_root) for label in labels]
    # Run a private copy of the binary: a `cargo build` during the run must
    # not swap it half-way.
    copy_dir = tempfile.mkdtemp(prefix="pysampler-bench-bin-")
    pysampler = os.path.join(copy_dir, "pysampler")
    shutil.copy2(args.pysampler, pysampler)
    args.tick_floor = shutil.copy2(args.tick_floor, os.path.join(copy_dir, "tick_floor"))
    tools = [Tool("pysampler", pysampler), Tool("py-spy", args.pyspy)]
    info = machine()
    info["pysampler"] = version_of([pysampler])
    info["pysampler_binary"] = {
        "path": args.pysampler,
        "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(args.pysampler)).isoformat(timespec="seconds"),
        "sha256": sha256(args.pysampler),
    }
    info["git"] = git_state()
    info["py-spy"] = version_of([args.pyspy])
    if any(p.label == "3.15" for p in pythons):
        info["tachyon"] = "profiling.sampling of " + version_of(["chroot", args.sid_root, "/usr/bin/python3.15"])
    info["mode"] = "quick" if args.quick else ("long" if args.long else "default")
    info["command"] = " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    info["loadavg_start"] = os.getloadavg()
    info["nice"] = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        with open("/proc/self/autogroup") as f:
            info["autogroup"] = f.read().strip()
    except OSError:
        pass
    log("%(nproc)s CPUs, %(cpu_model)s, kernel %(kernel)s; %(pysampler)s vs %(py-spy)s" % info)

    bench = Bench(args, tools, pythons)
    started = time.monotonic()
    bench.run()
    info["loadavg_end"] = os.getloadavg()
    info["seconds"] = round(time.monotonic() - started, 1)

    table = markdown(bench.rows)
    os.makedirs(args.out, exist_ok=True)
    header = header_text(info)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(header + "\n" + table + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(
            {"machine": info, "rows": [r.to_json() for r in bench.rows], "sections": bench.loads,
             "runs": bench.runs, "failures": bench.failures},
            f, indent=1,
        )
    print(header)
    print(text_table(bench.rows))
    print("\nwrote %s/results.md and results.json" % args.out)
    shutil.rmtree(copy_dir, ignore_errors=True)
    if bench.failures:
        print("\nFAILED to produce numbers:", file=sys.stderr)
        for f_ in bench.failures:
            print("  " + f_, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
