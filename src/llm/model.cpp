#include "llm/model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <thread>

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/text.h"
#include "llm/kernels.h"

namespace wand::llm {

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file) return file.error();
  auto m = std::make_shared<Model>();
  m->file_ = *file;
  const GgufFile& f = **file;
  auto& c = m->config_;
  auto arch = f.get_string("general.architecture", "");
  if (!arch) return arch.error();
  if (*arch != "llama")
    return Error{fmt::format("{}: architecture '{}' is not supported (llama is)", path, arch->empty() ? "(none)" : printable(*arch))};
  c.arch = *arch;
  auto geti = [&](const std::string& key, int64_t fallback, int& out) -> VoidResult {
    auto v = f.get_int(c.arch + "." + key, fallback);
    if (!v) return v.error();
    if (*v <= 0 || *v > (1 << 24)) return Error{fmt::format("{}: {}.{} = {} is out of range", path, c.arch, key, *v)};
    out = static_cast<int>(*v);
    return ok_status();
  };
  for (auto r : {geti("embedding_length", -1, c.dim), geti("block_count", -1, c.layers),
                 geti("feed_forward_length", -1, c.ffn), geti("attention.head_count", -1, c.heads)})
    if (!r) return Error{r.error().message + " (a required model hyperparameter)"};
  if (auto r = geti("attention.head_count_kv", c.heads, c.kv_heads); !r) return r.error();
  if (auto r = geti("context_length", 2048, c.context); !r) return r.error();
  if (c.dim % c.heads != 0 || c.heads % c.kv_heads != 0)
    return Error{fmt::format("{}: {} heads do not divide dim {} or are not a multiple of {} kv heads", path, c.heads,
                             c.dim, c.kv_heads)};
  if (auto r = geti("attention.key_length", c.dim / c.heads, c.head_dim); !r) return r.error();
  if (auto r = geti("rope.dimension_count", c.head_dim, c.rope_dim); !r) return r.error();
  if (c.rope_dim > c.head_dim || c.rope_dim % 2) return Error{fmt::format("{}: bad rope.dimension_count", path)};
  auto eps = f.get_float(c.arch + ".attention.layer_norm_rms_epsilon", 1e-5);
  auto base = f.get_float(c.arch + ".rope.freq_base", 10000.0);
  if (!eps) return eps.error();
  if (!base) return base.error();
  c.norm_eps = static_cast<float>(*eps);
  c.rope_base = static_cast<float>(*base);
  auto tok = Tokenizer::from_gguf(f);
  if (!tok) return tok.error();
  m->tokenizer_ = std::move(*tok);
  auto fmt_key = f.get_string("wand.prompt_format", "");
  if (!fmt_key) return fmt_key.error();
  m->prompt_format_ = *fmt_key;

  auto matrix = [&](const std::string& name, int cols, int rows, bool required, Matrix& out) -> VoidResult {
    auto* t = f.tensor(name);
    if (!t) {
      if (!required) return ok_status();
      return Error{fmt::format("{}: tensor '{}' is missing", path, name)};
    }
    if (t->dims.size() != 2 || t->dims[0] != static_cast<uint64_t>(cols) ||
        (rows > 0 && t->dims[1] != static_cast<uint64_t>(rows)))
      return Error{fmt::format("{}: tensor '{}' has shape [{}], expected [{}, {}]", path, name,
                               fmt::format("{}", fmt::join(t->dims, ", ")), cols, rows)};
    out = {t->type, static_cast<int>(t->dims[1]), cols, t->data};
    return ok_status();
  };
  auto vec = [&](const std::string& name, int n, const float*& out) -> VoidResult {
    auto* t = f.tensor(name);
    if (!t) return Error{fmt::format("{}: tensor '{}' is missing", path, name)};
    if (t->elements() != static_cast<uint64_t>(n))
      return Error{fmt::format("{}: tensor '{}' has {} elements, expected {}", path, name, t->elements(), n)};
    if (t->type == TensorType::F32) {
      out = reinterpret_cast<const float*>(t->data);
    } else {
      auto& v = m->owned_.emplace_back(n);
      dequantize_row(t->type, t->data, v.data(), n);
      out = v.data();
    }
    return ok_status();
  };
  if (auto r = matrix("token_embd.weight", c.dim, -1, true, m->tok_embd_); !r) return r.error();
  c.vocab = m->tok_embd_.rows;
  if (static_cast<std::size_t>(c.vocab) < m->tokenizer_.size())
    return Error{fmt::format("{}: {} embeddings for {} tokens", path, c.vocab, m->tokenizer_.size())};
  if (auto r = vec("output_norm.weight", c.dim, m->output_norm_); !r) return r.error();
  m->output_ = m->tok_embd_;  // tied embeddings unless output.weight exists
  if (auto r = matrix("output.weight", c.dim, c.vocab, false, m->output_); !r) return r.error();
  const int q_dim = c.heads * c.head_dim, kv_dim = c.kv_heads * c.head_dim;
  for (int i = 0; i < c.layers; ++i) {
    LayerWeights L{};
    auto p = fmt::format("blk.{}.", i);
    for (auto r : {vec(p + "attn_norm.weight", c.dim, L.attn_norm), vec(p + "ffn_norm.weight", c.dim, L.ffn_norm),
                   matrix(p + "attn_q.weight", c.dim, q_dim, true, L.wq),
                   matrix(p + "attn_k.weight", c.dim, kv_dim, true, L.wk),
                   matrix(p + "attn_v.weight", c.dim, kv_dim, true, L.wv),
                   matrix(p + "attn_output.weight", q_dim, c.dim, true, L.wo),
                   matrix(p + "ffn_gate.weight", c.dim, c.ffn, true, L.w_gate),
                   matrix(p + "ffn_up.weight", c.dim, c.ffn, true, L.w_up),
                   matrix(p + "ffn_down.weight", c.ffn, c.dim, true, L.w_down)})
      if (!r) return r.error();
    m->layers_.push_back(L);
  }
  // Matrices repacked once (the tied output matrix shares the embeddings' copy), each 64-byte
  // aligned (a packed F32 column of 16 rows is one cache line, and a load across two costs twice),
  // into one anonymous mapping asked for in 2 MiB pages (transparent huge pages, which Debian gives
  // on madvise): one token streams every matrix out of memory, and with 4 KiB pages a 134M F16
  // model ran at 69-72 tokens/s where 2 MiB pages give 75-76 (F32: 39 and 40; one thread, Xeon
  // with AMX, interleaved). The file's pages of a packed matrix leave memory (read back if ever
  // touched), so a model is held once, not twice; the embeddings' stay, for token lookups.
  std::vector<Matrix*> to_pack;
  for (auto& L : m->layers_)
    for (Matrix* mat : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) to_pack.push_back(mat);
  to_pack.push_back(m->output_.data == m->tok_embd_.data ? &m->tok_embd_ : &m->output_);
  std::erase_if(to_pack, [](const Matrix* mat) { return !packable(mat->type); });
  std::vector<std::size_t> offset;
  std::size_t total = 0;
  for (const Matrix* mat : to_pack) {
    offset.push_back(total);
    total += (packed_bytes(mat->type, mat->rows, mat->cols) + 63) & ~std::size_t{63};
  }
  if (total > 0) {
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    const std::size_t mapped = (total + kHuge - 1) / kHuge * kHuge;
    void* at = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) return Error{fmt::format("{}: cannot map {} bytes for the packed weights", path, mapped)};
    (void)madvise(at, mapped, MADV_HUGEPAGE);  // a hint: without it (THP off) 4 KiB pages serve
    m->packed_ = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(at), [mapped](uint8_t* p) { munmap(p, mapped); });
  }
  for (std::size_t i = 0; i < to_pack.size(); ++i) {
    Matrix& mat = *to_pack[i];
    uint8_t* dst = m->packed_.get() + offset[i];
    pack_rows(mat.type, mat.data, mat.row_bytes(), mat.rows, mat.cols, dst);
    mat.packed = dst;
    if (mat.data != m->tok_embd_.data) m->file_->release(mat.data, mat.row_bytes() * static_cast<std::size_t>(mat.rows));
  }
  if (m->output_.data == m->tok_embd_.data) m->output_.packed = m->tok_embd_.packed;
  return std::shared_ptr<const Model>(std::move(m));
}

// ---- Context ----

namespace {

// Multiply-adds below which a parallel region runs on the calling thread alone: waking a worker
// and waiting for it costs a few microseconds, about this much work on one core.
constexpr double kParallelWork = 1 << 16;

// Worker threads for the parallel regions of a forward pass. A region's work is cut into chunks
// that every thread, the caller included, claims from one atomic counter, so the caller never
// waits for a worker that is not running: a worker still asleep, or sharing the caller's CPU
// (the scheduler often wakes it there), simply finds nothing left to claim. Waiting only for
// chunks already claimed was what made every-core decoding of a small model 10x slower than one
// thread (main yielded to a sleeping worker's wake-up at every matrix). Workers spin a while
// between regions, which usually follow within microseconds, then sleep on a futex.
class Workers {
 public:
  // fn(begin, end, thread): do units [begin, end) with scratch of `thread` (0 = the caller).
  using Fn = std::function<void(int, int, int)>;

  explicit Workers(int n) : n_(std::max(1, n)) {
    CPU_ZERO(&allowed_);
    if (sched_getaffinity(0, sizeof allowed_, &allowed_) != 0) CPU_ZERO(&allowed_);
    for (int i = 1; i < n_; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~Workers() {
    stop_ = true;
    state_.fetch_add(kGeneration);
    state_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return n_; }

  // Runs `units` units of work, about `work` multiply-adds in all: on the caller alone when that
  // is too little to pay for waking a worker or has lately been faster, else in chunks claimed
  // by every thread.
  void run(double work, int units, const Fn& fn) {
    if (units <= 0) return;
    if (n_ == 1 || work < kParallelWork || units == 1) return fn(0, units, 0);
    // Which is faster here and now, every thread or the caller alone, is measured rather than
    // assumed (cores busy with other work make a second thread a loss even on big regions):
    // nanoseconds per multiply-add of each, as moving averages; the faster runs, and the other
    // now and then so a change is noticed. An exploration that loses doubles the interval to the
    // next (16 to 1024 regions): on a loaded machine a parallel region can stall for a whole
    // scheduler slice on a descheduled worker, and exploring every 16th region that way cost
    // two threads 20-50% of one thread's decoding speed.
    // Per size class of region (work rounded down to a power of two): the kinds of region in a
    // forward pass differ in cost per multiply-add (attention's exponentials, the output
    // matrix out of memory), so one average over all of them compared unlike with unlike and
    // could settle on the slower choice. (25M Q4_0 decoding, load average 15 on the 2 cores:
    // two threads at 0.47-0.50x of one thread's tokens/s before, 0.65-0.81x after; not yet 1x.)
    Choice& c = choices_[std::min(std::ilogb(work), kClasses - 1)];
    const bool explore = ++c.regions >= c.next_explore;
    bool alone;
    if (c.rate[1] == 0 || c.rate[0] == 0)
      alone = c.rate[1] > 0;  // measure each once: every thread first
    else
      alone = (c.rate[0] <= c.rate[1]) != explore;
    const auto start = std::chrono::steady_clock::now();
    if (alone) {
      fn(0, units, 0);
    } else {
      parallel(units, fn);
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    // A class's first parallel region is not measured: its time includes waking the workers from
    // their sleep (the region often comes first in a forward pass, after a pause), which the next
    // ones do not pay; counted, it made some of a prompt's products settle on the caller alone
    // (25M Q8_0 at two threads: 8.7-8.9k tokens/s, 9.5-10.3k since; every region in parallel 10.2k).
    if (!alone && !c.warm) {
      c.warm = true;
      return;
    }
    if (explore) {
      const bool lost = ns / work > c.rate[alone ? 1 : 0];
      c.explore_interval = lost ? std::min(c.explore_interval * 2, kMaxExploreInterval) : kMinExploreInterval;
      c.next_explore = c.regions + c.explore_interval;
    }
    double& rate = c.rate[alone ? 0 : 1];
    rate = rate == 0 ? ns / work : 0.9 * rate + 0.1 * ns / work;
  }

 private:
  void parallel(int units, const Fn& fn) {
    caller_cpu_.store(sched_getcpu(), std::memory_order_relaxed);
    fn_ = &fn;
    units_ = units;
    // One chunk per thread: the caller, first to look, mostly claims the first, so while the
    // workers keep up each thread gets the same share of every region from one pass to the next
    // (its rows of weights stay in its core's cache, and its sequences' cache lines), and a late
    // worker's chunk is done by whoever is free. Four per thread moved every share around:
    // wand-pot at two threads, one sequence 8.3-8.9k tokens/s, 9.4-9.6k since; 8 sequences
    // 22k, 26k since.
    chunks_ = std::min(units, n_);
    const int chunks = chunks_;
    done_.store(0, std::memory_order_relaxed);
    // A new generation with no chunk claimed; a worker's claim names the generation, so a late
    // worker can never claim a chunk of a region that is over.
    const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 32) + 1;
    state_.store(gen << 32, std::memory_order_release);
    state_.notify_all();
    work_on(gen, 0);
    // Only chunks other threads claimed are left: spin briefly, then give the CPU away (the
    // thread that holds them may be waiting for this very CPU).
    for (int spin = 0; done_.load(std::memory_order_acquire) != chunks; ++spin) {
      if (spin < 4000) {
        pause();
      } else {
        std::this_thread::yield();
      }
    }
  }

  static constexpr uint64_t kGeneration = uint64_t{1} << 32;
  static void pause() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }

  // Claims and runs chunks of generation `gen` until none is left.
  void work_on(uint64_t gen, int thread) {
    uint64_t s = state_.load(std::memory_order_acquire);
    while ((s >> 32) == gen && (s & 0xffffffffu) < static_cast<uint64_t>(chunks_)) {
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
      // The region cannot end while this chunk is unfinished, so fn_ and units_ are its own.
      const int c = static_cast<int>(s & 0xffffffffu);
      const int units = units_.load(std::memory_order_relaxed), chunks = chunks_.load(std::memory_order_relaxed);
      (*fn_.load(std::memory_order_relaxed))(units * c / chunks, units * (c + 1) / chunks, thread);
      done_.fetch_add(1, std::memory_order_release);
      s = state_.load(std::memory_order_acquire);
    }
  }

  // The scheduler likes to wake a thread on its waker's CPU; a worker there steals the caller's
  // time by spinning, and can only take turns with it. So a worker that finds itself on the
  // caller's CPU moves to the others it is allowed (only the engine's own threads are moved).
  void keep_off_caller_cpu() {
    const int me = sched_getcpu();
    if (me < 0 || me != caller_cpu_.load(std::memory_order_relaxed)) return;
    cpu_set_t others = allowed_;
    CPU_CLR(me, &others);
    if (CPU_COUNT(&others) > 0) pthread_setaffinity_np(pthread_self(), sizeof others, &others);
  }

  void loop(int thread) {
    uint64_t seen = 0;
    while (true) {
      uint64_t s = state_.load(std::memory_order_acquire);
      for (int spin = 0; spin < 20000 && (s >> 32) == seen; ++spin) {
        if (spin % 1024 == 0) keep_off_caller_cpu();
        pause();
        s = state_.load(std::memory_order_acquire);
      }
      if ((s >> 32) == seen) {
        state_.wait(s, std::memory_order_acquire);
        continue;
      }
      if (stop_) return;
      seen = s >> 32;
      keep_off_caller_cpu();
      work_on(seen, thread);
    }
  }

  int n_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> state_{0};  // generation << 32 | chunks claimed
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  // Set before a region's generation is published; atomics because a worker late from the
  // previous region may read them (it then fails to claim and leaves).
  std::atomic<const Fn*> fn_{nullptr};
  std::atomic<int> units_{0}, chunks_{0};
  static constexpr uint64_t kMinExploreInterval = 16, kMaxExploreInterval = 1024;
  static constexpr int kClasses = 48;  // 2^47 multiply-adds and up share the last
  struct Choice {
    uint64_t regions = 0, next_explore = kMinExploreInterval, explore_interval = kMinExploreInterval;
    double rate[2] = {0, 0};  // ns per multiply-add: [0] the caller alone, [1] every thread
    bool warm = false;        // a parallel region of this class has run (and was not measured)
  };
  Choice choices_[kClasses];
  cpu_set_t allowed_;  // the CPUs this process may run on
  std::atomic<int> caller_cpu_{-1};
};


}  // namespace

struct Context::Impl {
  const ModelConfig& c;
  const int n_ctx, kv_dim;
  static constexpr int kBlock = 64;  // positions per block of transposed keys, attention's score chunk
  const int ctx_pad;                 // n_ctx rounded up to whole blocks
  // Element offsets within a layer of a cache: key dimension i (of kv_dim) and value of head h at
  // position p.
  std::size_t key_at(int i, int p) const {
    const int hd = c.head_dim;
    return ((std::size_t(i / hd) * (ctx_pad / kBlock) + p / kBlock) * hd + i % hd) * kBlock + p % kBlock;
  }
  std::size_t value_at(int h, int p) const { return (std::size_t(h) * ctx_pad + p) * c.head_dim; }
  std::size_t layer_elems() const { return std::size_t(ctx_pad) * kv_dim; }
  Workers workers;
  std::vector<float> x, xb, xb2, q, k, v, att_out, hb, hb2, logits, scores;
  // Keys transposed in blocks of kBlock positions ([layer][kv head][pos / kBlock][head_dim]
  // [pos % kBlock]), so a head's scores for consecutive positions are one vectorized multiply-add
  // per key dimension, with no horizontal sum per position (those sums were most of decoding's
  // attention time); values by head, then position ([layer][kv head][pos][head_dim]), added up
  // along the head's dimensions. Both make what one head reads one sequential run of memory: k
  // sequences' caches do not fit in L2, and a head's keys as head_dim rows n_ctx apart, its values
  // as rows kv_dim apart, were strided reads the prefetchers followed slowly (wand-pot, k = 8:
  // attention 28% of the time, an F16 cache 12% faster overall).
  // Elements of `cache_type` (4, 2 or 1 bytes each), as raw bytes so one copy and one layout
  // serve all three (a Q8 cache's keys sit in a block as kernels.h's q8_scores reads them).
  struct Cache {
    std::vector<uint8_t> k, v;
    std::vector<float> k_scale, v_scale;  // Q8: [layer][kv head][pos], each int8 key's and value's scale
  };
  std::size_t scale_at(int l, int h, int p) const { return (std::size_t(l) * c.kv_heads + h) * ctx_pad + p; }
  std::vector<Cache> caches;  // per sequence
  std::vector<uint8_t> act;   // activations quantized to Q8_0 for quantized weights
  std::vector<float> rope_cos, rope_sin;  // [batch token][rope_dim]: kernels.h's cos2, sin2

  const CacheType cache_type;
  const std::size_t elem;  // bytes per cache element
  std::vector<uint16_t> half_k;          // per thread: a head's key rounded to fp16, for an F16 cache
  std::vector<float> q_half;             // per thread: a group's query heads rounded to fp16
  std::vector<float> set_scales;         // per thread: a group's scales for weighted_row_sets
  std::vector<int8_t> q8_q;              // per thread, Q8: a group's query heads as int8
  std::vector<int16_t> q8_weights;       // per thread, Q8: a group's attention weights (n_ctx + 1 apart)
  std::vector<float> q8_q_scales;        // per thread, Q8: the group's query scales
  // Elements per thread of a per-thread array of n (scores, q_half, set_scales, half_k): whole
  // cache lines and one more, so that no two threads' parts share a line wherever it starts. Two
  // threads' scales in one line made attention's reads of them misses while the other thread
  // wrote its own (8 sequences of wand-pot, two threads: the caller's half of the parallel
  // regions took 73% of their one-thread time, 62% since).
  template <class E = float>
  static std::size_t per_thread(std::size_t n) {
    constexpr std::size_t line = 64 / sizeof(E);
    return (n + line - 1) / line * line + line;
  }

  Impl(const ModelConfig& cfg, int n_ctx, int threads, CacheType cache)
      : c(cfg), n_ctx(n_ctx), kv_dim(cfg.kv_heads * cfg.head_dim),
        ctx_pad((n_ctx + kBlock - 1) / kBlock * kBlock), workers(threads), cache_type(cache),
        elem(cache == CacheType::f32 ? 4 : cache == CacheType::f16 ? 2 : 1) {
    static_assert(kBlock == kQ8KeyBlock);
    if (cache == CacheType::q8 && c.head_dim % 4 != 0)
      throw std::invalid_argument(
          fmt::format("a Q8 KV cache needs heads of a multiple of 4 dimensions, not {}", c.head_dim));
    reserve(1);
    logits.resize(c.vocab);
    const int group = c.heads / c.kv_heads;
    scores.resize(workers.size() * per_thread(std::size_t(group) * n_ctx));
    set_scales.resize(workers.size() * per_thread(group));
    q_half.resize(workers.size() * per_thread(std::size_t(group) * c.head_dim));
    half_k.resize(workers.size() * per_thread<uint16_t>(c.head_dim));
    if (cache == CacheType::q8) {
      q8_q.resize(workers.size() * per_thread<int8_t>(std::size_t(group) * c.head_dim));
      q8_q_scales.resize(workers.size() * per_thread(group));
      q8_weights.resize(workers.size() * per_thread<int16_t>(std::size_t(group) * (n_ctx + 1)));
    }
  }

  // Caches only grow: a request for k samples after one for fewer reuses their memory.
  void reserve(int n) {
    const std::size_t size = c.layers * layer_elems() * elem;
    if (static_cast<int>(caches.size()) < n) caches.resize(n);
    for (auto& cache : caches) {
      if (cache.k.empty()) cache.k.resize(size), cache.v.resize(size);
      if (cache_type == CacheType::q8 && cache.k_scale.empty())
        cache.k_scale.resize(scale_at(c.layers, 0, 0)), cache.v_scale.resize(scale_at(c.layers, 0, 0));
    }
  }

  void copy(int from, int to, int positions) {
    // Keys by whole blocks (a head's keys for kBlock positions): the positions past `positions`
    // are written before they are read.
    const std::size_t block = std::size_t(c.head_dim) * kBlock * elem;
    const int blocks = (positions + kBlock - 1) / kBlock;
    for (int l = 0; l < c.layers; ++l) {
      const std::size_t at = l * layer_elems() * elem;
      for (int h = 0; h < c.kv_heads; ++h) {
        const std::size_t keys = at + key_at(h * c.head_dim, 0) * elem, values = at + value_at(h, 0) * elem;
        std::copy_n(caches[from].k.begin() + keys, blocks * block, caches[to].k.begin() + keys);
        // (A Q8 cache's values by whole pairs of positions.)
        std::copy_n(caches[from].v.begin() + values, std::size_t(positions + 1) / 2 * 2 * c.head_dim * elem,
                    caches[to].v.begin() + values);
        if (cache_type == CacheType::q8) {
          const std::size_t s = scale_at(l, h, 0);
          std::copy_n(caches[from].k_scale.begin() + s, positions, caches[to].k_scale.begin() + s);
          std::copy_n(caches[from].v_scale.begin() + s, positions, caches[to].v_scale.begin() + s);
        }
      }
    }
  }

  void resize(int T) {
    auto r = [&](std::vector<float>& v, int width) { v.resize(static_cast<std::size_t>(T) * width); };
    r(x, c.dim), r(xb, c.dim), r(xb2, c.dim), r(q, c.heads * c.head_dim), r(k, kv_dim), r(v, kv_dim),
        r(att_out, c.heads * c.head_dim), r(hb, c.ffn), r(hb2, c.ffn);
  }

  // Converts T rows of `in` (width cols) to `t` once, before the parallel region.
  const uint8_t* prepare(TensorType t, int cols, const float* in, int T) {
    if (t == TensorType::F32) return reinterpret_cast<const uint8_t*>(in);
    std::size_t rb = type_bytes(t, cols);
    act.resize(rb * T);
    for (int i = 0; i < T; ++i) quantize_row(t, in + static_cast<std::size_t>(i) * cols, act.data() + rb * i, cols);
    return act.data();
  }

  // The form a matrix's input takes (kernels.h): packed weights have their own.
  static TensorType input_type(const Matrix& m) { return m.packed ? packed_dot_type(m.type) : dot_type(m.type); }

  // Several matrices reading the same input (q/k/v, gate/up) in one parallel region, when their
  // weights take the input in the same form; otherwise one region each. The region's units are
  // tiles of kUnitRows rows (where matmul_packed may start a range, for every type) of each
  // matrix in turn: out[t][r] = dot(row r of m, in[t]).
  static constexpr int kUnitRows = 16;
  void matmuls(std::initializer_list<std::pair<const Matrix*, float*>> jobs, const float* in, int T) {
    const Matrix& first = *jobs.begin()->first;
    const TensorType t = input_type(first);
    double work = 0;
    int units = 0;
    for (auto& j : jobs) {
      if (input_type(*j.first) != t) {
        for (auto& one : jobs) matmuls({one}, in, T);
        return;
      }
      work += double(j.first->rows) * j.first->cols * T;
      units += (j.first->rows + kUnitRows - 1) / kUnitRows;
    }
    const uint8_t* a = prepare(t, first.cols, in, T);
    const std::size_t a_stride = type_bytes(t, first.cols);
    workers.run(work, units, [&](int begin, int end, int) {
      int base = 0;
      for (auto& [m, out] : jobs) {
        const int tiles = (m->rows + kUnitRows - 1) / kUnitRows;
        const int r0 = std::max(begin - base, 0) * kUnitRows,
                  r1 = std::min(std::min(end - base, tiles) * kUnitRows, m->rows);
        if (r0 >= r1) {
        } else if (m->packed) {
          matmul_packed(m->type, m->packed, m->rows, m->cols, r0, r1, a, a_stride, T, out, m->rows);
        } else {
          matmul_rows(m->type, m->data, m->row_bytes(), m->cols, r0, r1, a, a_stride, T, out, m->rows);
        }
        base += tiles;
      }
    });
  }

  // cos/sin of every rotation angle for each batch token's position, once per forward pass
  // rather than per layer, for queries and keys alike, in the form kernels.h's rope takes (each
  // pair's cosine twice, its sine as -sin, sin). theta grows by repeated multiplication in float,
  // as ggml computes it, so results stay bit-compatible with llama.cpp's.
  void rope_table(std::span<const int> pos) {
    const int half = c.rope_dim / 2, T = static_cast<int>(pos.size());
    const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.rope_dim));
    rope_cos.resize(static_cast<std::size_t>(T) * c.rope_dim);
    rope_sin.resize(rope_cos.size());
    for (int t = 0; t < T; ++t) {
      float theta = static_cast<float>(pos[t]);
      float* cs = &rope_cos[std::size_t(t) * c.rope_dim];
      float* sn = &rope_sin[std::size_t(t) * c.rope_dim];
      for (int i = 0; i < half; ++i) {
        cs[2 * i] = cs[2 * i + 1] = std::cos(theta);
        sn[2 * i + 1] = std::sin(theta);
        sn[2 * i] = -sn[2 * i + 1];
        theta *= theta_scale;
      }
    }
  }

  // Attention of one token's `group` query heads (qg, head_dim apart) over key/value head kvh of
  // `cache` in layer l, its first n positions, into out (the heads' outputs, head_dim apart),
  // with `thread`'s scratch: an F32 or F16 cache (weighted_row_sets) ...
  void attend(const Cache& cache, int l, int kvh, int n, const float* qg, float* out, int thread) {
    const int hd = c.head_dim, group = c.heads / c.kv_heads;
    const bool f16 = cache_type == CacheType::f16;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    float* sc = &scores[thread * per_thread(std::size_t(group) * n_ctx)];  // the group's scores, n_ctx apart
    float* sets_scale = &set_scales[thread * per_thread(group)];
    const uint8_t* keys = &cache.k[l * layer_elems() * elem];
    const uint8_t* values = &cache.v[l * layer_elems() * elem];
    // weighted_row_sets over the cache's elements, whichever their type.
    auto weighted = [&](const float* coef, std::size_t coef_stride, const uint8_t* base, std::size_t at,
                        std::size_t stride, int count, int width, float* o, std::size_t o_stride) {
      if (f16) {
        weighted_row_sets_f16(group, coef, coef_stride, sets_scale, reinterpret_cast<const uint16_t*>(base) + at,
                              stride, count, width, o, o_stride);
      } else {
        weighted_row_sets(group, coef, coef_stride, sets_scale, reinterpret_cast<const float*>(base) + at, stride,
                          count, width, o, o_stride);
      }
    };
    // llama.cpp's products with an F16 cache round their float operand to fp16 too: the query
    // before the scores, the probabilities before the values' sum (and it scales the sums, not
    // the query, as its softmax does).
    if (f16) {
      float* qr = &q_half[thread * per_thread(std::size_t(group) * hd)];
      std::copy_n(qg, std::size_t(group) * hd, qr);
      round_fp16(qr, std::size_t(group) * hd, 1.0f);
      qg = qr;
    }
    std::fill_n(sets_scale, group, f16 ? 1.0f : scale);
    for (int p0 = 0; p0 < n; p0 += kBlock)
      weighted(qg, hd, keys, key_at(kvh * hd, p0), kBlock, hd, std::min(kBlock, n - p0), sc + p0, n_ctx);
    for (int g = 0; g < group; ++g) {
      float* sg = sc + std::size_t(g) * n_ctx;
      sets_scale[g] = 1.0f / softmax_exp(sg, n, f16 ? scale : 1.0f);
      if (f16) {
        round_fp16(sg, n, sets_scale[g]);
        sets_scale[g] = 1.0f;
      }
    }
    for (int i0 = 0; i0 < hd; i0 += 64)
      weighted(sc, n_ctx, values, value_at(kvh, 0) + i0, hd, n, std::min(64, hd - i0), out + i0, hd);
  }

  // ... or a Q8 cache: the query heads as int8, the scores integer dots (q8_scores); the weights
  // (probabilities times each value's scale) as int16, the values' sums integer dots too
  // (q8_values), each head's scaled by its weights' scale over the softmax's sum.
  void attend_q8(const Cache& cache, int l, int kvh, int n, const float* qg, float* out, int thread) {
    const int hd = c.head_dim, group = c.heads / c.kv_heads;
    float* sc = &scores[thread * per_thread(std::size_t(group) * n_ctx)];
    float* sets_scale = &set_scales[thread * per_thread(group)];
    int8_t* qq = &q8_q[thread * per_thread<int8_t>(std::size_t(group) * hd)];
    float* qs = &q8_q_scales[thread * per_thread(group)];
    int16_t* weights = &q8_weights[thread * per_thread<int16_t>(std::size_t(group) * (n_ctx + 1))];
    const std::size_t layer = l * layer_elems(), scales = scale_at(l, kvh, 0);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (int g = 0; g < group; ++g) qs[g] = quantize_i8(qg + std::size_t(g) * hd, hd, qq + std::size_t(g) * hd);
    q8_scores(group, qq, hd, qs, reinterpret_cast<const int8_t*>(&cache.k[layer + key_at(kvh * hd, 0)]),
              &cache.k_scale[scales], hd, n, sc, n_ctx);
    softmax_i16(group, sc, n_ctx, n, scale, &cache.v_scale[scales], weights, n_ctx + 1, sets_scale);
    q8_values(group, weights, n_ctx + 1, sets_scale,
              reinterpret_cast<const int8_t*>(&cache.v[layer + value_at(kvh, 0)]), hd, n, out, hd);
  }

  // Rotates the pairs (2i, 2i+1) of each head of `vec` (the batch's token t).
  void rope(float* vec, int n_heads, int t) const {
    llm::rope(vec, n_heads, c.head_dim, c.rope_dim, &rope_cos[std::size_t(t) * c.rope_dim],
              &rope_sin[std::size_t(t) * c.rope_dim]);
  }

  // One pass over a batch: token t goes to sequence seq[t] at position pos[t]. Every token's
  // key and value enter its cache before any attends, so a prompt's tokens (one sequence,
  // consecutive positions) see each other causally, and tokens of different sequences never do.
  void forward(const Model& m, std::span<const Token> tokens, std::span<const int> seq, std::span<const int> pos,
               bool all_positions) {
    const int T = static_cast<int>(tokens.size());
    const int D = c.dim, hd = c.head_dim, q_dim = c.heads * hd;
    const int group = c.heads / c.kv_heads;
    resize(T);
    rope_table(pos);
    const Matrix& E = m.embeddings();
    for (int t = 0; t < T; ++t) dequantize_row(E.type, E.row(tokens[t]), &x[std::size_t(t) * D], D);
    auto kc = [&](int t, int l) { return &caches[seq[t]].k[l * layer_elems() * elem]; };
    auto vc = [&](int t, int l) { return &caches[seq[t]].v[l * layer_elems() * elem]; };
    const bool f16 = cache_type == CacheType::f16, q8 = cache_type == CacheType::q8;
    // Token t's key and value of head h into its cache, as the cache's elements (float, fp16
    // bits, or int8 and their scales), with `thread`'s scratch.
    auto store_head = [&](int t, int l, int h, int thread) {
      const float *key = &k[std::size_t(t) * kv_dim + h * hd], *value = &v[std::size_t(t) * kv_dim + h * hd];
      const std::size_t keys = key_at(h * hd, pos[t]), values = value_at(h, pos[t]);
      if (q8) {
        Cache& cache = caches[seq[t]];
        const std::size_t s = scale_at(l, h, 0);
        q8_store(key, value, hd, pos[t], reinterpret_cast<int8_t*>(kc(t, l)) + key_at(h * hd, 0), &cache.k_scale[s],
                 reinterpret_cast<int8_t*>(vc(t, l)) + value_at(h, 0), &cache.v_scale[s]);
      } else if (f16) {
        uint16_t* half = &half_k[thread * per_thread<uint16_t>(hd)];
        to_fp16(key, half, hd);
        auto* at = reinterpret_cast<uint16_t*>(kc(t, l)) + keys;
        for (int d = 0; d < hd; ++d) at[std::size_t(d) * kBlock] = half[d];  // dimensions kBlock apart
        to_fp16(value, reinterpret_cast<uint16_t*>(vc(t, l)) + values, hd);
      } else {
        auto* at = reinterpret_cast<float*>(kc(t, l)) + keys;
        for (int d = 0; d < hd; ++d) at[std::size_t(d) * kBlock] = key[d];
        std::copy_n(value, hd, reinterpret_cast<float*>(vc(t, l)) + values);
      }
    };
    // Tokens of distinct sequences (decoding several at once) attend to their own cache alone,
    // so each token's key and value of a head enter the cache in that head's attention job, on
    // the thread that reads them next; stored by the caller before the region, the new lines sat
    // in its core's cache and a worker fetched each from there (at two threads, attention ran no
    // faster than on one). A prompt's tokens read each other's, so they are stored first.
    bool own_sequences = true;
    for (int t = 0; t < T && own_sequences; ++t)
      for (int u = 0; u < t && own_sequences; ++u) own_sequences = seq[u] != seq[t];
    double attention_work = 0;
    for (int t = 0; t < T; ++t) attention_work += 2.0 * (pos[t] + 1) * q_dim;

    for (int l = 0; l < c.layers; ++l) {
      const LayerWeights& L = m.layers()[l];
      for (int t = 0; t < T; ++t) rmsnorm(&x[std::size_t(t) * D], L.attn_norm, &xb[std::size_t(t) * D], D, c.norm_eps);
      matmuls({{&L.wq, q.data()}, {&L.wk, k.data()}, {&L.wv, v.data()}}, xb.data(), T);
      for (int t = 0; t < T; ++t) {
        rope(&q[std::size_t(t) * q_dim], c.heads, t);
        rope(&k[std::size_t(t) * kv_dim], c.kv_heads, t);
      }
      if (!own_sequences)
        for (int t = 0; t < T; ++t)
          for (int h = 0; h < c.kv_heads; ++h) store_head(t, l, h, 0);
      // One job per token and key/value head: its `group` query heads read the cache together
      // (weighted_row_sets), each head's sums as if alone.
      workers.run(attention_work, T * c.kv_heads, [&](int begin, int end, int thread) {
        for (int job = begin; job < end; ++job) {
          const int t = job / c.kv_heads, kvh = job % c.kv_heads, n = pos[t] + 1;
          if (own_sequences) store_head(t, l, kvh, thread);
          const float* qg = &q[std::size_t(t) * q_dim + std::size_t(kvh) * group * hd];  // the group's heads
          float* o = &att_out[std::size_t(t) * q_dim + std::size_t(kvh) * group * hd];
          if (q8) {
            attend_q8(caches[seq[t]], l, kvh, n, qg, o, thread);
          } else {
            attend(caches[seq[t]], l, kvh, n, qg, o, thread);
          }
        }
      });
      matmuls({{&L.wo, xb2.data()}}, att_out.data(), T);
      for (std::size_t i = 0; i < std::size_t(T) * D; ++i) x[i] += xb2[i];

      for (int t = 0; t < T; ++t) rmsnorm(&x[std::size_t(t) * D], L.ffn_norm, &xb[std::size_t(t) * D], D, c.norm_eps);
      matmuls({{&L.w_gate, hb.data()}, {&L.w_up, hb2.data()}}, xb.data(), T);
      silu_mul(hb.data(), hb2.data(), std::size_t(T) * c.ffn);
      matmuls({{&L.w_down, xb2.data()}}, hb.data(), T);
      for (std::size_t i = 0; i < std::size_t(T) * D; ++i) x[i] += xb2[i];
    }
    // The output head for the last token only, unless every position's logits are wanted.
    const int first = all_positions ? 0 : T - 1, rows = T - first;
    logits.resize(static_cast<std::size_t>(rows) * c.vocab);
    for (int t = first; t < T; ++t)
      rmsnorm(&x[std::size_t(t) * D], m.output_norm(), &xb[std::size_t(t - first) * D], D, c.norm_eps);
    matmuls({{&m.output(), logits.data()}}, xb.data(), rows);
  }
};

Result<CacheType> parse_cache_type(std::string_view name) {
  if (name == "f32") return CacheType::f32;
  if (name == "f16") return CacheType::f16;
  if (name == "q8") return CacheType::q8;
  return Error{fmt::format("KV cache type '{}' is unknown (f32, f16 or q8)", printable(name))};
}

Context::Context(std::shared_ptr<const Model> model, int n_ctx, int threads, CacheType cache)
    : model_(std::move(model)) {
  n_ctx_ = n_ctx > 0 ? std::min(n_ctx, model_->config().context) : model_->config().context;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl_ = std::make_unique<Impl>(model_->config(), n_ctx_, threads, cache);
  pos_.assign(1, 0);
}

Context::~Context() = default;

void Context::set_sequences(int n) {
  n = std::max(1, n);
  impl_->reserve(n);
  pos_.resize(n, 0);
}

void Context::rewind(int seq, int position) { pos_.at(seq) = std::clamp(position, 0, pos_.at(seq)); }

void Context::copy_sequence(int from, int to) {
  if (from == to) return;
  impl_->copy(from, to, pos_.at(from));
  pos_.at(to) = pos_[from];
}

Result<std::span<const float>> Context::eval(std::span<const Token> tokens, bool all_positions) {
  if (tokens.empty()) return Error{"eval: no tokens"};
  if (pos_[0] + static_cast<int>(tokens.size()) > n_ctx_)
    return Error{fmt::format("context full: {} tokens in use, {} more, capacity {}", pos_[0], tokens.size(), n_ctx_)};
  for (Token t : tokens)
    if (t < 0 || t >= model_->config().vocab) return Error{fmt::format("token id {} is out of range", t)};
  std::vector<int> seq(tokens.size(), 0), pos(tokens.size());
  for (std::size_t t = 0; t < tokens.size(); ++t) pos[t] = pos_[0] + static_cast<int>(t);
  impl_->forward(*model_, tokens, seq, pos, all_positions);
  pos_[0] += static_cast<int>(tokens.size());
  return std::span<const float>(impl_->logits);
}

Result<std::span<const float>> Context::decode(std::span<const int> seqs, std::span<const Token> tokens) {
  if (tokens.empty() || seqs.size() != tokens.size())
    return Error{fmt::format("decode: {} sequences for {} tokens", seqs.size(), tokens.size())};
  std::vector<char> seen(pos_.size(), 0);
  std::vector<int> pos(tokens.size());
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const int s = seqs[i];
    if (s < 0 || s >= sequences() || seen[s])
      return Error{fmt::format("decode: sequence {} is out of range (0-{}) or listed twice", s, sequences() - 1)};
    seen[s] = 1;
    if (pos_[s] >= n_ctx_)
      return Error{fmt::format("context full: sequence {} holds {} tokens, capacity {}", s, pos_[s], n_ctx_)};
    if (tokens[i] < 0 || tokens[i] >= model_->config().vocab)
      return Error{fmt::format("token id {} is out of range", tokens[i])};
    pos[i] = pos_[s];
  }
  // Every token's logits: each is the last of its sequence.
  impl_->forward(*model_, tokens, seqs, pos, /*all_positions=*/true);
  for (int s : seqs) ++pos_[s];
  return std::span<const float>(impl_->logits);
}

}  // namespace wand::llm
