#include "cli/options.h"

#include <map>
#include <fmt/core.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "common/module.h"
#include "common/output.h"
#include "common/text.h"
#include "store/store.h"

namespace wand::cli {

CLI::Validator number(NumberRule rule) {
  return CLI::Validator([rule](const std::string& text) { return number_problem(text, rule); }, describe(rule));
}

unsigned max_parallel() { return std::max(8u, 4 * std::max(1u, std::thread::hardware_concurrency())); }

CLI::Validator parallel(bool zero_means_all_cores) {
  NumberRule rule{.lo = zero_means_all_cores ? 0.0 : 1.0, .hi = double(max_parallel()), .integer = true};
  return CLI::Validator(
      [rule](const std::string& text) {
        std::string p = number_problem(text, rule);
        return p.empty() ? p : p + " (4 per core on this machine, at least 8)";
      },
      describe(rule));
}

CLI::Option* add_kv_cache_option(CLI::App* cmd, std::string& into) {
  return cmd
      ->add_option("--kv-cache", into,
                   "Embedded engine's KV cache type: f32, f16 (half the memory) or q8 (int8, a scale per position "
                   "and head: about a quarter; fastest for several sequences decoded together)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "q8"}));
}

CLI::Option* add_threads_option(CLI::App* cmd, int& into) {
  return cmd->add_option("--threads", into, "Embedded engine's threads (0 = every core)")->check(parallel(true));
}

CLI::Option* add_matrix_type_option(CLI::App* cmd, llm::TensorType& into) {
  static const std::map<std::string, llm::TensorType> types = {
      {"f32", llm::TensorType::F32}, {"f16", llm::TensorType::F16}, {"q8_0", llm::TensorType::Q8_0}, {"q4_0", llm::TensorType::Q4_0}};
  std::string initial;
  for (auto& [name, type] : types)
    if (type == into) initial = name;
  return cmd
      ->add_option_function<std::string>(
          "--type", [&into](const std::string& name) { into = types.at(name); }, "Matrix type: f32, f16, q8_0 or q4_0")
      ->check(CLI::IsMember({"f32", "f16", "q8_0", "q4_0"}))
      ->default_str(initial);
}

std::string out_dir_problem(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) return fmt::format("--out {}: not a folder", dir);
  fs::create_directories(dir, ec);
  if (ec) return fmt::format("--out {}: cannot create: {}", dir, ec.message());
  if (::access(dir.c_str(), W_OK) != 0) return fmt::format("--out {}: cannot write in it: {}", dir, std::strerror(errno));
  return "";
}

std::string same_output_file(const char* option_a, const std::string& a, const char* option_b, const std::string& b) {
  if (a.empty() || b.empty()) return "";
  std::error_code ec;
  auto canon = [&](const std::string& p) { return std::filesystem::weakly_canonical(p, ec); };
  if (canon(a) != canon(b) && !std::filesystem::equivalent(a, b, ec)) return "";  // equivalent: hard links too
  return fmt::format("{} {}: the same file as {} {}; give each its own", option_b, b, option_a, a);
}

CLI::Option* add_store_option(CLI::App* cmd, std::string& store, const std::string& what) {
  return cmd
      ->add_option("--store", store,
                   what + " (a file or a postgresql:// URI; default: " + store::kDefaultStoreSources + ")")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return is_blank(v)
                       ? std::string("must not be empty or blank (leave --store out for the default)")
                       : std::string();
          },
          "PATH|URI"));
}

std::string output_is_an_input(const char* input_option, const std::vector<std::string>& inputs, const std::string& out,
                               const std::string& html) {
  for (const auto& input : inputs)
    for (auto [option, path] : {std::pair{"--out", &out}, std::pair{"--html", &html}})
      if (auto same = same_output_file(input_option, input, option, *path); !same.empty()) return same;
  return "";
}

std::string output_is_the_store(const std::string& store, const std::string& out, const std::string& html) {
  std::string path = store.empty() ? store::default_store_path() : store;
  return store::is_database_uri(path) ? "" : output_is_an_input("--store", {path}, out, html);
}

CLI::Validator integer_list(NumberRule rule) {
  return CLI::Validator(
      [rule](const std::string& text) -> std::string {
        std::istringstream in(text);
        std::string item;
        bool any = false;
        while (std::getline(in, item, ',')) {
          if (auto p = number_problem(item, rule); !p.empty()) return "each value " + p;
          any = true;
        }
        return any ? "" : "must list at least one value";
      },
      "list of " + describe(rule));
}

CLI::Validator writable_file() {
  return CLI::Validator(
      [](const std::string& path) {
        auto w = check_writable(path);
        return w ? std::string() : w.error().message;
      },
      "writable");
}

std::string find_trainer() {
  namespace fs = std::filesystem;
  if (const char* e = std::getenv("WAND_TRAIN"); e && *e) return e;
  std::error_code ec;
  auto dir = executable_dir();
  fs::path self = dir ? *dir : ".";
  for (const fs::path& p : {self / "wand-train", self / "../../wand-train", fs::path(WAND_TRAIN_DEFAULT)})
    if (::access(p.c_str(), X_OK) == 0) return fs::weakly_canonical(p, ec).string();
  return WAND_TRAIN_DEFAULT;
}

}  // namespace wand::cli
