#include <filesystem>
#include <map>
#include <fstream>
#include <unordered_set>

#include <fmt/core.h>

#include "llm/gguf.h"
#include "llm/weights.h"
#include "train/bpe.h"
#include "reason/reason.h"
#include "train/corpus.h"

namespace wand::train {

Result<std::vector<std::pair<std::string, double>>> parse_mix(const std::string& spec) {
  std::vector<std::pair<std::string, double>> mix;
  std::size_t p = 0;
  while (p <= spec.size()) {
    auto q = spec.find(',', p);
    std::string item = spec.substr(p, q == std::string::npos ? std::string::npos : q - p);
    auto eq = item.find('=');
    std::string name = item.substr(0, eq);
    if (name != "pot" && name != "cot")
      return Error{fmt::format("--mix: unknown part '{}' (parts: pot = question + program, cot = question + rationale)", name)};
    double w = 1.0;
    if (eq != std::string::npos) {
      try {
        w = std::stod(item.substr(eq + 1));
      } catch (...) {
        w = -1;
      }
    }
    if (!(w > 0)) return Error{fmt::format("--mix: weight of '{}' must be a positive number", name)};
    mix.emplace_back(name, w);
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return mix;
}

namespace {

std::string document(const Problem& p, const std::string& part) {
  // The documents are the prompt formats `wand solve` uses, completed.
  return part == "pot" ? reason::pot_prompt(p.question) + p.program : reason::cot_prompt(p.question) + p.rationale;
}

// Writes a vocabulary-only GGUF (what the trainer's export and `wand solve` read back).
VoidResult write_tokenizer(const std::string& path, const llm::Tokenizer& tok) {
  llm::GgufWriter g;
  g.set("general.architecture", std::string("llama"));
  llm::set_tokenizer_metadata(g, tok);
  return g.write(path);
}

}  // namespace

Result<Json> write_corpus(const CorpusOptions& opt, const std::function<void(long long)>& progress) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create: {}", opt.out_dir, ec.message())};
  double total_w = 0;
  for (auto& [_, w] : opt.mix) total_w += w;

  llm::Tokenizer tok;
  if (!opt.tokenizer.empty()) {
    auto f = llm::GgufFile::open(opt.tokenizer);
    if (!f) return f.error();
    auto t = llm::Tokenizer::from_gguf(**f);
    if (!t) return t.error();
    tok = std::move(*t);
  } else {  // trained on both renderings, so pot and cot models share one vocabulary
    ProblemGenerator sample(opt.seed ^ 0x5eed);
    std::vector<std::string> texts;
    for (int i = 0; i < 4000; ++i) {
      Problem p = sample.next(TemplateSet::train);
      texts.push_back(document(p, "pot"));
      texts.push_back(document(p, "cot"));
    }
    tok = train_bpe(texts, opt.vocab);
  }
  if (tok.bos() < 0 || tok.eos() < 0 || tok.size() > 65535)
    return Error{"corpus: the tokenizer needs <|bos|> and <|eos|> and at most 65535 tokens"};
  std::string tok_path = (fs::path(opt.out_dir) / "tokenizer.gguf").string();
  if (auto r = write_tokenizer(tok_path, tok); !r) return r.error();

  ProblemGenerator gen(opt.seed);
  std::mt19937_64 pick(opt.seed * 7 + 3);
  std::uniform_real_distribution<double> u(0, total_w);
  std::unordered_set<std::string> seen;  // training questions, kept out of the held-out set
  std::string bin_path = (fs::path(opt.out_dir) / "train.bin").string();
  std::ofstream bin(bin_path, std::ios::binary | std::ios::trunc);
  if (!bin) return Error{fmt::format("{}: cannot write", bin_path)};
  long long written = 0;
  std::map<std::string, long long> docs, part_tokens;
  std::vector<uint16_t> buf;
  while (written < opt.tokens) {
    Problem p = gen.next(TemplateSet::train);
    double r = u(pick);
    std::string part = opt.mix.back().first;
    for (auto& [name, w] : opt.mix) {
      if (r < w) {
        part = name;
        break;
      }
      r -= w;
    }
    seen.insert(p.question);
    auto ids = tok.encode(document(p, part));
    buf.clear();
    buf.push_back(static_cast<uint16_t>(tok.bos()));
    for (auto id : ids) buf.push_back(static_cast<uint16_t>(id));
    buf.push_back(static_cast<uint16_t>(tok.eos()));
    bin.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 2));
    written += static_cast<long long>(buf.size());
    ++docs[part];
    part_tokens[part] += static_cast<long long>(buf.size());
    if (progress && docs[part] % 1000 == 0) progress(written);
  }
  bin.close();
  if (!bin) return Error{fmt::format("{}: write failed", bin_path)};

  auto write_heldout = [&](const std::string& name, TemplateSet set, uint64_t seed) -> Result<long long> {
    ProblemGenerator g(seed);
    std::ofstream out((fs::path(opt.out_dir) / name).string(), std::ios::trunc);
    long long n = 0, skipped = 0;
    std::unordered_set<std::string> mine;
    while (n < opt.held_out) {
      Problem p = g.next(set);
      if (seen.count(p.question) || !mine.insert(p.question).second) {
        if (++skipped > 100000) break;  // a template with few distinct draws
        continue;
      }
      out << to_json(p).dump() << "\n";
      ++n;
    }
    if (!out) return Error{fmt::format("{}: write failed", name)};
    return n;
  };
  auto hn = write_heldout("heldout-numbers.jsonl", TemplateSet::train, opt.seed + 1000003);
  auto ht = write_heldout("heldout-templates.jsonl", TemplateSet::held_out, opt.seed + 2000003);
  if (!hn) return hn.error();
  if (!ht) return ht.error();

  Json mix = Json::object();
  for (auto& [name, w] : opt.mix) mix[name] = w / total_w;
  Json manifest = {{"seed", opt.seed},
                   {"mix", mix},
                   {"tokens", written},
                   {"documents", docs},
                   {"part_tokens", part_tokens},
                   {"tokenizer", "tokenizer.gguf"},
                   {"vocab", tok.size()},
                   {"shards", {"train.bin"}},
                   {"format", "uint16 little-endian token ids; each document is <|bos|> text <|eos|>"},
                   {"prompt_formats", {{"pot", "Question: {question}\\nProgram:\\n"}, {"cot", "Question: {question}\\nAnswer: "}}},
                   {"heldout", {{"numbers", *hn}, {"templates", *ht}}},
                   {"templates", {{"train", ProblemGenerator::template_count(TemplateSet::train)},
                                  {"held_out", ProblemGenerator::template_count(TemplateSet::held_out)}}}};
  std::ofstream((fs::path(opt.out_dir) / "manifest.json").string(), std::ios::trunc) << manifest.dump(2) << "\n";
  return manifest;
}

}  // namespace wand::train
