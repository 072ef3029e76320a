#!/usr/bin/env bash
# Seeds for fuzz_jpeg: tiny real JPEGs made by cjpeg from generated 16x16
# and 64x48 pictures — baseline, progressive, optimised tables, restart markers,
# arithmetic coding, greyscale and 4:2:0/4:4:4 sampling — so the fuzzer
# starts inside the decoder instead of at the marker walker.
set -euo pipefail
out=$1
command -v cjpeg >/dev/null || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/in.ppm" "$tmp/in.pgm" <<'PY'
import sys
w = h = 16
rgb = bytes((x * 16 ^ y * 5) & 255 if c == 0 else (y * 16 + c * 40) & 255 if c == 1 else (x * y) & 255
            for y in range(h) for x in range(w) for c in range(3))
open(sys.argv[1], 'wb').write(b'P6 %d %d 255\n' % (w, h) + rgb)
open(sys.argv[2], 'wb').write(b'P5 %d %d 255\n' % (w, h) + bytes((x * 13 + y * 7) & 255 for y in range(h) for x in range(w)))
PY
i=0
for opts in "" "-progressive" "-optimize" "-restart 1" "-arithmetic" "-sample 1x1" "-quality 100 -sample 2x2" "-progressive -restart 1"; do
  i=$((i + 1))
  cjpeg $opts "$tmp/in.ppm" > "$out/rgb$i.jpg" 2>/dev/null || rm -f "$out/rgb$i.jpg"
done
cjpeg -grayscale "$tmp/in.pgm" > "$out/grey.jpg" 2>/dev/null || rm -f "$out/grey.jpg"
# Several MCU rows (64x48): a check that goes on from where a shorter one
# stopped (CheckResume) resumes two rows before the end of its bytes.
python3 - "$tmp/wide.ppm" <<'PY'
import sys
w, h = 64, 48
open(sys.argv[1], 'wb').write(b'P6 %d %d 255\n' % (w, h) + bytes((x * 16 ^ y * 5) & 255 if c == 0 else (y * 16 + c * 40) & 255 if c == 1 else (x * y) & 255
                                                           for y in range(h) for x in range(w) for c in range(3)))
PY
for opts in "" "-restart 3B" "-sample 1x1"; do
  i=$((i + 1))
  cjpeg $opts "$tmp/wide.ppm" > "$out/rows$i.jpg" 2>/dev/null || rm -f "$out/rows$i.jpg"
done
cjpeg -progressive "$tmp/in.pgm" > "$out/grey-prog.jpg" 2>/dev/null || rm -f "$out/grey-prog.jpg"
exit 0
