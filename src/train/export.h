// From the trainer's checkpoint (WANDCKPT1: weights under their GGUF names) to a GGUF model
// the embedded engine runs, with the corpus tokenizer and the prompt format in its metadata.
#pragma once
#include <string>

#include "common/status.h"
#include "llm/gguf.h"
#include "llm/weights.h"

namespace wand::train {

Result<llm::ModelWeights> read_checkpoint(const std::string& path);

struct ExportOptions {
  std::string checkpoint, tokenizer, out;
  llm::TensorType type = llm::TensorType::Q8_0;
  // pot or cot: how `wand solve` prompts the model; agent or agent_json: an agent model (the
  // loop's completion format with code steps, or with JSON tool calls; corpus.h's agent parts)
  std::string prompt_format = "pot";
  std::string name = "wand";
};
VoidResult export_model(const ExportOptions& opt);

}  // namespace wand::train
