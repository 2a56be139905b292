"""The layers of src/ are enforced by the build (CMakeLists.txt, tensorinit_layer): each folder is
compiled against the include roots of the folders it may use, so an include that points up the
stack fails with "No such file or directory". For every pair of folders this preprocesses a file
that includes one header of the other with the flags the build gives the first (from
compile_commands.json): it must succeed exactly where the edges CMake declared allow it (the
build's layers.txt, written from the tensorinit_layer calls; docs/architecture.md).
"""
import json
import os
import shlex
import subprocess
import sys

TESTS_DIR = os.environ["TESTS_DIR"]
TMP = os.environ["TEST_TMP"]
SRC = os.path.join(os.path.dirname(os.path.abspath(TESTS_DIR)), "src")
BUILD = os.path.dirname(os.environ["TENSORINIT"])

failures = 0


def allowed_edges():
    """What each folder may include directly or through what it includes (besides itself): the
    DEPS of its tensorinit_layer call, closed over the DEPS of those."""
    deps = {}
    with open(os.path.join(BUILD, "layers.txt")) as f:
        for line in f:
            name, _, rest = line.partition(":")
            deps[name.strip()] = set(rest.split())
    closed = {}

    def close(layer):
        if layer not in closed:
            closed[layer] = set()
            for d in deps.get(layer, ()):
                closed[layer] |= {d} | close(d)
        return closed[layer]

    return {layer: close(layer) for layer in deps}


ALLOWED = allowed_edges()


def check(what, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else ": " + detail), flush=True)
    if not cond:
        failures += 1


def flags_of(layer, commands):
    """The include and language flags the build compiles `layer`'s sources with."""
    for entry in commands:
        if entry["file"].startswith(os.path.join(SRC, layer) + "/"):
            args = shlex.split(entry["command"])
            keep = []
            for i, a in enumerate(args):
                if a.startswith(("-I", "-D", "-std=")) or a in ("-isystem",) or (i and args[i - 1] == "-isystem"):
                    keep.append(a)
            return [args[0]] + keep
    return None


def main():
    os.makedirs(TMP, exist_ok=True)
    with open(os.path.join(BUILD, "compile_commands.json")) as f:
        commands = json.load(f)
    folders = sorted(d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d)))
    check("every folder of src/ has its edges in layers.txt", set(folders) == set(ALLOWED),
          f"src/ has {folders}, layers.txt {sorted(ALLOWED)}")
    header = {d: sorted(h for h in os.listdir(os.path.join(SRC, d)) if h.endswith(".hpp"))[0] for d in ALLOWED}
    for layer in sorted(ALLOWED):
        flags = flags_of(layer, commands)
        check(f"{layer}: compiled as its own library", flags is not None, "no source of it in compile_commands.json")
        if flags is None:
            continue
        for other in sorted(ALLOWED):
            if other == layer:
                continue
            probe = os.path.join(TMP, f"{layer}_includes_{other}.cpp")
            with open(probe, "w") as f:
                f.write(f'#include "{other}/{header[other]}"\n')
            run = subprocess.run(flags + ["-E", "-o", os.devnull, probe], capture_output=True, text=True)
            if other in ALLOWED[layer]:
                check(f"{layer} may include {other}/", run.returncode == 0, run.stderr[-400:])
            else:
                check(f"{layer} may not include {other}/ (the build fails)",
                      run.returncode != 0 and "No such file or directory" in run.stderr, run.stderr[-400:])
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


main()
