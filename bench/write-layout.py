#!/usr/bin/env python3
# A floor for the sparse copy of the zero/data mix (bench/sparsify.bench.js,
# issue 19 item 2): writes a new file with exactly the copy's data runs (at a
# 4 KiB grain: the mix's runs of >= 4 KiB, its 512 B region whole), nothing
# read, no zero detection: runs of at least MIN_DIRECT bytes fallocate'd and
# written O_DIRECT (longer than 4 MiB: in 4 MiB writes), shorter ones through
# the page cache, from THREADS threads taking 8 MiB spans of the file in
# order, then fdatasync. The sequential write of the same number of bytes (dd)
# does not show what the copy's shape costs: 262,144 separate 4 KiB runs are
# as many write requests, whatever writes them. (MIN_DIRECT 0, every run
# O_DIRECT, took 25.8 s here against 6.8 s for 65536: a synchronous 4 KiB
# write and its fallocate per run cost more than the kernel's writeback.)
#
#   python3 bench/write-layout.py FILE SIZE THREADS MIN_DIRECT REGIONS_JSON
#
# REGIONS_JSON: the manifest's mix regions ([{offset, length, grain}]).
# FILE must not exist (O_EXCL). Prints the number of runs and writes as JSON.
import ctypes
import json
import mmap
import os
import sys
import threading

PIECE = 4 << 20
SPAN = 8 << 20
FALLOC_FL_KEEP_SIZE = 1

path, size, nthreads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MIN_DIRECT, regions = int(sys.argv[4]), json.loads(sys.argv[5])
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

runs = []
for r in regions:
    g, start, end = r['grain'], r['offset'], r['offset'] + r['length']
    if g < 4096:  # its 512 B zero runs share 4 KiB blocks with data: all data
        runs += [(o, min(PIECE, end - o)) for o in range(start, end, PIECE)]
    else:  # zero run first, then data, g bytes each
        runs += [(o + g, g) for o in range(start, end, 2 * g)]
spans = {}
for off, ln in runs:
    spans.setdefault(off // SPAN, []).append((off, ln))
todo = iter([spans[k] for k in sorted(spans)])

fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT | os.O_CLOEXEC, 0o644)
cached = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # the runs under MIN_DIRECT
os.ftruncate(fd, size)
buf = mmap.mmap(-1, PIECE)  # page-aligned, as O_DIRECT needs
buf.write(os.urandom(PIECE))
data = memoryview(buf)
lock = threading.Lock()
errors = []


def work():
    try:
        while True:
            with lock:
                span = next(todo, None)
            if span is None or errors:
                return
            for off, ln in span:
                if ln < MIN_DIRECT:
                    if os.pwrite(cached, data[:ln], off) != ln:
                        raise OSError(5, f'short write at {off}')
                    continue
                if libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, off, ln) != 0:
                    raise OSError(ctypes.get_errno(), f'fallocate at {off}')
                if os.pwrite(fd, data[:ln], off) != ln:
                    raise OSError(5, f'short write at {off}')
    except OSError as e:
        errors.append(str(e))


threads = [threading.Thread(target=work) for _ in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit(f'write-layout: {errors[0]}')
os.fdatasync(cached)
print(json.dumps({'runs': len(runs), 'bytes': sum(ln for _, ln in runs), 'threads': nthreads}))
