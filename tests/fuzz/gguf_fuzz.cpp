// libFuzzer target for the GGUF reader and everything that trusts it: parse_gguf over the raw
// bytes (every tensor view must lie inside them; ASan checks the touch), then the whole load
// path (mmap reader, tokenizer from metadata, model shape checks) through a memfd.
// Run: gguf_fuzz CORPUS_DIR -max_total_time=30   (an empty corpus gets a small valid model as seed)
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "llm/gguf.h"
#include "llm/model.h"
#include "llm/weights.h"

using namespace wand::llm;

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // The first argument that is not a flag is the corpus directory; seed it when empty.
  for (int i = 1; i < *argc; ++i) {
    std::filesystem::path dir = (*argv)[i];
    if ((*argv)[i][0] == '-' || !std::filesystem::is_directory(dir)) continue;
    if (std::filesystem::is_empty(dir)) {
      ModelConfig c;
      c.dim = 32, c.layers = 1, c.heads = 2, c.kv_heads = 1, c.ffn = 64, c.vocab = 259 + 13, c.context = 64;
      auto w = random_weights(c, 1);
      (void)write_model((dir / "seed-q8_0.gguf").string(), w, TensorType::Q8_0);
    }
    break;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto image = parse_gguf({data, size}, "fuzz input");
  if (image) {
    volatile uint8_t sink = 0;
    for (auto& t : image->tensors)
      if (t.bytes) sink = sink ^ t.data[0] ^ t.data[t.bytes - 1];
  }
  int fd = memfd_create("gguf", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) == static_cast<ssize_t>(size)) {
    auto model = Model::load("/proc/self/fd/" + std::to_string(fd));
    if (model) (void)(*model)->tokenizer().encode("fuzz 123", true, false);
  }
  close(fd);
  return 0;
}
