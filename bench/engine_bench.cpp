// Embedded engine speed: prompt processing (one 128-token batch) and generation (64 tokens, one
// at a time, after that prompt; best of 3) in tokens/s for random-weight Llama models of ~1M, ~25M and ~125M parameters in F32
// and Q8_0, at 1 and 2 threads. Generation is memory-bound, so each figure is set against the
// bound measured in the same run: bytes of weights read per token ÷ memory bandwidth (a 1 GiB
// memcpy with the same number of threads, counting bytes read + written as STREAM does). The
// bound leaves out the KV cache the attention reads (about 1/10 of the weights' bytes at 125M and
// position 190, f32), so 100% is not quite reachable.
// Usage: engine_bench [--quick] [--sizes 1M,25M,125M] [--json]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "llm/model.h"
#include "llm/weights.h"

using namespace wand;
using namespace wand::llm;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Best of several copies of `bytes` split over `threads`, in bytes moved (read + write) per second.
double copy_bandwidth(std::size_t bytes, int threads) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    std::vector<std::thread> ts;
    std::size_t part = bytes / threads;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] { std::memcpy(dst.data() + t * part, src.data() + t * part, part); });
    for (auto& t : ts) t.join();
    best = std::max(best, 2.0 * bytes / secs(t0, Clock::now()));
  }
  return best;
}

struct Shape {
  std::string name;
  ModelConfig c;
};

ModelConfig config(int dim, int layers, int heads, int kv_heads, int ffn, int vocab) {
  ModelConfig c;
  c.dim = dim, c.layers = layers, c.heads = heads, c.kv_heads = kv_heads, c.ffn = ffn, c.vocab = vocab;
  c.context = 512;
  return c;
}

// Bytes a generated token reads: every layer matrix and the output matrix, plus norm vectors.
std::size_t bytes_per_token(const Model& m) {
  auto mat = [](const Matrix& x) { return x.row_bytes() * static_cast<std::size_t>(x.rows); };
  const auto& c = m.config();
  std::size_t b = mat(m.output()) + m.embeddings().row_bytes() + sizeof(float) * c.dim * (2 * c.layers + 1);
  for (auto& l : m.layers()) b += mat(l.wq) + mat(l.wk) + mat(l.wv) + mat(l.wo) + mat(l.w_gate) + mat(l.w_up) + mat(l.w_down);
  return b;
}

std::size_t parameters(const ModelConfig& c) {
  std::size_t kv = static_cast<std::size_t>(c.dim) / c.heads * c.kv_heads;
  std::size_t layer = 2ull * c.dim * c.dim + 2ull * c.dim * kv + 3ull * c.dim * c.ffn + 2ull * c.dim;
  return layer * c.layers + 2ull * c.vocab * c.dim + c.dim;  // untied output
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, json = false;
  std::string sizes = "1M,25M,125M";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--json") json = true;
    else if (a == "--sizes" && i + 1 < argc) sizes = argv[++i];
    else {
      fmt::print(stderr, "usage: engine_bench [--quick] [--sizes 1M,25M,125M] [--json]\n");
      return 2;
    }
  }
  std::vector<Shape> shapes = {
      {"1M", config(128, 4, 4, 4, 384, 1024)},
      {"25M", config(512, 6, 8, 8, 1408, 8192)},
      {"125M", config(768, 12, 12, 12, 2048, 32000)},
  };
  int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> thread_counts = {1};
  if (hw >= 2) thread_counts.push_back(2);
  int prompt_len = quick ? 32 : 128, gen_len = quick ? 16 : 64, reps = quick ? 1 : 3;

  std::map<int, double> bandwidth;
  for (int t : thread_counts) bandwidth[t] = copy_bandwidth(1u << 30, t);
  if (!json)
    for (int t : thread_counts) fmt::print("memory copy bandwidth, {} thread(s): {:.1f} GB/s\n", t, bandwidth[t] / 1e9);

  auto dir = std::filesystem::temp_directory_path() / fmt::format("wand-engine-bench-{}", getpid());
  std::filesystem::create_directories(dir);
  Json rows = Json::array();
  if (!json)
    fmt::print("\n{:<6} {:>6} {:>5} {:>9} {:>10} {:>10} {:>11} {:>8}\n", "size", "type", "thr", "params", "pp tok/s",
               "tg tok/s", "bound tok/s", "tg/bound");
  for (auto& s : shapes) {
    // Whole entries of the list ("1M" is also a substring of "125M").
    bool wanted = false;
    for (std::size_t p = 0, q; p <= sizes.size(); p = q + 1) {
      q = sizes.find(',', p);
      if (q == std::string::npos) q = sizes.size();
      wanted |= sizes.substr(p, q - p) == s.name;
    }
    if (!wanted) continue;
    auto weights = random_weights(s.c, 7);
    for (TensorType type : {TensorType::F32, TensorType::Q8_0}) {
      std::string path = (dir / fmt::format("{}-{}.gguf", s.name, type_name(type))).string();
      if (auto w = write_model(path, weights, type); !w) {
        fmt::print(stderr, "engine_bench: {}\n", w.error().message);
        return 1;
      }
      auto model = Model::load(path);
      if (!model) {
        fmt::print(stderr, "engine_bench: {}\n", model.error().message);
        return 1;
      }
      std::size_t bpt = bytes_per_token(**model);
      for (int threads : thread_counts) {
        Context ctx(*model, 0, threads);
        std::vector<Token> prompt(prompt_len);
        for (int i = 0; i < prompt_len; ++i) prompt[i] = 3 + (i * 37) % (s.c.vocab - 3);
        (void)ctx.eval(std::span<const Token>(prompt.data(), 4));  // warm up pages and threads
        // Best of `reps` (this machine's neighbours come and go): the prompt as one batch, then
        // greedy generation from it.
        double pp = 0, tg = 0;
        for (int rep = 0; rep < reps; ++rep) {
          ctx.rewind(0);
          auto t0 = Clock::now();
          auto logits = ctx.eval(prompt);
          pp = std::max(pp, prompt_len / secs(t0, Clock::now()));
          if (!logits) {
            fmt::print(stderr, "engine_bench: {}\n", logits.error().message);
            return 1;
          }
          auto t1 = Clock::now();
          for (int i = 0; i < gen_len; ++i) {
            Token t = static_cast<Token>(std::max_element(logits->begin(), logits->end()) - logits->begin());
            logits = ctx.eval(std::span<const Token>(&t, 1));
          }
          tg = std::max(tg, gen_len / secs(t1, Clock::now()));
        }
        double bound = bandwidth[threads] / bpt;
        rows.push_back({{"size", s.name},
                        {"type", type_name(type)},
                        {"threads", threads},
                        {"parameters", parameters(s.c)},
                        {"bytes_per_token", bpt},
                        {"prompt_tokens_per_s", pp},
                        {"generate_tokens_per_s", tg},
                        {"bound_tokens_per_s", bound},
                        {"fraction_of_bound", tg / bound}});
        if (!json)
          fmt::print("{:<6} {:>6} {:>5} {:>8.1f}M {:>10.1f} {:>10.1f} {:>11.1f} {:>7.0f}%\n", s.name, type_name(type),
                     threads, parameters(s.c) / 1e6, pp, tg, bound, 100 * tg / bound);
      }
      std::filesystem::remove(path);
    }
  }
  std::filesystem::remove_all(dir);
  if (json) {
    Json bw = Json::object();
    for (auto& [t, b] : bandwidth) bw[std::to_string(t)] = b;
    fmt::print("{}\n", Json{{"copy_bandwidth_bytes_per_s", bw}, {"results", rows}}.dump(2));
  }
  return 0;
}
