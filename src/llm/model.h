// The Llama-family transformer of the embedded engine (RMSNorm, RoPE, grouped-query attention,
// SwiGLU) over weights mapped from a GGUF file. A Model is immutable and shared; a Context holds
// one sequence's KV cache and scratch, so several contexts can run on one model at once.
#pragma once
#include <memory>
#include <span>
#include <string>
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
};

class Context {
 public:
  // threads = 0 uses every core.
  Context(std::shared_ptr<const Model> model, int n_ctx = 0, int threads = 0);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs `tokens` at the next positions (one batch, causal) and returns the logits of the last
  // one (vocab floats). With all_positions, the logits of every one instead: tokens.size() rows
  // of vocab floats, row t predicting the token after tokens[t] (scoring a prompt in one pass).
  // The span stays valid until the next eval.
  Result<std::span<const float>> eval(std::span<const Token> tokens, bool all_positions = false);
  int position() const { return pos_; }
  int capacity() const { return n_ctx_; }
  void rewind(int position);  // keeps the cache up to `position` (a shared prompt prefix)
  const Model& model() const { return *model_; }

 private:
  struct Impl;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
  int n_ctx_ = 0, pos_ = 0;
};

}  // namespace wand::llm
