#!/usr/bin/env python3
"""Generate python-offsets/<major>.<minor>.toml (the `Layout` of
src/interpreter/layout.rs) from CPython's own headers.

For each interpreter found (pyenv's versions/X.Y.*, newest patch first, then
the Debian sid root at $PYSAMPLER_SID_ROOT, default ~/.cache/pysampler/sid-root,
run through chroot), a C probe including Python.h and the internal headers
printf's the offsetof()/sizeof() values in FIELDS and DEBUG_FIELDS; it is built
with the host gcc and run. VARIANTS are other builds of a minor that must give
the same table; one that differs is written as a patch-level `X.Y.Z.toml`.

    python3 python-offsets/generate.py              # (re)write the tables
    python3 python-offsets/generate.py --check      # diff against committed: 0 same, 1 differ, 2 missing
    python3 python-offsets/generate.py --only 3.12  # restrict (repeatable / comma-separated)
    python3 python-offsets/generate.py --minors     # the supported minor versions

The minor versions are the core crate's (SUPPORTED in
crates/pysampler-core/src/interpreter/families.rs, the one place they are
listed). --check compares the offsets, not the patch release a table was made
from: a minor's table stands for all its patch releases, so checking it against
3.12.2's headers when it was made from 3.12.1's passes if the offsets agree
(a patch-level override, X.Y.Z.toml, is by definition for that patch only).

Standard library only.
"""
import argparse, difflib, glob, os, re, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES_RS = os.path.join(HERE, "..", "crates", "pysampler-core", "src", "interpreter", "families.rs")


def supported_minors():
    """["2.7", "3.6", ...]: the `supported(X, Y, ...)` rows of the core crate's
    SUPPORTED table."""
    with open(FAMILIES_RS) as f:
        rows = re.findall(r"^\s*supported\((\d+),\s*(\d+),", f.read(), re.M)
    if not rows:
        sys.exit("error: no supported(X, Y, ...) rows in %s" % FAMILIES_RS)
    return ["%s.%s" % row for row in rows]


# Free-threaded builds (--disable-gil) have a table of their own, "3.13t":
# where each is installed (scripts/build-python313t.sh builds 3.13t).
FREE_THREADED = {
    "3.13t": os.environ.get("PYSAMPLER_PY313T") or os.path.expanduser("~/.cache/pysampler/py313t"),
}
MINORS = supported_minors() + sorted(FREE_THREADED)
VARIANTS = {"3.11": ["/usr/bin/python3.11"]}  # Debian's system 3.11 vs pyenv's
SID_ROOT = os.environ.get("PYSAMPLER_SID_ROOT") or os.path.expanduser("~/.cache/pysampler/sid-root")

# Version ranges, inclusive: "3.7-3.11", "3.12-" (and later), "-3.10" (and
# earlier), "3.0-" is every 3.x, "*" is everything, "2.7" is just that minor.
# Headers to include after Python.h.
HEADERS = [
    ("-3.10", "frameobject.h"), ("-3.10", "code.h"), ("-3.10", "longintrepr.h"),
    ("3.7", "internal/pystate.h"),
    ("3.8", "internal/pycore_pystate.h"),
    ("3.9-", "internal/pycore_runtime.h"), ("3.9-", "internal/pycore_interp.h"),
    ("3.10-", "internal/pycore_moduleobject.h"),
    ("3.11-3.13", "internal/pycore_frame.h"),
    ("3.11-", "internal/pycore_object.h"),
    ("3.14-", "internal/pycore_interpframe_structs.h"),
    ("3.11-", "internal/pycore_dict.h"),
    ("3.12-", "internal/pycore_gil.h"),
    ("3.12-", "internal/pycore_long.h"),
    ("3.14-", "internal/pycore_debug_offsets.h"),  # 3.13 has it in pycore_runtime.h
]

# Extra C declarations after the headers.
PRELUDES = [
    ("3.0-", """\
/* Which bit of PyASCIIObject.state a bit field starts at: set it alone to 1
   in a zeroed object and find the bit (gcc lays bit fields out; no header
   says where). */
#include <string.h>
#define STATE_BIT(field) ({ PyASCIIObject o; memset(&o, 0, sizeof o); o.state.field = 1; \
    unsigned int w; memcpy(&w, (char *)&o + offsetof(PyASCIIObject, state), 4); __builtin_ctz(w); })
"""),
    ("3.11-", """\
/* Where a managed-dict object (3.11+) keeps its dict or values pointer, before
   the object: the header's own accessor asked about a fake object whose type
   has the flag the accessor asserts (3.12 has no macro for the place). */
static PyTypeObject managed_type;
static PyObject managed_objects[8];
static PyObject *managed_object(void) {
    managed_type.tp_flags = Py_TPFLAGS_MANAGED_DICT;
    Py_SET_TYPE(&managed_objects[7], &managed_type);
    return &managed_objects[7];
}
#define BEFORE_OBJECT(pointer) ((char *)managed_object() - (char *)(pointer))
"""),
    ("3.6-3.10", """\
/* PyDictKeysObject / PyDictKeyEntry live in Objects/dict-common.h, which is not
   installed before 3.11: an equivalent declaration (3.6 spells dk_indices as a
   union of arrays, same offset). */
struct _dictkeysobject {
    Py_ssize_t dk_refcnt; Py_ssize_t dk_size; void *dk_lookup;
    Py_ssize_t dk_usable; Py_ssize_t dk_nentries; char dk_indices[];
};
typedef struct { Py_hash_t me_hash; PyObject *me_key; PyObject *me_value; } PyDictKeyEntry;
"""),
]

# FutureObj / TaskObj byte offsets (x86_64), which no installed header
# declares. How they were verified: in each interpreter a Task was created and
# its bytes read with ctypes.string_at(id(task), type(task).__basicsize__);
# the pointer fields were matched against id() of the loop, coroutine, name
# and the future the task waits on, the scalars by diffing the bytes around
# set_result / cancel, and the totals against __basicsize__ (3.12.1: 176,
# 3.13.0: 144, 3.14.10 and 3.15.2: 168). On 3.14+ the same values are also
# published in the `.AsyncioDebug` section, which pysampler reads at run time
# for the fields it carries (name, coro, awaited_by, is_task, node).
# tests/it/asyncio.rs checks them against live tasks on every run.
#   fut_loop: the loop; state: fut_state (int: 0 pending, 1 cancelled, 2 finished);
#   fut_waiter: the future the task is blocked on; coro; name (a str, or an
#   int N meaning "Task-N"); awaited_by (3.14+: NULL, one awaiter or a set),
#   is_task / awaited_by_is_set (chars); node: the llist_node of the
#   per-thread task list (3.14+).
#   basicsize (3.8-3.11): `_asyncio.Task.__basicsize__` the offsets are for,
#   checked at run time against the target's; shifted_basicsize (3.10): an
#   earlier 3.10 patch release, before bpo-45924 added fut_exception_tb in
#   2022, has a TaskObj 8 bytes smaller whose fields after fut_loop are all
#   8 bytes lower: chosen at run time by the live basicsize, not the patch.
# 3.8.18 144, 3.9.18 184, 3.10.13 192, 3.11.7 and Debian's 3.11.2 176 were
# verified as above (pending, finished and cancelled states included).
TASK_LAYOUTS = {
    "3.8": dict(fut_loop=16, state=72, fut_waiter=104, coro=112, name=120, basicsize=144),
    "3.9": dict(fut_loop=16, state=80, fut_waiter=144, coro=152, name=160, basicsize=184),
    "3.10": dict(fut_loop=16, state=88, fut_waiter=152, coro=160, name=168, basicsize=192,
                 shifted_basicsize=184),
    "3.11": dict(fut_loop=16, state=88, fut_waiter=128, coro=136, name=144, basicsize=176),
    "3.12": dict(fut_loop=16, state=88, fut_waiter=128, coro=136, name=144),
    "3.13": dict(fut_loop=16, state=96, fut_waiter=112, coro=120, name=128),
    "3.14": dict(fut_loop=16, awaited_by=96, state=104, is_task=108, awaited_by_is_set=109,
                 fut_waiter=120, coro=128, name=136, node=152),
    "3.15": dict(fut_loop=16, awaited_by=96, state=104, is_task=108, awaited_by_is_set=109,
                 fut_waiter=120, coro=128, name=136, node=152),
}

OB_SIZE = "offsetof(PyVarObject, ob_size)"

# (section, field, versions, C expression); order is the TOML order.
FIELDS = [
    ("runtime", "interpreters_head", "3.7-", "offsetof(_PyRuntimeState, interpreters.head)"),
    ("runtime", "tstate_current", "3.7-3.11", "offsetof(_PyRuntimeState, gilstate.tstate_current)"),

    ("interpreter", "next", "*", "offsetof(PyInterpreterState, next)"),
    ("interpreter", "tstate_head", "-3.10", "offsetof(PyInterpreterState, tstate_head)"),
    ("interpreter", "tstate_head", "3.11-", "offsetof(PyInterpreterState, threads.head)"),  # struct pythreads since 3.11
    ("interpreter", "modules", "-3.11", "offsetof(PyInterpreterState, modules)"),
    ("interpreter", "modules", "3.12-", "offsetof(PyInterpreterState, imports.modules)"),
    ("interpreter", "ceval_gil", "3.12-", "offsetof(PyInterpreterState, ceval.gil)"),

    ("gil", "locked", "3.12-", "offsetof(struct _gil_runtime_state, locked)"),
    ("gil", "last_holder", "3.12-", "offsetof(struct _gil_runtime_state, last_holder)"),
    # Free-threaded builds: whether the GIL was turned back on (PYTHON_GIL=1,
    # or an extension that needs it).
    ("gil", "enabled", "3.13t-", "offsetof(struct _gil_runtime_state, enabled)"),

    ("thread", "next", "*", "offsetof(PyThreadState, next)"),
    ("thread", "interp", "*", "offsetof(PyThreadState, interp)"),
    ("thread", "frame", "-3.10", "offsetof(PyThreadState, frame)"),
    ("thread", "cframe", "3.11-3.12", "offsetof(PyThreadState, cframe)"),
    ("thread", "cframe_current_frame", "3.11-3.12", "offsetof(_PyCFrame, current_frame)"),
    ("thread", "current_frame", "3.13-", "offsetof(PyThreadState, current_frame)"),
    ("thread", "thread_id", "*", "offsetof(PyThreadState, thread_id)"),
    ("thread", "native_thread_id", "3.11-", "offsetof(PyThreadState, native_thread_id)"),
    ("thread", "datastack_chunk", "3.11-", "offsetof(PyThreadState, datastack_chunk)"),

    ("frame", "previous", "-3.10", "offsetof(PyFrameObject, f_back)"),
    ("frame", "previous", "3.11-", "offsetof(_PyInterpreterFrame, previous)"),
    ("frame", "code", "-3.10", "offsetof(PyFrameObject, f_code)"),
    ("frame", "code", "3.11-3.12", "offsetof(_PyInterpreterFrame, f_code)"),
    ("frame", "code", "3.13-", "offsetof(_PyInterpreterFrame, f_executable)"),
    ("frame", "lasti", "-3.10", "offsetof(PyFrameObject, f_lasti)"),
    ("frame", "lineno", "-3.10", "offsetof(PyFrameObject, f_lineno)"),
    ("frame", "instr_ptr", "3.11-3.12", "offsetof(_PyInterpreterFrame, prev_instr)"),
    ("frame", "instr_ptr", "3.13-", "offsetof(_PyInterpreterFrame, instr_ptr)"),
    ("frame", "owner", "3.11-", "offsetof(_PyInterpreterFrame, owner)"),
    # Bytes per unit of f_lasti: up to 3.9 it is a byte offset; 3.10 counts
    # code units (PyFrame_GetLineNumber multiplies by sizeof(_Py_CODEUNIT)).
    ("frame", "lasti_unit", "-3.9", "1"),
    ("frame", "lasti_unit", "3.10", "sizeof(_Py_CODEUNIT)"),
    ("frame", "localsplus", "-3.10", "offsetof(PyFrameObject, f_localsplus)"),
    ("frame", "localsplus", "3.11-", "offsetof(_PyInterpreterFrame, localsplus)"),
    ("frame", "size", "-3.10", "sizeof(PyFrameObject)"),
    ("frame", "size", "3.11-", "sizeof(_PyInterpreterFrame)"),
    # The value stack's top, where a suspended coroutine keeps what it awaits
    # (asyncio).
    # 3.8-3.9 `f_stacktop` is a pointer past the top (NULL while running),
    # as 3.14+'s stackpointer; 3.10 keeps a depth beside the stack's base.
    ("frame", "stackpointer", "3.8-3.9", "offsetof(PyFrameObject, f_stacktop)"),
    ("frame", "valuestack", "3.8-3.10", "offsetof(PyFrameObject, f_valuestack)"),
    ("frame", "stackdepth", "3.10", "offsetof(PyFrameObject, f_stackdepth)"),
    ("frame", "state", "3.10", "offsetof(PyFrameObject, f_state)"),
    ("frame", "stacktop", "3.11-3.13", "offsetof(_PyInterpreterFrame, stacktop)"),
    ("frame", "stackpointer", "3.14-", "offsetof(_PyInterpreterFrame, stackpointer)"),

    ("code", "name", "*", "offsetof(PyCodeObject, co_name)"),
    ("code", "qualname", "3.11-", "offsetof(PyCodeObject, co_qualname)"),
    ("code", "filename", "*", "offsetof(PyCodeObject, co_filename)"),
    ("code", "firstlineno", "*", "offsetof(PyCodeObject, co_firstlineno)"),
    ("code", "linetable", "-3.9", "offsetof(PyCodeObject, co_lnotab)"),
    ("code", "linetable", "3.10-", "offsetof(PyCodeObject, co_linetable)"),
    ("code", "code_adaptive", "3.11-", "offsetof(PyCodeObject, co_code_adaptive)"),
    ("code", "firsttraceable", "3.11-", "offsetof(PyCodeObject, _co_firsttraceable)"),
    ("code", "varnames", "-3.10", "offsetof(PyCodeObject, co_varnames)"),
    ("code", "cellvars", "-3.10", "offsetof(PyCodeObject, co_cellvars)"),
    ("code", "freevars", "-3.10", "offsetof(PyCodeObject, co_freevars)"),
    ("code", "localsplusnames", "3.11-", "offsetof(PyCodeObject, co_localsplusnames)"),
    ("code", "localspluskinds", "3.11-", "offsetof(PyCodeObject, co_localspluskinds)"),
    ("code", "argcount", "*", "offsetof(PyCodeObject, co_argcount)"),
    ("code", "posonlyargcount", "3.8-", "offsetof(PyCodeObject, co_posonlyargcount)"),
    ("code", "kwonlyargcount", "3.0-", "offsetof(PyCodeObject, co_kwonlyargcount)"),
    ("code", "nlocals", "*", "offsetof(PyCodeObject, co_nlocals)"),
    ("code", "nlocalsplus", "3.11-", "offsetof(PyCodeObject, co_nlocalsplus)"),
    ("code", "flags", "*", "offsetof(PyCodeObject, co_flags)"),

    ("type", "name", "*", "offsetof(PyTypeObject, tp_name)"),
    ("type", "basicsize", "*", "offsetof(PyTypeObject, tp_basicsize)"),
    ("type", "dictoffset", "*", "offsetof(PyTypeObject, tp_dictoffset)"),
    ("type", "flags", "*", "offsetof(PyTypeObject, tp_flags)"),
    ("type", "base", "*", "offsetof(PyTypeObject, tp_base)"),
    ("type", "heap_cached_keys", "3.0-", "offsetof(PyHeapTypeObject, ht_cached_keys)"),

    ("unicode", "state", "3.0-", "offsetof(PyASCIIObject, state)"),
    # The bits of `state` (free-threaded builds give `interned` a whole byte).
    ("unicode", "kind_shift", "3.0-", "STATE_BIT(kind)"),
    ("unicode", "compact_shift", "3.0-", "STATE_BIT(compact)"),
    ("unicode", "ascii_shift", "3.0-", "STATE_BIT(ascii)"),
    ("unicode", "length", "3.0-", "offsetof(PyASCIIObject, length)"),
    ("unicode", "length", "2.7", "offsetof(PyUnicodeObject, length)"),
    ("unicode", "ascii_size", "3.0-", "sizeof(PyASCIIObject)"),
    ("unicode", "compact_size", "3.0-", "sizeof(PyCompactUnicodeObject)"),
    ("unicode", "data", "2.7", "offsetof(PyUnicodeObject, str)"),
    ("unicode", "char_size", "2.7", "sizeof(Py_UNICODE)"),

    ("bytes", "size", "*", OB_SIZE),
    ("bytes", "sval", "2.7", "offsetof(PyStringObject, ob_sval)"),
    ("bytes", "sval", "3.0-", "offsetof(PyBytesObject, ob_sval)"),

    ("long", "size", "-3.11", OB_SIZE),
    ("long", "size", "3.12-", "offsetof(PyLongObject, long_value.lv_tag)"),
    ("long", "digits", "-3.11", "offsetof(PyLongObject, ob_digit)"),
    ("long", "digits", "3.12-", "offsetof(PyLongObject, long_value.ob_digit)"),
    ("long", "digit_bits", "*", "PyLong_SHIFT"),
    # 3.12+ lv_tag: the digit count shifted past the sign bits (pycore_long.h).
    ("long", "non_size_bits", "3.12-", "NON_SIZE_BITS"),
    ("long", "sign_mask", "3.12-", "SIGN_MASK"),
    ("long", "sign_negative", "3.12-", "SIGN_NEGATIVE"),
    ("long", "int_value", "2.7", "offsetof(PyIntObject, ob_ival)"),

    ("float", "value", "*", "offsetof(PyFloatObject, ob_fval)"),

    ("tuple", "size", "*", OB_SIZE),
    ("tuple", "items", "*", "offsetof(PyTupleObject, ob_item)"),
    ("list", "size", "*", OB_SIZE),
    ("list", "items", "*", "offsetof(PyListObject, ob_item)"),
    # Sets and frozensets (`dump -ll`; asyncio's awaited-by sets): an open
    # table of `mask + 1` entries, key and hash in an order that changed after 2.7.
    ("set", "mask", "*", "offsetof(PySetObject, mask)"),
    ("set", "table", "*", "offsetof(PySetObject, table)"),
    ("set", "used", "*", "offsetof(PySetObject, used)"),
    ("set", "entry_size", "*", "sizeof(setentry)"),
    ("set", "entry_key", "*", "offsetof(setentry, key)"),
    ("set", "entry_hash", "*", "offsetof(setentry, hash)"),

    ("dict", "keys", "3.0-", "offsetof(PyDictObject, ma_keys)"),
    ("dict", "values", "3.0-", "offsetof(PyDictObject, ma_values)"),
    ("dict", "used", "*", "offsetof(PyDictObject, ma_used)"),
    ("dict", "mask", "2.7", "offsetof(PyDictObject, ma_mask)"),
    ("dict", "table", "2.7", "offsetof(PyDictObject, ma_table)"),

    ("dict_keys", "size", "3.0-3.10", "offsetof(PyDictKeysObject, dk_size)"),
    ("dict_keys", "log2_size", "3.11-", "offsetof(PyDictKeysObject, dk_log2_size)"),
    ("dict_keys", "log2_index_bytes", "3.11-", "offsetof(PyDictKeysObject, dk_log2_index_bytes)"),
    ("dict_keys", "kind", "3.11-", "offsetof(PyDictKeysObject, dk_kind)"),
    ("dict_keys", "nentries", "3.0-", "offsetof(PyDictKeysObject, dk_nentries)"),
    ("dict_keys", "indices", "3.0-", "offsetof(PyDictKeysObject, dk_indices)"),
    ("dict_keys", "entry_size", "2.7", "sizeof(PyDictEntry)"),
    ("dict_keys", "entry_size", "3.0-", "sizeof(PyDictKeyEntry)"),
    ("dict_keys", "unicode_entry_size", "3.11-", "sizeof(PyDictUnicodeEntry)"),
    ("dict_keys", "values_items", "3.11-", "offsetof(PyDictValues, values)"),

    # Bytes before the object (see the 3.11- prelude).
    # 8 in every default build; 24 in free-threaded ones (ob_tid, flags,
    # mutex, gc bits and two reference counts come first).
    ("object", "ob_type", "*", "offsetof(PyObject, ob_type)"),
    ("object", "managed_dict_before", "3.11", "BEFORE_OBJECT(_PyObject_ManagedDictPointer(managed_object()))"),
    ("object", "managed_dict_before", "3.12", "BEFORE_OBJECT(_PyObject_DictOrValuesPointer(managed_object()))"),
    ("object", "managed_dict_before", "3.13-", "BEFORE_OBJECT(_PyObject_ManagedDictPointer(managed_object()))"),
    ("object", "values_pointer_before", "3.11", "BEFORE_OBJECT(_PyObject_ValuesPointer(managed_object()))"),

    ("chunk", "previous", "3.11-", "offsetof(_PyStackChunk, previous)"),
    ("chunk", "size", "3.11-", "offsetof(_PyStackChunk, size)"),

    # --- asyncio (dump --async, record --async), 3.8+. ---
    # Up to 3.10 a coroutine points to a frame object (gi_frame, NULL once
    # finished; 3.8-3.9 say "running" in gi_running); 3.11+ embed the frame.
    # (Sets, which hold the task registries, are above, for every version.)
    ("gen", "frame", "3.8-3.10", "offsetof(PyGenObject, gi_frame)"),
    ("gen", "running", "3.8-3.9", "offsetof(PyGenObject, gi_running)"),
    ("gen", "frame_state", "3.11-", "offsetof(PyGenObject, gi_frame_state)"),
    ("gen", "iframe", "3.11-", "offsetof(PyGenObject, gi_iframe)"),
    ("weakref", "object", "3.8-", "offsetof(PyWeakReference, wr_object)"),
    # FutureObj / TaskObj are defined in Modules/_asynciomodule.c, which
    # installs no header: these are literals, verified against live tasks
    # (see TASK_LAYOUTS below and tests/it/asyncio.rs, which checks them).
] + [("task", field, minor, str(value))
     for minor, fields in sorted(TASK_LAYOUTS.items()) for field, value in fields.items()] + [
    # PyModuleObject is private to Objects/moduleobject.c before 3.10; there it
    # is PyObject_HEAD followed by md_dict, i.e. 16 on a 64-bit build.
    ("module", "dict", "-3.9", "sizeof(PyObject)"),
    ("module", "dict", "3.10-", "offsetof(PyModuleObject, md_dict)"),
]

# 3.13+: where the running interpreter publishes a Layout field inside its
# _Py_DebugOffsets; the table stores offsetof(_Py_DebugOffsets, struct.member).
# Each row: Layout section, struct in _Py_DebugOffsets, then fields as
# `field=member` (a bare name is the same on both sides), `@X.Y` = from X.Y on.
DEBUG_TABLE = """
runtime      runtime_state      interpreters_head
interpreter  interpreter_state  next tstate_head=threads_head modules=imports_modules ceval_gil
thread       thread_state       next interp current_frame thread_id native_thread_id datastack_chunk
frame        interpreter_frame  previous code=executable instr_ptr localsplus owner size
code         code_object        filename name qualname linetable firstlineno argcount
code         code_object        localsplusnames localspluskinds code_adaptive=co_code_adaptive
type         type_object        name=tp_name flags=tp_flags basicsize=tp_basicsize@3.15
type         type_object        dictoffset=tp_dictoffset@3.15
type         heap_type_object   heap_cached_keys=ht_cached_keys@3.15
tuple        tuple_object       items=ob_item size=ob_size
list         list_object        items=ob_item size=ob_size
dict         dict_object        keys=ma_keys values=ma_values
float        float_object       value=ob_fval
long         long_object        size=lv_tag digits=ob_digit
bytes        bytes_object       size=ob_size sval=ob_sval
unicode      unicode_object     state length ascii_size=asciiobject_size
unicode      unicode_object     compact_size=compactunicodeobject_size@3.15
"""


def parse_debug_table(text):
    """[(Layout "section.field", versions, "struct.member")] from DEBUG_TABLE."""
    rows = []
    for line in text.strip().splitlines():
        section, struct, *items = line.split()
        for item in items:
            item, _, since = item.partition("@")
            field, _, member = item.partition("=")
            rows.append(("%s.%s" % (section, field), (since or "3.13") + "-",
                         "%s.%s" % (struct, member or field)))
    return rows


DEBUG_FIELDS = parse_debug_table(DEBUG_TABLE)


def vkey(text):
    return tuple(int(p) for p in text.rstrip("t").split("."))


def in_range(minor, spec):
    """Whether `minor` is in `spec`; a bound with a "t" ("3.13t-") admits
    free-threaded builds only."""
    if spec == "*":
        return True
    if "t" in spec and not minor.endswith("t"):
        return False
    lo, sep, hi = spec.partition("-")
    v = vkey(minor)
    if not sep:
        return minor == lo  # an exact minor: "3.13" is not "3.13t"
    return (not lo or vkey(lo) <= v) and (not hi or v <= vkey(hi))


# --- finding interpreters -------------------------------------------------

QUERY = ("import sys, sysconfig; p = sysconfig.get_paths(); "  # sysconfig exists in 2.7 too
         "print('\\n'.join([p['include'], p['platinclude'], "
         "sysconfig.get_config_var('MULTIARCH') or '', '%d.%d.%d' % sys.version_info[:3]]))")


class Interp:
    def __init__(self, label, argv, root=""):
        self.label, self.argv, self.root, self.error = label, argv, root, None

    def query(self):
        """Asks the interpreter for its include dirs; False (and .error) if it does not run."""
        try:
            out = subprocess.run(self.argv + ["-c", QUERY], capture_output=True, text=True, timeout=60)
        except OSError as e:
            self.error = str(e)
            return False
        if out.returncode != 0:
            self.error = (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
            return False
        self.include, self.platinclude, self.multiarch, self.runtime_version = \
            out.stdout.strip("\n").split("\n")
        return True


def pyenv_root():
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.strip()
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def candidates(minor):
    """Interpreters that can stand for `minor`, preferred first."""
    if minor in FREE_THREADED:
        exe = os.path.join(FREE_THREADED[minor], "bin", "python" + minor)
        yield Interp("build " + FREE_THREADED[minor], [exe])
        return
    dirs = [d for d in glob.glob(os.path.join(pyenv_root(), "versions", minor + ".*"))
            if os.path.basename(d).replace(".", "").isdigit()]
    for d in sorted(dirs, key=lambda d: vkey(os.path.basename(d)), reverse=True):
        yield Interp("pyenv " + os.path.basename(d), [os.path.join(d, "bin", "python" + minor)])
    if os.path.exists(os.path.join(SID_ROOT, "usr/bin/python" + minor)):
        yield Interp("sid root " + SID_ROOT, ["chroot", SID_ROOT, "/usr/bin/python" + minor],
                     root=SID_ROOT)


def find(minor, interps):
    """The first interpreter that runs, or None after reporting why none did."""
    tried = []
    for interp in interps:
        if interp.query():
            return interp
        tried.append("%s: %s" % (interp.label, interp.error))
    where = "; ".join(tried) or "nothing in %s/versions/%s.* nor %s/usr/bin/python%s" % (
        pyenv_root(), minor, SID_ROOT, minor)
    print("missing: no usable CPython %s interpreter (%s)" % (minor, where), file=sys.stderr)
    return None


# --- the probe ------------------------------------------------------------

def probe_source(minor):
    lines = ["#define Py_BUILD_CORE 1", "#include <stddef.h>", "#include <stdio.h>",
             '#include "Python.h"']
    lines += ['#include "%s"' % h for spec, h in HEADERS if in_range(minor, spec)]
    lines += [text for spec, text in PRELUDES if in_range(minor, spec)]
    lines += ['#define P(name, expr) printf("%s %llu\\n", name, (unsigned long long)(expr))',
              "int main(void) {",
              '    printf("version %d.%d.%d\\n", PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_MICRO_VERSION);']
    lines += ['    P("%s.%s", %s);' % (section, field, expr)
              for section, field, spec, expr in FIELDS if in_range(minor, spec)]
    lines += ['    P("debug_offsets.%s", offsetof(_Py_DebugOffsets, %s));' % (key, path)
              for key, spec, path in DEBUG_FIELDS if in_range(minor, spec)]
    return "\n".join(lines + ["    return 0;", "}", ""])


def run_probe(minor, interp, workdir):
    """Compiles and runs the probe; returns (header version, [("section.field", value)])."""
    src = os.path.join(workdir, "probe%s.c" % minor.replace(".", "_"))
    with open(src, "w") as f:
        f.write(probe_source(minor))
    flags = []
    for d in dict.fromkeys([interp.include, interp.platinclude]):
        flags += ["-I", interp.root + d]
    if interp.root and interp.multiarch:
        # Debian's pyconfig.h is a wrapper doing #include <MULTIARCH/pythonX.Y/pyconfig.h>;
        # point just that prefix into the root (not the root's libc headers).
        shim = os.path.join(workdir, "shim" + minor)
        os.makedirs(shim, exist_ok=True)
        link = os.path.join(shim, interp.multiarch)
        if not os.path.lexists(link):
            os.symlink(os.path.join(interp.root, "usr/include", interp.multiarch), link)
        flags += ["-I", shim]
    cc = subprocess.run(["gcc", "-w", "-o", src[:-2], src] + flags, capture_output=True, text=True)
    if cc.returncode != 0:
        print("error: probe for %s (%s) did not compile:\n%s" % (minor, interp.label, cc.stderr[-4000:]),
              file=sys.stderr)
        sys.exit(3)
    out = subprocess.run([src[:-2]], capture_output=True, text=True, check=True).stdout
    pairs = [line.split(" ", 1) for line in out.splitlines()]
    return pairs[0][1], [(k, int(v)) for k, v in pairs[1:]]


def render(version, values):
    lines = ["# generated by python-offsets/generate.py from CPython %s headers; do not edit"
             % version, 'version = "%s"' % version]
    section = None
    for key, value in values:
        head, _, field = key.partition(".")
        if head != section:
            section = head
            lines += ["", "[%s]" % section]
        lines.append(('"%s" = %d' if head == "debug_offsets" else "%s = %d") % (field, value))
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------

def generate(minors, outdir, workdir):
    """Writes the tables into outdir. Returns (names written, minors missing,
    minors whose variants were all compared, so an override left over is stale)."""
    written, missing, complete = [], [], []
    for minor in minors:
        interp = find(minor, candidates(minor))
        if interp is None:
            missing.append(minor)
            continue
        version, values = run_probe(minor, interp, workdir)
        if version != interp.runtime_version:
            print("note: %s headers say %s, interpreter says %s"
                  % (interp.label, version, interp.runtime_version), file=sys.stderr)
        written.append(minor + ".toml")
        with open(os.path.join(outdir, written[-1]), "w") as f:
            f.write(render(version, values))
        print("%-12s %s (%s)" % (written[-1], version, interp.label), file=sys.stderr)
        found = [find(minor, [Interp(path, [path])]) for path in VARIANTS.get(minor, [])]
        for other in filter(None, found):
            vversion, vvalues = run_probe(minor, other, workdir)
            if vvalues == values:
                print("  %s (%s) gives the same table" % (other.label, vversion), file=sys.stderr)
                continue
            written.append(vversion + ".toml")
            with open(os.path.join(outdir, written[-1]), "w") as f:
                f.write(render(vversion, vvalues))
            print("  %s (%s) DIFFERS from %s: wrote %s" % (other.label, vversion, version, written[-1]),
                  file=sys.stderr)
        if all(found):
            complete.append(minor)
    return written, missing, complete


def stale_overrides(complete, written, tables):
    """Committed X.Y.Z.toml overrides that the variants no longer call for."""
    names = {os.path.basename(p) for m in complete for p in glob.glob(os.path.join(tables, m + ".*.toml"))}
    return sorted(names - set(written))


def offsets(path):
    """(the table's lines without its header comment and version line, that version)."""
    if not os.path.exists(path):
        return [], None
    lines, version = [], None
    with open(path) as f:
        for line in f:
            if line.startswith("version = "):
                version = line.split("=", 1)[1].strip().strip('"')
            elif not line.startswith("#"):
                lines.append(line)
    return lines, version


def compare(name, committed_dir, generated_dir):
    """True when the committed table `name` has the generated offsets; prints
    the difference (or, for another patch release with the same offsets, a note)."""
    (old, old_version), (new, new_version) = [
        offsets(os.path.join(d, name)) for d in (committed_dir, generated_dir)]
    if old_version is not None and old == new:
        if old_version != new_version:
            print("note: %s: made from %s, checked against %s: same offsets"
                  % (name, old_version, new_version), file=sys.stderr)
        return True
    sys.stdout.writelines(difflib.unified_diff(
        old, new, "committed/%s (%s)" % (name, old_version), "generated/%s (%s)" % (name, new_version)))
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and diff against the committed tables")
    ap.add_argument("--only", action="append", metavar="X.Y",
                    help="only this minor (repeatable, or comma-separated)")
    ap.add_argument("--allow-missing", action="store_true",
                    help="with --check, skip minors whose interpreter is not installed")
    ap.add_argument("--tables", metavar="DIR", default=HERE,
                    help="with --check, the committed tables to compare (default: this directory)")
    ap.add_argument("--minors", action="store_true", help="print the supported minor versions and exit")
    args = ap.parse_args()
    if args.minors:
        print(" ".join(MINORS))
        return 0
    minors = [m for arg in args.only for m in arg.split(",")] if args.only else MINORS
    unknown = [m for m in minors if m not in MINORS]
    if unknown:
        ap.error("unknown minor(s) %s; known: %s" % (", ".join(unknown), " ".join(MINORS)))

    with tempfile.TemporaryDirectory(prefix="pyoffsets-") as work:
        outdir = os.path.join(work, "out") if args.check else HERE
        os.makedirs(outdir, exist_ok=True)
        written, missing, complete = generate(minors, outdir, work)
        stale = stale_overrides(complete, written, args.tables if args.check else HERE)
        if not args.check:
            for name in stale:
                os.remove(os.path.join(HERE, name))
                print("removed stale override %s" % name, file=sys.stderr)
            if missing:
                print("not regenerated (interpreter missing): %s" % ", ".join(missing), file=sys.stderr)
            return 0
        status = 0
        for name in sorted(written + stale, key=lambda n: vkey(n[:-len(".toml")])):
            if not compare(name, args.tables, outdir):
                status = 1
        if missing and not args.allow_missing:
            print("error: cannot check %s: no interpreter installed for CPython %s "
                  "(install it, or pass --allow-missing to skip)"
                  % (", ".join(m + ".toml" for m in missing), ", ".join(missing)), file=sys.stderr)
            return 2
        skipped = " (skipped, no interpreter: %s)" % ", ".join(missing) if missing else ""
        print(("tables differ" if status else "tables match") + skipped, file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
