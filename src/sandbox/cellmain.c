/* The fork-server loop of a cell as a program of its own, for cells that run one program
 * (Options::fork_server false): pid 1 of the cell without a Python interpreter, so the only
 * interpreter that starts is the program's own (`python3 main.py`, exec'd by the loop).
 * Every run isolates itself exactly as in the Python fork-server (cellserver.c's isolate()).
 *
 * argv: [name, seccomp filter in hex, then tmpfs path and options pairs]. fd 3 is the control
 * socket; the "ready" frame (4-byte length, JSON) is the same as the zygote's.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int wand_serve(int ctl, const void* bpf, int bpf_len, const char* const* tmpfs_spec, int n_tmpfs,
               char** payload_out, int* payload_len_out);

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc % 2) return 2;
  size_t n = strlen(argv[1]) / 2;
  unsigned char* bpf = malloc(n ? n : 1);
  for (size_t i = 0; i < n; ++i) {
    int hi = hex_value(argv[1][2 * i]), lo = hex_value(argv[1][2 * i + 1]);
    if (!bpf || hi < 0 || lo < 0) return 2;
    bpf[i] = (unsigned char)(hi << 4 | lo);
  }
  close(4); /* the memfd this program was exec'd from */
  static const char ready[] = "{\"op\":\"ready\",\"fork_server\":false}";
  uint32_t len = sizeof ready - 1;
  if (write(3, &len, 4) != 4 || write(3, ready, len) != (ssize_t)len) return 1;
  char* payload = NULL;
  int payload_len = 0;
  if (wand_serve(3, bpf, (int)n, (const char* const*)argv + 2, (argc - 2) / 2, &payload, &payload_len) != 0)
    return 0; /* the host is gone */
  /* A child asked to run Python code in-process: only a Python fork-server can. */
  static const char msg[] = "this cell has no Python fork-server: Python runs as an exec'd program\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(127);
}
