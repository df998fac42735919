# -*- coding: utf-8 -*-
"""Target captured by `fuzz/gen-seeds.sh`: a process that holds still with
varied stacks, for the fuzzing seeds. Runs on 2.7 and 3.6-3.15.

- main thread: <module> -> run -> Holder.outer -> a generator frame ->
  (3.5+) a coroutine frame -> final(), whose locals cover every value type
  the walker prints (small/big/negative ints, float, str of each width, a
  long str, bytes, None, bools, list, dict, tuple, instance, class), plus a
  cell variable, *args and **kwargs; (3.x) a function with a non-ASCII name
  in between;
- "worker-\u00df" (threading, named): 20-deep recursion, then sleeps;
- a thread started with the low-level thread API (no threading name);
- a daemon threading.Thread with the default name.

Once every thread is in place it prints READY and nothing moves again (every
thread stays in time.sleep for good).
"""
import sys
import threading
import time

try:
    import _thread as lowlevel
except ImportError:  # 2.7
    import thread as lowlevel

PY3 = sys.version_info[0] >= 3
ready = threading.Event()
parked = []
lock = threading.Lock()


def park():
    with lock:
        parked.append(1)
    while True:
        time.sleep(100000)


def recurse(depth, label):
    marker = label * 2
    if depth == 0:
        park()
    return recurse(depth - 1, label) + len(marker)


def worker_body():
    recurse(20, "w")


def lowlevel_body(n):
    local_n = n
    park()


class Holder(object):
    def __init__(self):
        self.label = "holder"

    def outer(self, started):
        depth = 1
        for value in self.gen(depth):
            return value

    def gen(self, depth):
        note = "in generator"
        yield step(depth, note)


def final(a, b=2, *args, **kwargs):
    small = 42
    negative = -7
    big = 2 ** 100
    ratio = 2.5
    ascii_text = "plain ascii"
    latin = u"h\u00e9llo"
    wide = u"\u65e5\u672c\u8a9e"
    astral = u"\U0001F600 smile"
    long_text = "x" * 5000
    raw = b"\x00raw\xff"
    nothing = None
    yes = True
    no = False
    items = [1, 2, 3]
    mapping = {"k": 1}
    pair = (1, "two")
    obj = Holder()
    cls = Holder
    captured = "cell"
    inner = lambda: captured
    # Wait until every other thread sleeps, then report and sleep.
    while True:
        with lock:
            if len(parked) >= 3:
                break
        time.sleep(0.01)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        time.sleep(100000)


if PY3:
    namespace = {"final": final}
    exec(
        "async def coro(depth):\n"
        "    inside = 'coroutine'\n"
        "    return \u00fcber(depth)\n"
        "def \u00fcber(depth):\n"
        "    return final(depth, 3, 'extra', key='word')\n"
        "def step(depth, note):\n"
        "    c = coro(depth)\n"
        "    try:\n"
        "        c.send(None)\n"
        "    except StopIteration as stop:\n"
        "        return stop.value\n",
        namespace,
    )
    step = namespace["step"]
else:
    def step(depth, note):
        return final(depth, 3, "extra", key="word")


def run():
    # 2.7 names are byte strings: UTF-8 bytes there, a str on 3.x.
    name = u"worker-\u00df" if PY3 else u"worker-\u00df".encode("utf-8")
    worker = threading.Thread(target=worker_body, name=name)
    worker.daemon = True
    worker.start()
    plain = threading.Thread(target=park)
    plain.daemon = True
    plain.start()
    lowlevel.start_new_thread(lowlevel_body, (5,))
    Holder().outer(ready)


if __name__ == "__main__":
    run()
