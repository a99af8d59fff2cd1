#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "train/export.h"

namespace wand::cli {

Command add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Turn a wand-train checkpoint into a GGUF model for the embedded engine");
  auto o = std::make_shared<train::ExportOptions>();
  auto type = std::make_shared<std::string>("q8_0");
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint.wckpt from wand-train")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.gguf of the corpus it was trained on")->required();
  cmd->add_option("--out", o->out, "Output .gguf")->required()->check(writable_file());
  cmd->add_option("--type", *type, "Matrix type: f32, f16, q8_0, q4_0")->capture_default_str();
  cmd->add_option("--prompt-format", o->prompt_format, "pot (programs) or cot (rationales)")->capture_default_str();
  cmd->add_option("--name", o->name, "general.name in the file")->capture_default_str();
  return [o, type] {
    static const std::map<std::string, llm::TensorType> types = {
        {"f32", llm::TensorType::F32}, {"f16", llm::TensorType::F16}, {"q8_0", llm::TensorType::Q8_0},
        {"q4_0", llm::TensorType::Q4_0}};
    auto it = types.find(*type);
    if (it == types.end()) {
      fmt::print(stderr, "wand export: --type {}: expected f32, f16, q8_0 or q4_0\n", *type);
      return kExitBadInput;
    }
    o->type = it->second;
    if (auto r = train::export_model(*o); !r) {
      fmt::print(stderr, "wand export: {}\n", r.error().message);
      return kExitBadInput;
    }
    fmt::print("wrote {}\n", o->out);
    return kExitOk;
  };
}

}  // namespace wand::cli
