// Checks every command applies to its options before any work starts, so a bad value gets one
// message form ("--timeout: must be a positive number of seconds up to 86400, got 'nan'") and
// exit status 2. Validators run on the text as given, before CLI11 converts it.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

#include "common/numbers.h"
#include "llm/gguf.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"

namespace wand::cli {

// A number the rule accepts (common/numbers.h); NaN, infinities and 1e400 never are.
CLI::Validator number(NumberRule rule);

// Common rules. Upper bounds are generous but finite, so an absurd value is refused instead of
// turning a limit off or exhausting the machine.
// The sandbox's own limit ranges (sandbox.h), so an option and a JSON-lines field agree.
inline constexpr NumberRule kSeconds = sandbox::kTimeoutRange;
inline constexpr NumberRule kMemoryMiB = sandbox::kMemoryMbRange;
inline constexpr NumberRule kOutputBytes = sandbox::kMaxOutputBytesRange;
inline constexpr NumberRule kSeed{.lo = 0, .hi = 1.8446744073709552e19, .integer = true};
inline constexpr NumberRule kProbability{.lo = 0, .hi = 1};
inline constexpr NumberRule kTemperature = llm::kTemperatureRange;

// Parallel cells (--cells) or engine threads (--threads): at most 4 per core (at least 8).
// More only adds start-up cost and contention (500 cells made 200 short runs 60x slower).
unsigned max_parallel();
CLI::Validator parallel(bool zero_means_all_cores);

// --kv-cache f32|f16|q8 into `into` (llm::BackendOptions::kv_cache), for the commands that run a model.
CLI::Option* add_kv_cache_option(CLI::App* cmd, std::string& into);

// --threads N into `into` (llm::BackendOptions::threads): the embedded engine's threads, 0 = every core.
// A machine option: it changes the speed, not the answers, and a run does not record it.
CLI::Option* add_threads_option(CLI::App* cmd, int& into);

// --type of the commands that write a GGUF model (export, merge): f32, f16, q8_0 (the default of
// `into`) or q4_0 for its matrices; norms stay f32.
CLI::Option* add_matrix_type_option(CLI::App* cmd, llm::TensorType& into);

// A comma-separated list of integers in [lo, hi] (--k 1,10,100).
CLI::Validator integer_list(NumberRule rule);

// The path can be written (common/output.h check_writable): --out, --html, ... are checked at
// parse time, before any work.
CLI::Validator writable_file();

// An output folder (--out of corpus, improve, study), created if missing, once the other options
// are checked: the message naming it ("--out /proc/x: cannot create: ...", "--out README.md: not a
// folder"), "" when it is one that can be written in.
std::string out_dir_problem(const std::string& dir);

// Two output options naming one file (--out and --html): the message naming both ("--html r.txt:
// the same file as --out r.txt"), "" when they differ or either is not given.
std::string same_output_file(const char* option_a, const std::string& a, const char* option_b, const std::string& b);
// --store PATH|URI with its help (`what`, then the default's sources): an empty value is refused
// rather than read as "the default" (`--store "$S"` with S unset).
CLI::Option* add_store_option(CLI::App* cmd, std::string& store, const std::string& what = "The run store");

// The same for --out and --html against a command's input files (`input_option`'s: --merge,
// --dataset, --samples), which an output would overwrite ("--out s-0.jsonl: the same file as
// --merge s-0.jsonl; give each its own"); hard links count as the same file.
std::string output_is_an_input(const char* input_option, const std::vector<std::string>& inputs, const std::string& out,
                               const std::string& html);
// The same against the run store's file (`store`, or the default store when empty), which an
// output written over it would destroy with every run and skill in it.
std::string output_is_the_store(const std::string& store, const std::string& out, const std::string& html = "");

// wand-train (`wand improve`, `wand study`): $WAND_TRAIN, else beside this binary or two folders
// up (the build tree's layout), else where this build put it.
std::string find_trainer();

}  // namespace wand::cli
