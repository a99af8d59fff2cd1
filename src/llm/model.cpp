#include "llm/model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <thread>

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
  return std::shared_ptr<const Model>(std::move(m));
}

// ---- Context ----

namespace {

// Worker threads that wait on a generation counter, so dispatching a parallel region costs a
// futex wake rather than a task queue per matrix.
class Workers {
 public:
  explicit Workers(int n) : n_(std::max(1, n)) {
    for (int i = 1; i < n_; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~Workers() {
    stop_ = true;
    gen_.fetch_add(1);
    gen_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return n_; }
  void run(const std::function<void(int, int)>& fn) {
    if (n_ == 1) return fn(0, 1);
    fn_ = &fn;
    done_.store(0);
    gen_.fetch_add(1);
    gen_.notify_all();
    fn(0, n_);
    while (done_.load(std::memory_order_acquire) != n_ - 1) std::this_thread::yield();
  }

 private:
  void loop(int i) {
    uint64_t seen = 0;
    while (true) {
      // Spin briefly (the next region usually follows within microseconds), then sleep.
      for (int spin = 0; spin < 2000 && gen_.load(std::memory_order_acquire) == seen; ++spin) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      gen_.wait(seen);
      seen = gen_.load();
      if (stop_) return;
      (*fn_)(i, n_);
      done_.fetch_add(1, std::memory_order_release);
    }
  }
  int n_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* fn_ = nullptr;
};

std::pair<int, int> share(int n, int ith, int nth) { return {n * ith / nth, n * (ith + 1) / nth}; }

void rmsnorm(const float* x, const float* w, float* out, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

}  // namespace

struct Context::Impl {
  const ModelConfig& c;
  Workers workers;
  std::vector<float> x, xb, xb2, q, k, v, att_out, hb, hb2, logits, scores;
  std::vector<float> k_cache, v_cache;  // [layer][pos][kv_dim]
  std::vector<uint8_t> act;             // activations in the weights' dot type (Q8_0 or F16)
  std::vector<float> rope_cos, rope_sin;  // [batch token][rope_dim / 2]

  Impl(const ModelConfig& cfg, int n_ctx, int threads) : c(cfg), workers(threads) {
    int kv_dim = c.kv_heads * c.head_dim;
    k_cache.assign(static_cast<std::size_t>(c.layers) * n_ctx * kv_dim, 0.f);
    v_cache.assign(k_cache.size(), 0.f);
    logits.resize(c.vocab);
    scores.resize(static_cast<std::size_t>(workers.size()) * n_ctx);
  }

  void resize(int T) {
    auto r = [&](std::vector<float>& v, int width) { v.resize(static_cast<std::size_t>(T) * width); };
    r(x, c.dim), r(xb, c.dim), r(xb2, c.dim), r(q, c.heads * c.head_dim), r(k, c.kv_heads * c.head_dim),
        r(v, c.kv_heads * c.head_dim), r(att_out, c.heads * c.head_dim), r(hb, c.ffn), r(hb2, c.ffn);
  }

  // The form activations take to meet weights of type w: F32 and F16 as the weights, Q8_0 for
  // quantized weights (integer dots, as ggml does).
  static TensorType dot_type(TensorType w) {
    return w == TensorType::F32 || w == TensorType::F16 ? w : TensorType::Q8_0;
  }

  // Converts T rows of `in` (width cols) to `t` once, before the parallel region.
  const uint8_t* prepare(TensorType t, int cols, const float* in, int T) {
    if (t == TensorType::F32) return reinterpret_cast<const uint8_t*>(in);
    std::size_t rb = type_bytes(t, cols);
    act.resize(rb * T);
    for (int i = 0; i < T; ++i) quantize_row(t, in + static_cast<std::size_t>(i) * cols, act.data() + rb * i, cols);
    return act.data();
  }

  // out[t][r] = dot(row r of m, in[t]) for this thread's share of rows.
  static void matmul(const Matrix& m, const uint8_t* in, float* out, int T, int ith, int nth) {
    auto [r0, r1] = share(m.rows, ith, nth);
    const std::size_t blocks = m.cols / 32;
    for (int r = r0; r < r1; ++r) {
      const uint8_t* w = m.row(r);
      for (int t = 0; t < T; ++t) {
        float s = 0;
        switch (m.type) {
          case TensorType::F32:
            s = dot_f32(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(in) + std::size_t(t) * m.cols,
                        m.cols);
            break;
          case TensorType::F16:
            s = dot_f16(reinterpret_cast<const uint16_t*>(w),
                        reinterpret_cast<const uint16_t*>(in) + std::size_t(t) * m.cols, m.cols);
            break;
          case TensorType::Q8_0:
            s = dot_q8_0(reinterpret_cast<const BlockQ8_0*>(w), reinterpret_cast<const BlockQ8_0*>(in) + t * blocks,
                         blocks);
            break;
          case TensorType::Q4_0:
            s = dot_q4_0(reinterpret_cast<const BlockQ4_0*>(w), reinterpret_cast<const BlockQ8_0*>(in) + t * blocks,
                         blocks);
            break;
        }
        out[static_cast<std::size_t>(t) * m.rows + r] = s;
      }
    }
  }

  // Several matrices reading the same input (q/k/v, gate/up) in one parallel region, when their
  // weights take the input in the same form; otherwise one region each.
  void matmuls(std::initializer_list<std::pair<const Matrix*, float*>> jobs, const float* in, int T) {
    const Matrix& first = *jobs.begin()->first;
    const TensorType t = dot_type(first.type);
    for (auto& j : jobs)
      if (dot_type(j.first->type) != t) {
        for (auto& one : jobs) matmuls({one}, in, T);
        return;
      }
    const uint8_t* a = prepare(t, first.cols, in, T);
    workers.run([&](int ith, int nth) {
      for (auto& j : jobs) matmul(*j.first, a, j.second, T, ith, nth);
    });
  }

  // cos/sin of every rotation angle for positions p0 .. p0+T-1, once per forward pass rather
  // than per layer, for queries and keys alike. theta grows by repeated multiplication in
  // float, as ggml computes it, so results stay bit-compatible with llama.cpp's.
  void rope_table(int p0, int T) {
    const int half = c.rope_dim / 2;
    const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.rope_dim));
    rope_cos.resize(static_cast<std::size_t>(T) * half);
    rope_sin.resize(rope_cos.size());
    for (int t = 0; t < T; ++t) {
      float theta = static_cast<float>(p0 + t);
      for (int i = 0; i < half; ++i) {
        rope_cos[std::size_t(t) * half + i] = std::cos(theta);
        rope_sin[std::size_t(t) * half + i] = std::sin(theta);
        theta *= theta_scale;
      }
    }
  }

  // Rotates the pairs (2i, 2i+1) of each head of `vec` (the batch's token t).
  void rope(float* vec, int n_heads, int t) const {
    const int hd = c.head_dim, half = c.rope_dim / 2;
    const float* cs = &rope_cos[std::size_t(t) * half];
    const float* sn = &rope_sin[std::size_t(t) * half];
    for (int h = 0; h < n_heads; ++h)
      for (int i = 0; i < half; ++i) {
        float* p = vec + h * hd + 2 * i;
        const float a = p[0], b = p[1];
        p[0] = a * cs[i] - b * sn[i];
        p[1] = a * sn[i] + b * cs[i];
      }
  }

  void forward(const Model& m, std::span<const Token> tokens, int p0, int n_ctx, bool all_positions) {
    const int T = static_cast<int>(tokens.size());
    const int D = c.dim, hd = c.head_dim, kv_dim = c.kv_heads * hd, q_dim = c.heads * hd;
    const int group = c.heads / c.kv_heads;
    resize(T);
    rope_table(p0, T);
    const Matrix& E = m.embeddings();
    for (int t = 0; t < T; ++t) dequantize_row(E.type, E.row(tokens[t]), &x[std::size_t(t) * D], D);

    for (int l = 0; l < c.layers; ++l) {
      const LayerWeights& L = m.layers()[l];
      for (int t = 0; t < T; ++t) rmsnorm(&x[std::size_t(t) * D], L.attn_norm, &xb[std::size_t(t) * D], D, c.norm_eps);
      matmuls({{&L.wq, q.data()}, {&L.wk, k.data()}, {&L.wv, v.data()}}, xb.data(), T);
      float* kc = &k_cache[std::size_t(l) * n_ctx * kv_dim];
      float* vc = &v_cache[std::size_t(l) * n_ctx * kv_dim];
      for (int t = 0; t < T; ++t) {
        rope(&q[std::size_t(t) * q_dim], c.heads, t);
        rope(&k[std::size_t(t) * kv_dim], c.kv_heads, t);
        std::copy_n(&k[std::size_t(t) * kv_dim], kv_dim, kc + std::size_t(p0 + t) * kv_dim);
        std::copy_n(&v[std::size_t(t) * kv_dim], kv_dim, vc + std::size_t(p0 + t) * kv_dim);
      }
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      workers.run([&](int ith, int nth) {
        float* sc = &scores[std::size_t(ith) * n_ctx];
        auto [a, b] = share(T * c.heads, ith, nth);
        for (int job = a; job < b; ++job) {
          const int t = job / c.heads, h = job % c.heads, kvh = h / group, n = p0 + t + 1;
          const float* qh = &q[std::size_t(t) * q_dim + h * hd];
          float mx = -INFINITY;
          for (int p = 0; p < n; ++p) {
            sc[p] = dot_f32(qh, kc + std::size_t(p) * kv_dim + kvh * hd, hd) * scale;
            mx = std::max(mx, sc[p]);
          }
          double sum = 0;
          for (int p = 0; p < n; ++p) {
            sc[p] = std::exp(sc[p] - mx);
            sum += sc[p];
          }
          const float inv = static_cast<float>(1.0 / sum);
          float* o = &att_out[std::size_t(t) * q_dim + h * hd];
          std::fill_n(o, hd, 0.f);
          for (int p = 0; p < n; ++p) {
            const float w = sc[p] * inv;
            const float* vp = vc + std::size_t(p) * kv_dim + kvh * hd;
            for (int i = 0; i < hd; ++i) o[i] += w * vp[i];
          }
        }
      });
      matmuls({{&L.wo, xb2.data()}}, att_out.data(), T);
      for (std::size_t i = 0; i < std::size_t(T) * D; ++i) x[i] += xb2[i];

      for (int t = 0; t < T; ++t) rmsnorm(&x[std::size_t(t) * D], L.ffn_norm, &xb[std::size_t(t) * D], D, c.norm_eps);
      matmuls({{&L.w_gate, hb.data()}, {&L.w_up, hb2.data()}}, xb.data(), T);
      for (std::size_t i = 0; i < std::size_t(T) * c.ffn; ++i) {
        const float g = hb[i];
        hb[i] = g / (1.0f + std::exp(-g)) * hb2[i];
      }
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

Context::Context(std::shared_ptr<const Model> model, int n_ctx, int threads) : model_(std::move(model)) {
  n_ctx_ = n_ctx > 0 ? std::min(n_ctx, model_->config().context) : model_->config().context;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl_ = std::make_unique<Impl>(model_->config(), n_ctx_, threads);
}

Context::~Context() = default;

void Context::rewind(int position) { pos_ = std::clamp(position, 0, pos_); }

Result<std::span<const float>> Context::eval(std::span<const Token> tokens, bool all_positions) {
  if (tokens.empty()) return Error{"eval: no tokens"};
  if (pos_ + static_cast<int>(tokens.size()) > n_ctx_)
    return Error{fmt::format("context full: {} tokens in use, {} more, capacity {}", pos_, tokens.size(), n_ctx_)};
  for (Token t : tokens)
    if (t < 0 || t >= model_->config().vocab) return Error{fmt::format("token id {} is out of range", t)};
  impl_->forward(*model_, tokens, pos_, n_ctx_, all_positions);
  pos_ += static_cast<int>(tokens.size());
  return std::span<const float>(impl_->logits);
}

}  // namespace wand::llm
