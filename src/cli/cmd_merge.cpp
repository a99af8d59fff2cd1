// `wand merge`: models of one architecture averaged into one GGUF (train::merge_models: model
// soups, WiSE-FT); this face parses options and prints what it wrote.
#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "train/export.h"

namespace wand::cli {

Command add_merge(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "merge", "Average models of one architecture into one GGUF (a model soup; a fine-tune with its start: WiSE-FT)");
  auto o = std::make_shared<train::MergeOptions>();
  cmd->add_option("--model", o->models,
                  "A GGUF model, PATH.gguf or local:PATH.gguf as other commands take it (repeat: two or more, the same "
                  "architecture, tokenizer and prompt format)")
      ->required()
      ->allow_extra_args(false)
      ->transform([](std::string m) { return m.starts_with("local:") ? m.substr(6) : m; });
  cmd->add_option("--weights", o->weights, "One weight per --model, in order, summing to 1 (default: equal; a negative one extrapolates)")->delimiter(',');
  cmd->add_option("--out", o->out, "The merged .gguf")->required()->check(writable_file());
  add_matrix_type_option(cmd, o->type);
  cmd->add_option("--name", o->name, "general.name in the file")->capture_default_str();
  return [o] {
    if (auto m = train::merge_models(*o); !m) {
      fmt::print(stderr, "wand merge: {}\n", m.error().message);
      return kExitBadInput;
    }
    std::string parts;
    for (std::size_t i = 0; i < o->models.size(); ++i)
      parts += fmt::format("{}{:.6g} × {}", i ? " + " : "", o->weights.empty() ? 1.0 / o->models.size() : o->weights[i], o->models[i]);
    fmt::print(stderr, "wand merge: wrote {} ({})\n", o->out, parts);
    return kExitOk;
  };
}

}  // namespace wand::cli
