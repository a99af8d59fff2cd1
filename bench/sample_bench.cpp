// The cost of k samples with the embedded engine (self-consistency's sampling step): one request
// for n = k samples of a PoT answer on the shipped model, which prefills the prompt once and
// decodes the k samples as one batch, against the unbatched path measured in the same run: k
// requests of one sample each, seeded as the batch seeds its samples, so both make the same
// texts (checked). Then the engine alone: k sequences decoded together for a fixed number of
// steps, in tokens/s against one sequence. Best of --reps, the two paths interleaved.
// The question comes from the held-out synthetic set (models/heldout-templates.jsonl), never a
// benchmark's test set.
// --kv-cache f32|f16|q8 sets the KV cache type (default f32, the engine's default).
// Usage: sample_bench [--threads 1,2] [--ks 1,4,8,16] [--reps 3] [--max-tokens 128] [--engine-only] [--portable]
//                     [--kv-cache f32|f16|q8]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "common/json.h"
#include "llm/kernels.h"
#include "llm/llm.h"
#include "llm/model.h"

using namespace wand;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

// CPU seconds of the whole process: on a machine shared with other work, wall time counts the
// time the scheduler gave to others; CPU time does not (with several threads it adds them up,
// spinning included).
double cpu_now() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// "1,2,8": counts from lo to hi; anything else (an empty item, "2x", a count out of range) throws,
// naming the item.
std::vector<int> int_list(const std::string& s, int lo, int hi) {
  std::vector<int> out;
  for (std::size_t p = 0, q; p <= s.size(); p = q + 1) {
    q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    const std::string item = s.substr(p, q - p);
    char* end = nullptr;
    const long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || n < lo || n > hi)
      throw std::invalid_argument(fmt::format("'{}' is not a count from {} to {}", item, lo, hi));
    out.push_back(static_cast<int>(n));
  }
  return out;
}

int fail(const std::string& what) {
  fmt::print(stderr, "sample_bench: {}\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string models = WAND_MODELS_DIR;
  std::vector<int> threads = {1, 2}, ks = {1, 4, 8, 16};
  int reps = 3, max_tokens = 128;
  bool engine_only = false;
  std::string kv = "f32";
  const char* usage =
      "usage: sample_bench [--threads 1,2] [--ks 1,4,8,16] [--reps 3] [--max-tokens 128] [--engine-only] "
      "[--portable] [--kv-cache f32|f16|q8]\n";
  try {
    int i = 1;
    auto value = [&](const std::string& a) -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    auto counts = [&](const std::string& a, int lo, int hi) {
      const std::string v = value(a);
      try {
        return int_list(v, lo, hi);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(a + " " + v + ": " + e.what());
      }
    };
    auto count = [&](const std::string& a, int lo, int hi) {
      const auto n = counts(a, lo, hi);
      if (n.size() != 1) throw std::invalid_argument(a + " takes one count");
      return n[0];
    };
    for (; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        fmt::print("{}", usage);
        return 0;
      }
      if (a == "--threads")
        threads = counts(a, 1, 256);
      else if (a == "--ks")
        ks = counts(a, 1, 64);  // sequences decoded together, as many as `wand solve --k` asks
      else if (a == "--reps")
        reps = count(a, 1, 1000);
      else if (a == "--max-tokens")
        max_tokens = count(a, 1, 4096);
      else if (a == "--kv-cache")
        kv = value(a);
      else if (a == "--engine-only")
        engine_only = true;
      else if (a == "--portable")
        (void)llm::set_kernel_path(llm::KernelPath::generic);  // same as WAND_CPU=generic
      else
        throw std::invalid_argument("unknown option '" + a + "'");
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "sample_bench: {}\n{}", e.what(), usage);
    return 2;
  }
  if (auto path = llm::kernel_path_from_env(); !path) {  // a bad WAND_CPU
    fmt::print(stderr, "sample_bench: {}\n", path.error().message);
    return 2;
  }
  auto cache = llm::parse_cache_type(kv);
  if (!cache) {
    fmt::print(stderr, "sample_bench: --kv-cache: {}\n", cache.error().message);
    return 2;
  }
  std::ifstream in(models + "/heldout-templates.jsonl");
  std::string line;
  if (!std::getline(in, line)) return fail("no question in " + models + "/heldout-templates.jsonl");
  const std::string prompt = "Question: " + Json::parse(line)["question"].get<std::string>() + "\nProgram:\n";
  const std::string path = models + "/wand-pot.gguf";
  fmt::print("shipped PoT model ({}), kernels: {}, {} KV cache, T=0.8, top-p 0.95, max {} tokens, best of {}\n", path,
             llm::kernel_path_name(llm::kernel_path()), kv, max_tokens, reps);
  fmt::print("prompt: {:?}\n", prompt);

  for (int t : engine_only ? std::vector<int>{} : threads) {
    auto backend = llm::open_backend("local:" + path, {.threads = t, .kv_cache = kv});
    if (!backend) return fail(backend.error().message);
    llm::GenerateOptions o;
    o.max_tokens = max_tokens;
    o.temperature = 0.8f;
    o.top_p = 0.95f;
    o.seed = 42;
    o.stop = {"\nQuestion:"};
    o.logprobs = true;  // as reason::solve asks
    (void)(*backend)->complete(prompt, o);  // warm up pages and threads
    fmt::print("\n{} thread(s): k samples of one request (batched) vs k requests of one sample (unbatched)\n", t);
    fmt::print("{:>3} {:>11} {:>7} {:>8} {:>7} {:>7} {:>8} {:>13} {:>8} {:>8} {:>5}\n", "k", "batched ms", "x k=1",
               "cpu ms", "x k=1", "tokens", "tok/s", "unbatched ms", "cpu ms", "speedup", "same");
    double base = 0, base_cpu = 0;
    for (int k : ks) {
      double batched = 1e300, unbatched = 1e300, batched_cpu = 1e300, unbatched_cpu = 1e300;
      int tokens = 0;
      bool same = true;
      for (int rep = 0; rep < reps; ++rep) {
        llm::GenerateOptions b = o;
        b.n = k;
        auto t0 = Clock::now();
        double c0 = cpu_now();
        auto many = (*backend)->complete(prompt, b);
        batched = std::min(batched, secs(t0));
        batched_cpu = std::min(batched_cpu, cpu_now() - c0);
        if (!many) return fail(many.error().message);
        std::vector<llm::Completion> ones;
        t0 = Clock::now();
        c0 = cpu_now();
        for (int i = 0; i < k; ++i) {
          llm::GenerateOptions u = o;
          u.seed = llm::sample_seed(o.seed, i);
          auto one = (*backend)->complete(prompt, u);
          if (!one) return fail(one.error().message);
          ones.push_back(std::move(one->front()));
        }
        unbatched = std::min(unbatched, secs(t0));
        unbatched_cpu = std::min(unbatched_cpu, cpu_now() - c0);
        tokens = 0;
        for (int i = 0; i < k; ++i) {
          tokens += (*many)[i].completion_tokens;
          same = same && (*many)[i].text == ones[i].text;
        }
      }
      if (k == ks.front()) base = batched, base_cpu = batched_cpu;
      fmt::print("{:>3} {:>11.2f} {:>6.2f}x {:>8.2f} {:>6.2f}x {:>7} {:>8.0f} {:>13.2f} {:>8.2f} {:>7.2f}x {:>5}\n", k,
                 batched * 1e3, batched / base, batched_cpu * 1e3, batched_cpu / base_cpu, tokens, tokens / batched,
                 unbatched * 1e3, unbatched_cpu * 1e3, unbatched / batched, same ? "yes" : "NO");
    }
  }

  // The engine alone: no early stops, every sequence decodes `steps` tokens.
  auto model = llm::Model::load(path);
  if (!model) return fail(model.error().message);
  const int steps = 64;
  for (int t : threads) {
    llm::Context ctx(*model, 0, t, *cache);
    std::vector<llm::Token> p = (*model)->tokenizer().encode(prompt, true, false);
    fmt::print("\n{} thread(s): the engine alone, k sequences x {} decoding steps after the prompt\n", t, steps);
    fmt::print("{:>3} {:>10} {:>12} {:>14} {:>12}\n", "k", "tok/s", "x k=1 tok/s", "tok/cpu-s", "x k=1");
    double base = 0, base_cpu = 0;
    for (int k : ks) {
      double best = 1e300, best_cpu = 1e300;
      for (int rep = 0; rep < reps; ++rep) {
        ctx.set_sequences(1);
        ctx.rewind(0);
        if (auto r = ctx.eval(p); !r) return fail(r.error().message);
        ctx.set_sequences(k);
        for (int i = 1; i < k; ++i) ctx.copy_sequence(0, i);
        std::vector<int> seqs(k);
        std::vector<llm::Token> next(k);
        for (int i = 0; i < k; ++i) seqs[i] = i, next[i] = 10 + i;
        auto t0 = Clock::now();
        const double c0 = cpu_now();
        for (int s = 0; s < steps; ++s) {
          auto logits = ctx.decode(seqs, next);
          if (!logits) return fail(logits.error().message);
          const std::size_t vocab = (*model)->config().vocab;
          for (int i = 0; i < k; ++i) {
            auto row = logits->subspan(i * vocab, vocab);
            next[i] = static_cast<llm::Token>(llm::argmax(row.data(), static_cast<int>(vocab)));  // greedy, as Sampler
          }
        }
        best = std::min(best, secs(t0));
        best_cpu = std::min(best_cpu, cpu_now() - c0);
      }
      const double tps = k * steps / best, tpc = k * steps / best_cpu;
      if (k == ks.front()) base = tps, base_cpu = tpc;
      fmt::print("{:>3} {:>10.0f} {:>11.2f}x {:>14.0f} {:>11.2f}x\n", k, tps, tps / base, tpc, tpc / base_cpu);
    }
  }
}
