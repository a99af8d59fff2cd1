// From the trainer's checkpoint (WANDCKPT1: weights under their GGUF names) to a GGUF model
// the embedded engine runs, with the corpus tokenizer and the prompt format in its metadata.
#pragma once
#include <string>

#include "common/status.h"
#include "llm/gguf.h"
#include "llm/weights.h"

namespace wand::train {

Result<llm::ModelWeights> read_checkpoint(const std::string& path);

// A GGUF model's weights as f32 (quantized matrices dequantized), with its config, tokenizer and
// prompt format: what fine-tuning a shipped model (`wand-train --init`) starts from. A tied
// model's output matrix is its embeddings.
Result<llm::ModelWeights> weights_from_gguf(const std::string& path);

// Writes `w` as a WANDCKPT1 checkpoint, byte for byte the header wand-train writes (its --init
// matches the tensor list as text), tensors in the trainer's order, f32 data.
VoidResult write_checkpoint(const std::string& path, const llm::ModelWeights& w, const std::string& source);

struct ExportOptions {
  std::string checkpoint, tokenizer, out;
  llm::TensorType type = llm::TensorType::Q8_0;
  // How the model is prompted: pot, pot-numbers (reason/numbers.h), cot or func (llm::format_question: `wand solve`, `wand code`),
  // agent or agent_json (an agent model: the loop's completion format with code steps or JSON tool
  // calls; corpus.h's agent parts)
  std::string prompt_format = "pot";
  std::string name = "wand";
};
VoidResult export_model(const ExportOptions& opt);

}  // namespace wand::train
