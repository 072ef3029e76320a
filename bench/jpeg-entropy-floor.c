/* The floor of "decode every candidate" (issue 19 item 1): libjpeg-turbo's
 * own Huffman decoding of the same JPEG files, timed in CPU seconds. Each
 * file is read into memory first; jpeg_read_coefficients() runs the entropy
 * decoder over every scan (no IDCT, no colour conversion), which is the
 * least work that proves a file's scans decode.
 *   cc -O2 -o jpeg-entropy-floor bench/jpeg-entropy-floor.c -ljpeg
 *   ./jpeg-entropy-floor FILE.jpg...   prints: files bytes cpu_seconds failed
 * Built and run by bench/carve-speed.sh (libjpeg62-turbo-dev). */
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <time.h>
#include <jpeglib.h>

struct err { struct jpeg_error_mgr pub; jmp_buf jump; };

static void on_error(j_common_ptr cinfo) { longjmp(((struct err *)cinfo->err)->jump, 1); }
static void quiet(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int n = argc - 1, failed = 0;
  unsigned char **data = calloc((size_t)n, sizeof *data);
  unsigned long *size = calloc((size_t)n, sizeof *size);
  unsigned long long total = 0;
  for (int i = 0; i < n; i++) {
    FILE *f = fopen(argv[i + 1], "rb");
    if (!f) { perror(argv[i + 1]); return 2; }
    fseek(f, 0, SEEK_END);
    size[i] = (unsigned long)ftell(f);
    fseek(f, 0, SEEK_SET);
    data[i] = malloc(size[i] ? size[i] : 1);
    if (fread(data[i], 1, size[i], f) != size[i]) { perror(argv[i + 1]); return 2; }
    fclose(f);
    total += size[i];
  }
  double t0 = cpu_now();
  for (int i = 0; i < n; i++) {
    struct jpeg_decompress_struct cinfo;
    struct err jerr;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_error;
    jerr.pub.emit_message = quiet;
    if (setjmp(jerr.jump)) { failed++; jpeg_destroy_decompress(&cinfo); continue; }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data[i], size[i]);
    jpeg_read_header(&cinfo, TRUE);
    jpeg_read_coefficients(&cinfo);
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
  }
  double cpu = cpu_now() - t0;
  printf("%d %llu %.3f %d\n", n, total, cpu, failed);
  return 0;
}
