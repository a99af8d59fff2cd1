// From the trainer's checkpoint (WANDCKPT1: weights under their GGUF names) to a GGUF model
// the embedded engine runs, with the corpus tokenizer and the prompt format in its metadata.
#pragma once
#include <string>
#include <vector>

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

// Linear merge of models of one architecture (weight averaging): every tensor is sum_i w_i * θ_i,
// computed in f32 from the models' weights (quantized matrices dequantized). Equal weights over
// fine-tunes of one start are a uniform model soup (Wortsman et al., 2022, "Model soups");
// a fine-tune and its start at (α, 1 - α) is WiSE-FT (Wortsman et al., 2022, "Robust fine-tuning
// of zero-shot models"), which keeps more of the start's behaviour off the fine-tuning data.
// The config, tokenizer and prompt format must be the same in every model (they are the first's
// in `out`); weights are finite, one per model, and sum to 1 within 1e-6 (empty: equal; a
// negative one extrapolates, as task arithmetic does). Errors name the model and what differs.
struct MergeOptions {
  std::vector<std::string> models;  // GGUF files, two or more
  std::vector<double> weights;
  std::string out;
  llm::TensorType type = llm::TensorType::Q8_0;
  std::string name = "wand-merged";
};
VoidResult merge_models(const MergeOptions& opt);

}  // namespace wand::train
