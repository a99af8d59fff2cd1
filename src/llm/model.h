// The Llama-family transformer of the embedded engine (RMSNorm, RoPE, grouped-query attention,
// SwiGLU) over weights mapped from a GGUF file. A Model is immutable and shared; a Context holds
// the KV caches of its sequences and scratch, so several contexts can run on one model at once.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "llm/gguf.h"
#include "llm/tokenizer.h"

namespace wand::llm {

struct ModelConfig {
  std::string arch = "llama";
  int dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, vocab = 0, context = 2048;
  int head_dim = 0, rope_dim = 0;
  float norm_eps = 1e-5f, rope_base = 10000.f;
};

// A weight matrix: `rows` outputs, each a row of `cols` inputs stored in `type`.
struct Matrix {
  TensorType type = TensorType::F32;
  int rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  // The weights regrouped at load for the multi-row kernels (kernels.h, pack_rows), or null;
  // `data` stays the file's rows (embedding lookups read those).
  const uint8_t* packed = nullptr;
  std::size_t row_bytes() const { return type_bytes(type, static_cast<std::size_t>(cols)); }
  const uint8_t* row(int r) const { return data + row_bytes() * static_cast<std::size_t>(r); }
};

struct LayerWeights {
  const float* attn_norm;
  const float* ffn_norm;
  Matrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

class Model {
 public:
  static Result<std::shared_ptr<const Model>> load(const std::string& path);
  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // Prompt format recorded by the trainer (wand.prompt_format), or "".
  const std::string& prompt_format() const { return prompt_format_; }

  const Matrix& embeddings() const { return tok_embd_; }
  const Matrix& output() const { return output_; }
  const float* output_norm() const { return output_norm_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }

 private:
  std::shared_ptr<GgufFile> file_;
  ModelConfig config_;
  Tokenizer tokenizer_;
  std::string prompt_format_;
  Matrix tok_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<LayerWeights> layers_;
  std::vector<std::vector<float>> owned_;  // F16 norm vectors converted to F32
  std::shared_ptr<uint8_t> packed_;  // one mapping holding every packed matrix (unmapped when freed)
};

// The KV cache's element type: F32; F16 as llama.cpp's default (half the memory and half the
// bytes attention reads per position; keys and values rounded to fp16, round to nearest even, as
// llama.cpp rounds them); or Q8: each position's key and value of a head as int8 with one float
// scale (amax / 127, rounded to nearest even), a quarter of F32's memory plus the scales, and
// the query quantized alike, so scores are integer dots (kernels.h, q8_scores; as llama.cpp's
// q8_0 K cache, whose blocks of 32 are a head here when heads have 32 dimensions). Q8 needs
// head_dim % 4 == 0 (Context throws std::invalid_argument otherwise; open_local_backend checks).
enum class CacheType { f32, f16, q8 };
// "f32", "f16" or "q8"; anything else is an error naming the value.
Result<CacheType> parse_cache_type(std::string_view name);

class Context {
 public:
  // threads = 0 uses every core. A parallel region runs on the calling thread alone when its
  // work is too small to pay for waking the others, or when that has lately been faster per
  // multiply-add (cores busy with other work); worker threads keep off the caller's CPU.
  Context(std::shared_ptr<const Model> model, int n_ctx = 0, int threads = 0, CacheType cache = CacheType::f32);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs `tokens` at sequence 0's next positions (one batch, causal) and returns the logits of
  // the last one (vocab floats). With all_positions, the logits of every one instead:
  // tokens.size() rows of vocab floats, row t predicting the token after tokens[t] (scoring a
  // prompt in one pass). The span stays valid until the next eval or decode.
  Result<std::span<const float>> eval(std::span<const Token> tokens, bool all_positions = false);
  int position() const { return pos_[0]; }
  int capacity() const { return n_ctx_; }
  void rewind(int position) { rewind(0, position); }  // keeps sequence 0's cache up to `position`
  const Model& model() const { return *model_; }

  // ---- several sequences over one model, decoded together ----
  // Each sequence has its own KV cache of capacity() positions. Sampling k continuations of one
  // prompt: prefill it once into sequence 0, copy_sequence() it into 1..k-1, then decode() one
  // token of every unfinished sequence per step: one forward pass whose matrix products read
  // each weight once for all of them. Results equal decoding each sequence alone, bit for bit.
  void set_sequences(int n);  // n >= 1; new sequences are empty (dropped ones' memory is kept for reuse)
  int sequences() const { return static_cast<int>(pos_.size()); }
  int position(int seq) const { return pos_.at(seq); }  // seq < sequences()
  void rewind(int seq, int position);
  // Sequence `to` holds what `from` holds (its first position(from) cache entries).
  void copy_sequence(int from, int to);
  // tokens[i] at the next position of sequence seqs[i] (distinct sequences), in one pass;
  // returns seqs.size() rows of vocab logits, row i for seqs[i]. Errors name a bad sequence,
  // token or a full cache.
  Result<std::span<const float>> decode(std::span<const int> seqs, std::span<const Token> tokens);

 private:
  struct Impl;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
  int n_ctx_ = 0;
  std::vector<int> pos_;  // per sequence: positions its cache holds
};

}  // namespace wand::llm
