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
  std::string prompt_format = "pot";  // pot, cot or func (llm::format_question): how the model is prompted
  std::string name = "wand";
};
VoidResult export_model(const ExportOptions& opt);

}  // namespace wand::train
