// Model weights as plain f32 arrays by GGUF tensor name, and their export to a llama-family
// GGUF the engine (and llama.cpp) loads. The trainer exports through this; tests and benches
// build random-weight models with it.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "llm/gguf.h"
#include "llm/model.h"
#include "llm/tokenizer.h"

namespace wand::llm {

struct ModelWeights {
  ModelConfig config;
  Tokenizer tokenizer;
  std::string prompt_format;  // recorded as wand.prompt_format
  std::string name = "wand";
  // GGUF names (token_embd.weight, blk.0.attn_q.weight, ...) -> row-major values, rows of dims[0].
  std::map<std::string, std::vector<float>> tensors;
};

// The tensor names and shapes ([cols, rows] / [n]) a config implies, in file order.
std::vector<std::pair<std::string, std::vector<uint64_t>>> llama_tensor_shapes(const ModelConfig& c, bool tied);

// The tokenizer.ggml.* keys the engine's Tokenizer::from_gguf reads back.
void set_tokenizer_metadata(GgufWriter& g, const Tokenizer& tok);

// Matrices are stored as `matrix_type` (norm vectors stay F32); Q8_0/Q4_0 need rows that are a
// multiple of 32.
VoidResult write_model(const std::string& path, const ModelWeights& w, TensorType matrix_type);

// Gaussian weights (std 0.02, norms 1), deterministic in `seed`; a byte-level tokenizer when
// the config's vocab is at least 256 + 3.
ModelWeights random_weights(const ModelConfig& c, uint64_t seed);

}  // namespace wand::llm
