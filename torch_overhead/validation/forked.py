"""Call a function in a forked child and return its JSON-able result.

The diagnostic measurements of ``noise`` run where asv's
benchmark processes run: in a process forked from one that has already imported torch,
Dynamo and Inductor, so each measurement starts fresh (its own compile, its own place in
memory) without paying the imports again. A failure in the child is reported there and
ends it; the caller's code never runs twice.
"""

import json
import os
import sys


def call(function, *args):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        status = 0
        try:
            with os.fdopen(write_end, "w") as out:
                json.dump(function(*args), out)
        except BaseException as err:  # report it here; never return into the parent's code
            print(f"error in measuring process: {type(err).__name__}: {err}", file=sys.stderr)
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit("error: a measuring process failed (see above)")
    return json.loads(text)
