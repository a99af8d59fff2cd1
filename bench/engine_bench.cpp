// Embedded engine speed, alone or against llama.cpp on the same GGUF files.
//
// Each model is measured as llama.cpp's llama-bench measures it, so the two read alike: prompt
// processing is one batch of 128 tokens into an empty cache (pp), generation 64 tokens one at a
// time from an empty cache (tg), both in tokens/s, best of --reps after a warm-up. The models are
// random-weight Llamas written by wand's own writer (1M, 25M, 134M parameters; F32, F16, Q8_0,
// Q4_0), or the GGUF files given with --model.
//
// Without --peer, each generation figure is set against the bound measured in the same run: bytes
// of weights read per token ÷ memory bandwidth (a 1 GiB memcpy with as many threads, counting
// bytes read + written as STREAM does); the KV cache the attention reads is left out, so 100% is
// not quite reachable. With --peer PATH (a llama-bench binary), llama-bench runs right after wand
// on each file and thread count (interleaved, so both see the same neighbours) and each row shows
// wand ÷ llama.cpp. The machine's load average is printed at the start and the end.
// --kv-cache f16|f32|q8 sets both engines' KV cache type (default f16, llama-bench's own default;
// wand's q8 runs llama-bench with q8_0 keys and values, which its CPU path reads only with flash
// attention, so -fa 1).
//
// Usage: engine_bench [--quick] [--sizes 1M,25M,134M] [--types F32,F16,Q8_0,Q4_0] [--threads 1,2]
//                     [--reps N] [--model FILE]... [--peer LLAMA_BENCH] [--kv-cache f16|f32|q8] [--keep DIR] [--json]
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "llm/kernels.h"
#include "llm/model.h"
#include "llm/weights.h"

using namespace wand;
using namespace wand::llm;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

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

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

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

std::size_t parameters(const Model& m) {
  auto mat = [](const Matrix& x) { return static_cast<std::size_t>(x.rows) * x.cols; };
  std::size_t n = mat(m.embeddings()) + (m.output().data != m.embeddings().data ? mat(m.output()) : 0);
  for (auto& l : m.layers()) n += mat(l.wq) + mat(l.wk) + mat(l.wv) + mat(l.wo) + mat(l.w_gate) + mat(l.w_up) + mat(l.w_down);
  return n;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t p = 0, q; p <= s.size(); p = q + 1) {
    q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    if (q > p) out.push_back(s.substr(p, q - p));
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Speed {
  double pp = 0, tg = 0;  // tokens/s, best of the repetitions
};

// wand on `model`, as llama-bench measures: a warm-up, then per repetition the prompt as one batch
// into an empty cache, and `gen` tokens one at a time from an empty cache.
Speed measure_wand(const std::shared_ptr<const Model>& model, int threads, int prompt_len, int gen_len, int reps,
                   CacheType cache) {
  const int vocab = model->config().vocab;
  Context ctx(model, prompt_len + gen_len, threads, cache);
  std::vector<Token> prompt(prompt_len);
  for (int i = 0; i < prompt_len; ++i) prompt[i] = (3 + i * 37) % vocab;
  auto check = [](const auto& r) {
    if (!r) throw std::runtime_error(r.error().message);
  };
  check(ctx.eval(std::span<const Token>(prompt.data(), std::min(prompt_len, 8))));  // pages and threads warm
  Speed s;
  for (int rep = 0; rep < reps; ++rep) {
    ctx.rewind(0);
    auto t0 = Clock::now();
    check(ctx.eval(prompt));
    s.pp = std::max(s.pp, prompt_len / secs(t0, Clock::now()));
    ctx.rewind(0);
    Token t = 1 % vocab;
    auto t1 = Clock::now();
    for (int i = 0; i < gen_len; ++i) {
      auto logits = ctx.eval(std::span<const Token>(&t, 1));
      check(logits);
      t = static_cast<Token>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    }
    s.tg = std::max(s.tg, gen_len / secs(t1, Clock::now()));
  }
  return s;
}

// llama-bench on the same file: its JSON output's best repetition (samples_ts) of the prompt
// test (n_gen 0) and of the generation test (n_prompt 0). Its own defaults otherwise (flash
// attention auto, memory-mapped weights); the KV cache type as wand's.
Speed measure_peer(const std::string& peer, const std::string& path, int threads, int prompt_len, int gen_len,
                   int reps, const std::string& kv) {
  const std::string cache = kv == "q8" ? "-ctk q8_0 -ctv q8_0 -fa 1" : fmt::format("-ctk {} -ctv {}", kv, kv);
  const std::string cmd = fmt::format("{} -m {} -t {} -p {} -n {} -r {} {} -o json 2>/dev/null", shell_quote(peer),
                                      shell_quote(path), threads, prompt_len, gen_len, reps, cache);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + peer);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0)
    throw std::runtime_error(fmt::format("{} failed on {} (exit status {}); run it by hand to see why: {}", peer, path,
                                         WIFEXITED(status) ? WEXITSTATUS(status) : status, cmd));
  Json j = Json::parse(out, nullptr, false);
  if (!j.is_array()) throw std::runtime_error(fmt::format("{}: no JSON array in its output on {}", peer, path));
  Speed s;
  for (const Json& row : j) {
    double best = 0;
    for (const Json& ts : row.value("samples_ts", Json::array())) best = std::max(best, ts.get<double>());
    (row.value("n_gen", 0) == 0 ? s.pp : s.tg) = best;
  }
  return s;
}

struct Bench {
  std::string label;  // "25M" or the file's name
  std::string path;
  bool generated = false;
  ModelConfig config;  // of a generated one
  TensorType type = TensorType::F32;
};

constexpr const char* kUsage =
    "usage: engine_bench [--quick] [--sizes 1M,25M,134M] [--types F32,F16,Q8_0,Q4_0] [--threads 1,2] [--reps N] "
    "[--model FILE]... [--peer LLAMA_BENCH] [--kv-cache f16|f32|q8] [--keep DIR] [--json]\n"
    "Prompt processing (128 tokens) and generation (64) in tokens/s, on random-weight models of the given sizes and\n"
    "types or on --model GGUF files; --peer runs llama.cpp's llama-bench on the same files and prints wand / llama.cpp.\n"
    "Best of --reps (default 3); --quick: 32 and 16 tokens, best of 1. WAND_CPU forces a kernel path.\n";

int usage(const std::string& why) {
  fmt::print(stderr, "engine_bench: {}\n{}", why, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, json = false;
  std::vector<std::string> sizes = {"1M", "25M", "134M"}, types = {"F32", "F16", "Q8_0", "Q4_0"}, models;
  std::vector<int> thread_counts = {1};
  if (std::thread::hardware_concurrency() >= 2) thread_counts.push_back(2);
  std::string peer, keep, kv = "f16";
  int reps = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    std::optional<std::string> v;
    if (a == "-h" || a == "--help") {
      fmt::print("{}", kUsage);
      return 0;
    }
    if (a == "--quick") quick = true;
    else if (a == "--json") json = true;
    else if (a != "--sizes" && a != "--types" && a != "--threads" && a != "--reps" && a != "--model" && a != "--peer" &&
             a != "--keep" && a != "--kv-cache")
      return usage("unknown option '" + a + "'");
    else if (!(v = value()))
      return usage(a + " needs a value");
    else if (a == "--sizes") sizes = split(*v);
    else if (a == "--types") types = split(*v);
    else if (a == "--model") models.push_back(*v);
    else if (a == "--peer") peer = *v;
    else if (a == "--keep") keep = *v;
    else if (a == "--kv-cache") kv = *v;
    else {
      std::vector<int> ns;
      for (auto& s : split(*v)) {
        char* end = nullptr;
        const long n = std::strtol(s.c_str(), &end, 10);
        if (*end || n < 1 || n > 256) return usage(fmt::format("{} {}: '{}' is not a count from 1 to 256", a, *v, s));
        ns.push_back(static_cast<int>(n));
      }
      if (ns.empty()) return usage(a + " needs a value");
      if (a == "--reps") {
        if (ns.size() != 1) return usage("--reps takes one count");
        reps = ns[0];
      } else {
        thread_counts = ns;
      }
    }
  }
  auto cache = parse_cache_type(kv);
  if (!cache) return usage("--kv-cache: " + cache.error().message);
  if (auto path = kernel_path_from_env(); !path) return usage(path.error().message);  // a bad WAND_CPU
  if (!peer.empty() && access(peer.c_str(), X_OK) != 0) return usage("--peer " + peer + ": not an executable file");
  for (auto& m : models)
    if (!fs::is_regular_file(m)) return usage("--model " + m + ": no such file");
  const int prompt_len = quick ? 32 : 128, gen_len = quick ? 16 : 64;
  if (reps == 0) reps = quick ? 1 : 3;

  const std::map<std::string, ModelConfig> shapes = {
      {"1M", config(128, 4, 4, 4, 384, 1024)},
      {"25M", config(512, 6, 8, 8, 1408, 8192)},
      {"134M", config(768, 12, 12, 12, 2048, 32000)},
  };
  std::vector<Bench> benches;
  for (auto& m : models) benches.push_back({fs::path(m).filename().string(), m});
  if (models.empty())
    for (auto& size : sizes) {
      auto shape = shapes.find(size);
      if (shape == shapes.end()) return usage("--sizes: '" + size + "' is none of 1M, 25M, 134M");
      for (auto& t : types) {
        std::optional<TensorType> type;
        for (TensorType k : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0})
          if (t == type_name(k)) type = k;
        if (!type) return usage("--types: '" + t + "' is none of F32, F16, Q8_0, Q4_0");
        benches.push_back({size, "", true, shape->second, *type});
      }
    }

  const fs::path dir = keep.empty() ? fs::temp_directory_path() / fmt::format("wand-engine-bench-{}", getpid())
                                    : fs::path(keep);
  fs::create_directories(dir);
  std::map<int, double> bandwidth;
  if (peer.empty())
    for (int t : thread_counts) bandwidth[t] = copy_bandwidth(1u << 30, t);
  const std::string load_before = load_average();
  if (!json) {
    fmt::print("kernels: {}; load average {}; pp {} tokens, tg {} tokens, best of {}; {} KV cache\n",
               kernel_path_name(kernel_path()), load_before, prompt_len, gen_len, reps, kv);
    for (auto& [t, bw] : bandwidth) fmt::print("memory copy bandwidth, {} thread(s): {:.1f} GB/s\n", t, bw / 1e9);
    if (peer.empty())
      fmt::print("\n{:<16} {:>5} {:>4} {:>8} {:>10} {:>10} {:>11} {:>8}\n", "model", "type", "thr", "params",
                 "pp tok/s", "tg tok/s", "bound tok/s", "tg/bound");
    else
      fmt::print("\npeer: {}\n{:<16} {:>5} {:>4} {:>8} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6}\n", peer, "model", "type",
                 "thr", "params", "wand pp", "llama pp", "pp x", "wand tg", "llama tg", "tg x");
  }
  Json rows = Json::array();
  try {
    for (Bench& b : benches) {
      if (b.generated) {
        b.path = (dir / fmt::format("{}-{}.gguf", b.label, type_name(b.type))).string();
        if (auto w = write_model(b.path, random_weights(b.config, 7), b.type); !w)
          throw std::runtime_error(w.error().message);
      }
      auto model = Model::load(b.path);
      if (!model) throw std::runtime_error(model.error().message);
      const TensorType type = (*model)->layers().at(0).wq.type;
      const std::size_t bpt = bytes_per_token(**model);
      for (int threads : thread_counts) {
        const Speed w = measure_wand(*model, threads, prompt_len, gen_len, reps, *cache);
        Json row = {{"model", b.label},
                    {"file", b.path},
                    {"type", type_name(type)},
                    {"threads", threads},
                    {"parameters", parameters(**model)},
                    {"bytes_per_token", bpt},
                    {"prompt_tokens_per_s", w.pp},
                    {"generate_tokens_per_s", w.tg}};
        const std::string params = fmt::format("{:.1f}M", parameters(**model) / 1e6);
        if (peer.empty()) {
          const double bound = bandwidth[threads] / bpt;
          row["bound_tokens_per_s"] = bound;
          row["fraction_of_bound"] = w.tg / bound;
          if (!json)
            fmt::print("{:<16} {:>5} {:>4} {:>8} {:>10.1f} {:>10.1f} {:>11.1f} {:>7.0f}%\n", b.label, type_name(type),
                       threads, params, w.pp, w.tg, bound, 100 * w.tg / bound);
        } else {
          const Speed l = measure_peer(peer, b.path, threads, prompt_len, gen_len, reps, kv);
          row["peer_prompt_tokens_per_s"] = l.pp;
          row["peer_generate_tokens_per_s"] = l.tg;
          if (!json)
            fmt::print("{:<16} {:>5} {:>4} {:>8} {:>9.1f} {:>9.1f} {:>5.2f}x {:>9.1f} {:>9.1f} {:>5.2f}x\n", b.label,
                       type_name(type), threads, params, w.pp, l.pp, w.pp / l.pp, w.tg, l.tg, w.tg / l.tg);
        }
        rows.push_back(row);
        std::fflush(stdout);
      }
      if (b.generated && keep.empty()) fs::remove(b.path);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "engine_bench: {}\n", e.what());
    if (keep.empty()) fs::remove_all(dir);
    return 1;
  }
  if (keep.empty()) fs::remove_all(dir);
  const std::string load_after = load_average();
  if (json) {
    Json bw = Json::object();
    for (auto& [t, b] : bandwidth) bw[std::to_string(t)] = b;
    fmt::print("{}\n", Json{{"kernels", kernel_path_name(kernel_path())},
                            {"load_average", {load_before, load_after}},
                            {"copy_bandwidth_bytes_per_s", bw},
                            {"peer", peer},
                            {"results", rows}}
                           .dump(2));
  } else {
    fmt::print("load average at the end: {}\n", load_after);
  }
  return 0;
}
