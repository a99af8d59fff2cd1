#include <cmath>
#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <fstream>
#include <optional>
#include <tuple>
#include <unordered_set>

#include <fmt/core.h>

#include "common/numbers.h"
#include "common/output.h"
#include "llm/gguf.h"
#include "llm/weights.h"
#include "train/bpe.h"
#include "reason/numbers.h"
#include "reason/reason.h"
#include "train/corpus.h"
#include "train/world.h"

namespace wand::train {

Result<std::vector<std::pair<std::string, double>>> parse_mix(const std::string& spec) {
  std::vector<std::pair<std::string, double>> mix;
  std::size_t p = 0;
  while (p <= spec.size()) {
    auto q = spec.find(',', p);
    std::string item = spec.substr(p, q == std::string::npos ? std::string::npos : q - p);
    auto eq = item.find('=');
    std::string name = item.substr(0, eq);
    if (std::find(kCorpusParts.begin(), kCorpusParts.end(), name) == kCorpusParts.end())
      return Error{fmt::format("--mix: unknown part '{}' (parts: pot = question + program, cot = question + rationale, "
                               "func = function task, tests = asserts for a function, code = plain code, text = plain text, "
                               "grammar/grammar-cot, gsm8k/gsm8k-cot, agent = agent trajectories as code, "
                               "agent_json = agent trajectories as JSON tool calls, world = prose about a generated world)", name)};
    for (auto& [seen, _] : mix)
      if (seen == name) return Error{fmt::format("--mix: part '{}' is given twice", name)};
    double w = 1.0;
    if (eq != std::string::npos) {
      if (auto p = number_problem(item.substr(eq + 1), {.lo = 0, .hi = 1e6, .lo_open = true}); !p.empty())
        return Error{fmt::format("--mix: the weight of '{}' {}", name, p)};
      w = std::stod(item.substr(eq + 1));  // checked above: a finite number in (0, 1e6]
    }
    mix.emplace_back(name, w);
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return mix;
}

namespace {

bool uses_functions(const std::string& part) { return part == "func" || part == "tests" || part == "code" || part == "text"; }
bool uses_gsm8k(const std::string& part) { return part.starts_with("gsm8k"); }
bool uses_grammar(const std::string& part) { return part.starts_with("grammar"); }
// The parts --number-names writes with names: the programs' parts, not the rationales'.
bool named_part(const std::string& part) { return part == "pot" || part == "grammar" || part == "gsm8k"; }

// The training stream's function tasks come from this seed (the verified sample too).
uint64_t function_seed(uint64_t seed) { return seed ^ 0xf00d; }
// ... and the grammar's problems from this one.
uint64_t grammar_seed(uint64_t seed) { return seed ^ 0x6a6d; }

// Draws the documents of every part. Word problems, grammar problems and function tasks come
// from their own generators, so a mix of pot and cot draws exactly the problems it drew before
// parts were added. GSM8K's problems (verified, `gsm8k`) are taken in a shuffled order, again
// from the start once all were used.
class Documents {
 public:
  // `named`: GSM8K's problems in the pot-numbers format (the gsm8k part with --number-names);
  // `names`: the pot and grammar parts are written in it too, `batch` generated problems at a
  // time mapped and run in one sandbox batch.
  Documents(uint64_t seed, const std::vector<Problem>* gsm8k = nullptr, const std::vector<NamedProblem>* named = nullptr,
            std::optional<reason::Reading> names = std::nullopt, int batch = 2000)
      : problems_(seed), grammar_(grammar_seed(seed)), functions_(function_seed(seed)), coin_(seed * 31 + 17),
        seed_(seed), gsm8k_(gsm8k), named_gsm8k_(named), names_(names), named_batch_(batch),
        world_rng_(seed ^ 0x301d) {
    if (gsm8k_) {
      order_.resize(gsm8k_->size());
      for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
      std::shuffle(order_.begin(), order_.end(), std::mt19937_64(seed ^ 0x65383));
    }
    if (named_gsm8k_) {
      named_order_.resize(named_gsm8k_->size());
      for (std::size_t i = 0; i < named_order_.size(); ++i) named_order_[i] = i;
      std::shuffle(named_order_.begin(), named_order_.end(), std::mt19937_64(seed ^ 0x65383));
    }
  }

  // Named documents' names shuffled, each by a seed drawn from `seed` (CorpusOptions::shuffle_names).
  void shuffle_names(uint64_t seed) { names_rng_.emplace(seed); }

  // Generated problems mapped and run, and those dropped because their named program failed.
  long long names_checked() const { return names_checked_; }
  long long names_dropped() const { return names_dropped_; }

  // One document of `part`; `key` identifies its item, to keep it out of the held-out sets;
  // `question` says whether the key is a word problem's question (what decontamination checks).
  Result<std::string> next(const std::string& part, std::string& key, bool& question) {
    question = true;
    asserts_.clear();
    if (names_ && named_part(part)) {
      const NamedProblem* p = nullptr;
      if (part == "gsm8k") {
        p = &named_gsm8k_->at(named_order_[named_at_++ % named_order_.size()]);
      } else {
        auto& queue = part == "pot" ? pot_named_ : grammar_named_;
        if (queue.empty()) {  // the next batch of generated problems, mapped and run
          std::vector<Problem> batch;
          for (int i = 0; i < named_batch_; ++i)
            batch.push_back(part == "pot" ? problems_.next(TemplateSet::train) : grammar_.next(TemplateSet::train));
          auto named = name_numbers(batch, *names_);
          if (!named) return named.error();
          names_checked_ += named_batch_, names_dropped_ += named_batch_ - static_cast<long long>(named->size());
          queue.assign(named->begin(), named->end());
          if (queue.empty()) return Error{fmt::format("--number-names: no {} program of a batch of {} survived mapping", part, named_batch_)};
        }
        last_ = std::move(queue.front());
        queue.pop_front();
        p = &last_;
      }
      key = p->problem.question;
      return p->document(names_rng_ ? (*names_rng_)() | 1 : 0);
    }
    if (part == "agent" || part == "agent_json") {
      question = false;
      return agent_document(seed_, agent_n_[part]++, part == "agent_json", key);
    }
    if (part == "world") {  // the same world whatever the corpus's seed; only the paragraphs differ
      question = false;
      key = world_.document(world_rng_);
      return key;
    }
    if (uses_grammar(part) || uses_gsm8k(part)) {
      Problem p = uses_grammar(part) ? grammar_.next(TemplateSet::train) : gsm8k_->at(order_[at_++ % order_.size()]);
      key = p.question;
      return part.ends_with("-cot") ? reason::cot_prompt(p.question) + p.rationale : reason::pot_prompt(p.question) + p.program;
    }
    bool from_problem = part == "pot" || part == "cot" || (part != "func" && part != "tests" && coin_() % 2 == 0);
    if (from_problem) {
      Problem p = problems_.next(TemplateSet::train);
      key = p.question;
      if (part == "pot") return reason::pot_prompt(p.question) + p.program;
      if (part == "cot") return reason::cot_prompt(p.question) + p.rationale;
      if (part == "code") return p.program;
      return p.question + " " + p.rationale;  // text
    }
    question = false;
    FunctionTask f = functions_.next(TemplateSet::train);
    key = f.tests_text();
    asserts_ = f.tests;  // the code and text parts show all of the tests (text as worked examples)
    // The first 1 to all of the tests: MBPP's prompt (and `wand code`'s visible tests) shows one,
    // and a model that only ever saw 3-4 goes on writing tests after "Code:" when shown fewer.
    if (part == "func") {
      asserts_.resize(1 + coin_() % f.tests.size());
      return function_prompt(f, asserts_.size()) + f.code;
    }
    if (part == "tests") {
      asserts_ = f.more_tests;
      std::string doc = tests_prompt(f);
      for (auto& a : f.more_tests) doc += a + "\n";
      return doc;
    }
    if (part == "code") return f.code + "\n\n" + f.tests_text();
    return f.text;
  }
  // The asserts the last document showed (a function task's; none for other documents): a
  // held-out function task may share none of them, in any order or document.
  const std::vector<std::string>& last_asserts() const { return asserts_; }

 private:
  ProblemGenerator problems_;
  GrammarGenerator grammar_;
  FunctionTaskGenerator functions_;
  std::mt19937_64 coin_;
  uint64_t seed_;
  const std::vector<Problem>* gsm8k_;
  const std::vector<NamedProblem>* named_gsm8k_;
  std::optional<reason::Reading> names_;
  int named_batch_ = 2000;  // generated problems mapped and run per sandbox batch
  std::deque<NamedProblem> pot_named_, grammar_named_;
  NamedProblem last_;
  std::vector<std::size_t> named_order_;
  std::size_t named_at_ = 0;
  long long names_checked_ = 0, names_dropped_ = 0;
  std::optional<std::mt19937_64> names_rng_;
  std::vector<std::size_t> order_;
  std::size_t at_ = 0;
  std::map<std::string, long long> agent_n_;  // the agent parts' next instance
  std::vector<std::string> asserts_;
  World world_;
  std::mt19937_64 world_rng_;
};

// A tokenizer to reuse: it must read, and its ids must fit the corpus's uint16 format.
Result<llm::Tokenizer> load_tokenizer(const std::string& path) {
  auto f = llm::GgufFile::open(path);
  if (!f) return Error{"--tokenizer " + f.error().message};
  auto t = llm::Tokenizer::from_gguf(**f);
  if (!t) return Error{"--tokenizer " + t.error().message};
  if (t->bos() < 0 || t->eos() < 0 || t->size() > static_cast<std::size_t>(kMaxVocab))
    return Error{fmt::format("--tokenizer {}: a corpus tokenizer needs <|bos|> and <|eos|> and at most {} tokens", path,
                             kMaxVocab)};
  return std::move(*t);
}

// Writes a vocabulary-only GGUF (what the trainer's export and `wand solve` read back).
VoidResult write_tokenizer(const std::string& path, const llm::Tokenizer& tok) {
  llm::GgufWriter g;
  g.set("general.architecture", std::string("llama"));
  llm::set_tokenizer_metadata(g, tok);
  return g.write(path);
}

}  // namespace

std::string function_prompt(const FunctionTask& t, std::size_t shown) {
  std::string tests;
  for (std::size_t i = 0; i < t.tests.size() && i < shown; ++i) tests += t.tests[i] + "\n";
  return "Task: " + t.description + "\nTests:\n" + tests + "Code:\n";
}

// The name is given: tests call the function, and a tester that had to guess it would write
// asserts of some other function (AgentCoder's test designer sees the signature too).
std::string tests_prompt(const FunctionTask& t) { return "Task: " + t.description + "\nTests for " + t.name + ":\n"; }

namespace {
// The manifest's "format" of a token corpus, `wand corpus`'s and `wand export --corpus`'s alike.
constexpr std::string_view kTokenFormat =
    "uint16 little-endian token ids; each document is <|bos|> text <|eos|>; shards in order";

// Marks a folder as a corpus's from the start of a run (the manifest comes last), so that a run
// stopped midway may be run again into it.
constexpr std::string_view kCorpusMark = ".wand-corpus";

// The files of a corpus folder that a run replaces: its shards, held-out sets, tokenizer, manifest.
bool replaced_by_a_run(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  return (name.starts_with("train") && p.extension() == ".bin") || (name.starts_with("heldout-") && p.extension() == ".jsonl") ||
         name == "manifest.json" || name == "tokenizer.gguf";
}

// Why a run must not write into `dir`: it holds files a run replaces that no wand corpus run (nor
// `wand export --corpus`, whose manifest has the same token format) wrote; "" when it may.
std::string foreign_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::exists(fs::path(dir) / kCorpusMark, ec)) return "";
  std::ifstream in(fs::path(dir) / "manifest.json");
  Json manifest = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_object() && manifest.value("format", "") == kTokenFormat) return "";
  std::vector<std::string> foreign;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (replaced_by_a_run(e.path())) foreign.push_back(e.path().filename().string());
  if (foreign.empty()) return "";
  std::sort(foreign.begin(), foreign.end());
  return fmt::format("--out {}: holds {}{}, which no earlier wand corpus run wrote and this run would replace; give a new "
                     "or empty folder", dir, foreign.front(),
                     foreign.size() > 1 ? fmt::format(" and {} more such file{}", foreign.size() - 1, foreign.size() > 2 ? "s" : "") : "");
}
}  // namespace

VoidResult check_corpus_options(const CorpusOptions& opt) {
  namespace fs = std::filesystem;
  if (opt.out_dir.empty()) return Error{"--out: no directory given"};
  if (auto foreign = foreign_files(opt.out_dir); !foreign.empty()) return Error{foreign};
  if (opt.mix.empty()) return Error{"--mix: no parts given"};
  for (auto& [part, w] : opt.mix) {
    if (std::find(kCorpusParts.begin(), kCorpusParts.end(), part) == kCorpusParts.end())
      return Error{fmt::format("--mix: unknown part '{}'", part)};
    if (!(w > 0) || !std::isfinite(w)) return Error{fmt::format("--mix: the weight of '{}' must be a positive number", part)};
  }
  if (opt.tokens < 1) return Error{fmt::format("--tokens must be at least 1, got {}", opt.tokens)};
  // train_bpe cannot go below the byte alphabet; a smaller --vocab would silently become 259.
  if (opt.tokenizer.empty() && (opt.vocab < kMinVocab || opt.vocab > kMaxVocab))
    return Error{fmt::format("--vocab must be from {} (256 bytes and 3 control tokens) to {}, got {}", kMinVocab,
                             kMaxVocab, opt.vocab)};
  if (opt.held_out < 0 || opt.verify < 0 || opt.shard_tokens < 0)
    return Error{"--heldout, --verify and --shard-tokens must not be negative"};
  if (opt.ngram < 1 || opt.ngram > 64) return Error{fmt::format("--ngram must be from 1 to 64 words, got {}", opt.ngram)};
  const bool program_part = std::any_of(opt.mix.begin(), opt.mix.end(), [](auto& m) { return named_part(m.first); });
  if (opt.number_names && !program_part)
    return Error{"--number-names: the mix has no pot, grammar or gsm8k part (the parts written with number names)"};
  if (opt.review && !program_part)
    return Error{"--review: the mix has no pot, grammar or gsm8k part (the question-and-program documents it turns around)"};
  if (opt.shuffle_names && !opt.number_names) return Error{"--shuffle-names shuffles number names: it needs --number-names"};
  if (opt.delexicalize && !opt.number_names) return Error{"--delexicalize reads number names too: it needs --number-names"};
  for (auto& [part, _] : opt.mix)
    if (uses_gsm8k(part) && !fs::exists(opt.gsm8k))
      return Error{fmt::format("--gsm8k {}: no such file (the '{}' part reads GSM8K's train split)", opt.gsm8k, part)};
  if (!opt.tokenizer.empty())
    if (auto t = load_tokenizer(opt.tokenizer); !t) return t.error();
  return ok_status();
}

Result<Json> write_corpus(const CorpusOptions& opt, const std::function<void(long long)>& progress) {
  namespace fs = std::filesystem;
  if (auto c = check_corpus_options(opt); !c) return c.error();
  double total_w = 0;
  for (auto& [_, w] : opt.mix) total_w += w;
  bool gsm8k_part = false, grammar_part = false;
  for (auto& [part, _] : opt.mix) gsm8k_part |= uses_gsm8k(part), grammar_part |= uses_grammar(part);
  auto decontaminator = Decontaminator::load(default_test_sets(opt.test_sets), opt.ngram);
  if (!decontaminator) return decontaminator.error();
  // GSM8K's train problems, each program run in the sandbox; only those that give the label stay.
  // A file's problems are refused here, naming it, when none is left: they do not reproduce
  // their labels, or every one is a test question (GSM8K's test split given for its train split).
  std::vector<Problem> gsm8k;
  Json gsm8k_report = nullptr;
  if (gsm8k_part) {
    auto g = load_gsm8k_train(opt.gsm8k, gsm8k_report);
    if (!g) return g.error();
    if (g->empty())
      return Error{fmt::format("--gsm8k {}: no problem's program reproduced its label", opt.gsm8k), kOptionConflict};
    std::size_t read = g->size();
    std::erase_if(*g, [&](const Problem& p) { return decontaminator->contaminated(p.question); });
    if (g->empty())
      return Error{fmt::format("--gsm8k {}: all {} of its problems that convert to verified programs are test questions "
                               "(a test split given for the train split?); the corpus trains on none",
                               opt.gsm8k, read),
                   kOptionConflict};
    gsm8k = std::move(*g);
  }
  // The folder is made only now: a refused --gsm8k file leaves an earlier corpus there as it was.
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create: {}", opt.out_dir, ec.message())};
  std::ofstream(fs::path(opt.out_dir) / kCorpusMark) << "written by wand corpus: a run into this folder replaces its "
                                                        "shards, held-out sets, tokenizer and manifest\n";
  // ... and, with --number-names, each mapped program run again with its bindings.
  std::vector<NamedProblem> named_gsm8k;
  bool names_gsm8k = opt.number_names && std::any_of(opt.mix.begin(), opt.mix.end(), [](auto& m) { return m.first == "gsm8k"; });
  if (names_gsm8k) {
    auto n = name_numbers(gsm8k, *opt.reading());
    if (!n) return n.error();
    if (n->empty()) return Error{fmt::format("--gsm8k {}: no mapped program reproduced its label", opt.gsm8k)};
    named_gsm8k = std::move(*n);
    gsm8k_report["named"] = named_gsm8k.size();
  }

  llm::Tokenizer tok;
  if (!opt.tokenizer.empty()) {
    auto t = load_tokenizer(opt.tokenizer);
    if (!t) return t.error();
    tok = std::move(*t);
  } else {  // trained on pot and cot always (so their models share one vocabulary) and the mix's other parts
    ProblemGenerator sample(opt.seed ^ 0x5eed);
    std::vector<std::string> texts;
    for (int i = 0; i < 4000; ++i) {
      Problem p = sample.next(TemplateSet::train);
      if (!opt.number_names) texts.push_back(reason::pot_prompt(p.question) + p.program);  // else mapped, below
      texts.push_back(reason::cot_prompt(p.question) + p.rationale);
    }
    Documents more(opt.seed ^ 0x5eed5eed, &gsm8k, &named_gsm8k, opt.reading(), 2000);
    if (opt.shuffle_names) more.shuffle_names(opt.seed ^ 0x5eed);
    std::string key;
    bool question = false;
    for (auto& [part, _] : opt.mix)
      if ((part != "pot" || opt.number_names) && part != "cot")
        for (int i = 0; i < 4000; ++i) {
          auto doc = more.next(part, key, question);
          if (!doc) return doc.error();
          texts.push_back(std::move(*doc));
        }
    tok = train_bpe(texts, opt.vocab);
  }
  std::string tok_path = (fs::path(opt.out_dir) / "tokenizer.gguf").string();
  if (auto r = write_tokenizer(tok_path, tok); !r) return r.error();

  bool functions = false;
  for (auto& [part, _] : opt.mix) functions |= uses_functions(part);
  Json verified = nullptr;
  if (opt.verify > 0) {  // the same generators and seed as the training stream
    ProblemGenerator pg(opt.seed);
    FunctionTaskGenerator fg(function_seed(opt.seed));
    std::vector<Problem> problems;
    std::vector<FunctionTask> funcs;
    for (int i = 0; i < opt.verify; ++i) problems.push_back(pg.next(TemplateSet::train));
    GrammarGenerator gg(grammar_seed(opt.seed));
    for (int i = 0; grammar_part && i < opt.verify; ++i) problems.push_back(gg.next(TemplateSet::train));
    for (int i = 0; functions && i < opt.verify; ++i) funcs.push_back(fg.next(TemplateSet::train));
    auto v = verify_items(problems, funcs);
    if (!v) return v.error();
    verified = std::move(*v);
    if (!verified["failures"].empty())
      return Error{fmt::format("corpus: an item failed in the sandbox (a generator bug): {}", verified["failures"][0].dump())};
  }

  // A small corpus runs small batches (no thousands of programs for a few documents).
  int batch = static_cast<int>(std::clamp(opt.tokens / 100, 50LL, 2000LL));
  Documents gen(opt.seed, &gsm8k, &named_gsm8k, opt.reading(), batch);
  if (opt.shuffle_names) gen.shuffle_names(opt.seed * 0x9e3779b97f4a7c15ULL + 5);
  std::mt19937_64 pick(opt.seed * 7 + 3);
  std::uniform_real_distribution<double> u(0, total_w);
  std::unordered_set<std::string> seen;  // training items (questions, test lists), kept out of the held-out sets
  std::unordered_set<std::string> seen_asserts;  // every assert a training document shows
  // Files of an earlier run in this directory: its shards would be read with the new ones,
  // held-out sets of a mix this run does not write would pass for this corpus's, and its manifest
  // would describe this run's tokens if this one is interrupted (written last, when all are done).
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(opt.out_dir, ec))
    if (replaced_by_a_run(e.path()) && e.path().filename() != "tokenizer.gguf") stale.push_back(e.path());
  for (const auto& p : stale) fs::remove(p, ec);
  std::vector<std::string> shards;
  std::ofstream bin;
  std::string bin_path;
  long long in_shard = 0;
  auto next_shard = [&]() -> VoidResult {
    if (bin.is_open()) {
      bin.close();
      if (!bin) return Error{fmt::format("{}: write failed", bin_path)};
    }
    shards.push_back(opt.shard_tokens > 0 ? fmt::format("train-{:05}.bin", shards.size()) : "train.bin");
    bin_path = (fs::path(opt.out_dir) / shards.back()).string();
    bin.open(bin_path, std::ios::binary | std::ios::trunc);
    if (!bin) return Error{fmt::format("{}: cannot write", bin_path)};
    in_shard = 0;
    return ok_status();
  };
  if (auto s = next_shard(); !s) return s.error();
  long long written = 0;
  std::map<std::string, long long> docs, part_tokens;
  std::vector<uint16_t> buf;
  std::string key;
  bool question = false;
  long long dropped = 0;
  while (written < opt.tokens) {
    std::string part = opt.mix.back().first;
    if (opt.token_shares) {  // the part furthest below its share of the tokens written so far
      double most = -1e300;
      for (auto& [name, w] : opt.mix)
        if (double behind = w / total_w * static_cast<double>(written) - static_cast<double>(part_tokens[name]); behind > most)
          most = behind, part = name;
    } else {
      double r = u(pick);
      for (auto& [name, w] : opt.mix) {
        if (r < w) {
          part = name;
          break;
        }
        r -= w;
      }
    }
    auto next = gen.next(part, key, question);
    if (!next) return next.error();
    std::string doc = std::move(*next);
    if (opt.review)
      if (auto r = reason::review_document(doc)) doc = std::move(*r);
    seen.insert(key);
    for (const auto& a : gen.last_asserts()) seen_asserts.insert(a);
    if (question && decontaminator->contaminated(key)) {  // a test question: never trained on
      if (++dropped > 100000) return Error{"corpus: over 100,000 documents were test questions; the part is contaminated"};
      continue;
    }
    auto ids = tok.encode(doc);
    buf.clear();
    buf.push_back(static_cast<uint16_t>(tok.bos()));
    for (auto id : ids) buf.push_back(static_cast<uint16_t>(id));
    buf.push_back(static_cast<uint16_t>(tok.eos()));
    if (opt.shard_tokens > 0 && in_shard >= opt.shard_tokens)  // documents are never split
      if (auto s = next_shard(); !s) return s.error();
    in_shard += static_cast<long long>(buf.size());
    bin.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 2));
    written += static_cast<long long>(buf.size());
    ++docs[part];
    part_tokens[part] += static_cast<long long>(buf.size());
    if (progress && docs[part] % 1000 == 0) progress(written);
  }
  bin.close();
  if (!bin) return Error{fmt::format("{}: write failed", bin_path)};

  // A held-out set: `draw(n)` gives an item's key and record; items seen in training or already
  // in the set are skipped, and so is an empty key (the draw found it trained on); a template
  // with few distinct draws ends the set early.
  auto write_heldout = [&](const std::string& name, auto draw) -> Result<long long> {
    std::string path = (fs::path(opt.out_dir) / name).string();
    std::ofstream out(path, std::ios::trunc);
    if (!out) return Error{fmt::format("{}: cannot write", path)};
    long long n = 0, skipped = 0;
    std::unordered_set<std::string> mine;
    while (n < opt.held_out && skipped <= 100000) {
      auto [key, record] = draw(n);
      if (key.empty() || seen.count(key) || !mine.insert(key).second) {
        ++skipped;
        continue;
      }
      out << record.dump() << "\n";
      ++n;
    }
    if (auto w = flush_file(out, path); !w) return w.error();
    return n;
  };
  auto problems = [](TemplateSet set, uint64_t seed) {
    return [set, g = ProblemGenerator(seed)](long long) mutable {
      Problem p = g.next(set);
      return std::pair{p.question, to_json(p)};
    };
  };
  // A function task none of whose asserts any training document shows (a `tests` document lists
  // other tasks' inputs, in any order): the held-out tests are not in the training text.
  auto function_tasks = [&seen_asserts](TemplateSet set, uint64_t seed) {
    return [set, g = FunctionTaskGenerator(seed), &seen_asserts](long long n) mutable {
      FunctionTask f = g.next(set);
      bool trained = std::any_of(f.tests.begin(), f.tests.end(), [&](const std::string& a) { return seen_asserts.count(a); });
      return std::pair{trained ? std::string() : f.tests_text(), to_mbpp_json(f, n)};
    };
  };
  Json heldout = Json::object();
  std::vector<std::tuple<std::string, std::string, std::function<std::pair<std::string, Json>(long long)>>> sets = {
      {"numbers", "heldout-numbers.jsonl", problems(TemplateSet::train, opt.seed + 1000003)},
      {"templates", "heldout-templates.jsonl", problems(TemplateSet::held_out, opt.seed + 2000003)}};
  if (grammar_part)  // the grammar's held-out productions: story shapes no training document has
    sets.emplace_back("grammar", "heldout-grammar.jsonl", [g = GrammarGenerator(opt.seed + 5000003)](long long) mutable {
      Problem p = g.next(TemplateSet::held_out);
      return std::pair{p.question, to_json(p)};
    });
  if (functions) {
    sets.emplace_back("functions", "heldout-functions.jsonl", function_tasks(TemplateSet::train, opt.seed + 3000003));
    sets.emplace_back("functions_templates", "heldout-functions-templates.jsonl",
                      function_tasks(TemplateSet::held_out, opt.seed + 4000003));
  }
  for (auto& [key, file, draw] : sets) {
    auto n = write_heldout(file, draw);
    if (!n) return n.error();
    heldout[key] = *n;
  }

  Json mix = Json::object();
  for (auto& [name, w] : opt.mix) mix[name] = w / total_w;
  Json manifest = {{"seed", opt.seed},
                   {"mix", mix},
                   {"mix_by", opt.token_shares ? "tokens" : "documents"},
                   {"tokens", written},
                   {"documents", docs},
                   {"part_tokens", part_tokens},
                   {"tokenizer", "tokenizer.gguf"},
                   {"vocab", tok.size()},
                   // --vocab asked for more than the tokenizer's sample text could merge into
                   {"vocab_requested", opt.tokenizer.empty() && static_cast<long long>(tok.size()) < opt.vocab
                                           ? Json(opt.vocab) : Json(nullptr)},
                   {"shards", shards},
                   {"format", kTokenFormat},
                   // Real newlines: the JSON writer escapes them once ("\n" in the file).
                   {"number_names", opt.number_names ? Json{{"prompt_format", reason::format_of(*opt.reading())},
                                                            {"parts", "pot, grammar, gsm8k"},
                                                            {"generated_checked", gen.names_checked()},
                                                            {"generated_dropped", gen.names_dropped()},
                                                            {"shuffled", opt.shuffle_names}}
                                                      : Json(nullptr)},
                   {"prompt_formats", {{"pot", reason::pot_prompt("{question}")},
                                       {"pot-numbers", reason::pot_prompt("{question with n0, n1, ...}")},
                                       {"pot-delex", reason::pot_prompt("{question with n0, n1, ... and w0, w1, ...}")},
                                       {"cot", reason::cot_prompt("{question}")},
                                       {"review", reason::review_prompt("{program}") + "{question}"},
                                       {"func", "Task: {description}\nTests:\n{tests}Code:\n"},
                                       {"tests", "Task: {description}\nTests for {name}:\n"}}},
                   {"review", opt.review},  // pot documents written program first (CorpusOptions::review)
                   {"heldout", heldout},
                   {"verified", verified},
                   {"gsm8k", gsm8k_report},
                   {"decontamination", [&] {
                      Json d = decontaminator->report();
                      d["documents_dropped"] = dropped;
                      return d;
                    }()},
                   {"grammar_productions", {{"train", GrammarGenerator::production_count(TemplateSet::train)},
                                            {"held_out", GrammarGenerator::production_count(TemplateSet::held_out)}}},
                   {"templates", {{"train", ProblemGenerator::template_count(TemplateSet::train)},
                                  {"held_out", ProblemGenerator::template_count(TemplateSet::held_out)}}},
                   {"function_families", {{"train", FunctionTaskGenerator::template_count(TemplateSet::train)},
                                          {"held_out", FunctionTaskGenerator::template_count(TemplateSet::held_out)}}}};
  std::string manifest_path = (fs::path(opt.out_dir) / "manifest.json").string();
  std::ofstream mf(manifest_path, std::ios::trunc);
  mf << manifest.dump(2) << "\n";
  if (auto w = flush_file(mf, manifest_path); !w) return w.error();
  return manifest;
}

namespace {
// A corpus folder's tokenizer.gguf and manifest.json (`manifest` plus the vocabulary).
Result<Json> finish_corpus(const std::string& out_dir, const llm::Tokenizer& tok, Json manifest) {
  namespace fs = std::filesystem;
  if (auto w = write_tokenizer((fs::path(out_dir) / "tokenizer.gguf").string(), tok); !w) return w.error();
  manifest["tokenizer"] = "tokenizer.gguf";
  manifest["vocab"] = tok.size();
  manifest["bos"] = tok.bos(), manifest["eos"] = tok.eos();  // wand-train --objective final finds documents' ends by eos
  std::string manifest_path = (fs::path(out_dir) / "manifest.json").string();
  std::ofstream mf(manifest_path, std::ios::trunc);
  mf << manifest.dump(2) << "\n";
  if (auto w = flush_file(mf, manifest_path); !w) return w.error();
  return manifest;
}
}  // namespace

Result<Json> write_document_corpus(const std::vector<std::string>& documents, const std::string& tokenizer,
                                   const std::string& out_dir, const Json& source) {
  namespace fs = std::filesystem;
  auto tok = load_tokenizer(tokenizer);
  if (!tok) return tok.error();
  if (documents.empty()) return Error{"no documents to write"};
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create: {}", out_dir, ec.message())};
  // The trainer reads train.bin, else every train-*.bin: an earlier corpus's shards must go.
  for (const auto& e : fs::directory_iterator(out_dir, ec))
    if (e.path().filename().string().starts_with("train") && e.path().extension() == ".bin") fs::remove(e.path(), ec);
  std::string bin_path = (fs::path(out_dir) / "train.bin").string();
  std::ofstream bin(bin_path, std::ios::binary | std::ios::trunc);
  if (!bin) return Error{fmt::format("{}: cannot write", bin_path)};
  long long written = 0;
  std::vector<uint16_t> buf;
  for (auto& d : documents) {
    buf.assign(1, static_cast<uint16_t>(tok->bos()));
    for (auto id : tok->encode(d)) buf.push_back(static_cast<uint16_t>(id));
    buf.push_back(static_cast<uint16_t>(tok->eos()));
    bin.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 2));
    written += static_cast<long long>(buf.size());
  }
  if (auto w = flush_file(bin, bin_path); !w) return w.error();
  return finish_corpus(out_dir, *tok, {{"tokens", written},
                                        {"documents", documents.size()},
                                        {"shards", {"train.bin"}},
                                        {"format", kTokenFormat},
                                        {"source", source}});
}

Result<Json> write_pair_corpus(const std::vector<PreferencePair>& pairs, const std::string& tokenizer,
                               const std::string& out_dir, const Json& source) {
  namespace fs = std::filesystem;
  auto tok = load_tokenizer(tokenizer);
  if (!tok) return tok.error();
  if (pairs.empty()) return Error{"no preference pairs to write"};
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create: {}", out_dir, ec.message())};
  std::string path = (fs::path(out_dir) / "pairs.bin").string();
  std::ofstream bin(path, std::ios::binary | std::ios::trunc);
  if (!bin) return Error{fmt::format("{}: cannot write", path)};
  long long written = 0;
  auto ids = [&](const std::string& text, bool bos, bool eos) {
    std::vector<uint16_t> v;
    if (bos) v.push_back(static_cast<uint16_t>(tok->bos()));
    for (auto id : tok->encode(text)) v.push_back(static_cast<uint16_t>(id));
    if (eos) v.push_back(static_cast<uint16_t>(tok->eos()));
    return v;
  };
  for (auto& p : pairs) {
    // The completions are tokenized on their own, so a pair's two sequences share the prompt's tokens exactly.
    std::vector<uint16_t> parts[3] = {ids(p.prompt, true, false), ids(p.chosen, false, true), ids(p.rejected, false, true)};
    uint32_t lengths[3];
    for (int i = 0; i < 3; ++i) lengths[i] = static_cast<uint32_t>(parts[i].size());
    bin.write(reinterpret_cast<const char*>(lengths), sizeof lengths);
    for (auto& v : parts) bin.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 2));
    written += lengths[0] + lengths[1] + lengths[2];
  }
  if (auto w = flush_file(bin, path); !w) return w.error();
  return finish_corpus(out_dir, *tok, {{"tokens", written},
                                        {"pairs", pairs.size()},
                                        {"format", "pairs.bin: per pair three uint32 little-endian lengths (prompt, chosen, "
                                                   "rejected), then their uint16 token ids; the prompt starts with <|bos|>, "
                                                   "each completion ends with <|eos|>"},
                                        {"source", source}});
}

}  // namespace wand::train
