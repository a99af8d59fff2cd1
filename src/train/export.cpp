#include "train/export.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>

#include <fmt/core.h>

#include "common/json.h"
#include "common/output.h"
#include "common/text.h"
#include "llm/llm.h"
#include "llm/kernels.h"
#include "llm/model.h"

namespace wand::train {

Result<llm::ModelWeights> read_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot read checkpoint", path)};
  std::string magic;
  std::getline(in, magic);
  if (magic != "WANDCKPT1") return Error{fmt::format("{}: not a wand-train checkpoint", path)};
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (!in || n > (1u << 24)) return Error{fmt::format("{}: corrupt checkpoint header", path)};
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  auto h = parse_json(header, path + " header");
  if (!h) return h.error();
  llm::ModelWeights w;
  try {
    const Json& c = (*h)["config"];
    auto& mc = w.config;
    mc.vocab = c.at("vocab"), mc.dim = c.at("dim"), mc.layers = c.at("layers"), mc.heads = c.at("heads");
    mc.kv_heads = c.at("kv_heads"), mc.ffn = c.at("ffn"), mc.context = c.at("context");
    mc.rope_base = c.at("rope_base"), mc.norm_eps = c.at("norm_eps");
    mc.head_dim = mc.dim / mc.heads, mc.rope_dim = mc.head_dim;
    if (!h->contains("tensors") || !(*h)["tensors"].is_array())
      return Error{fmt::format("{}: bad checkpoint header: no tensor list", path)};
    for (const Json& t : (*h)["tensors"]) {
      // The shape decides an allocation: positive integers whose product fits what a file holds.
      uint64_t count = 1;
      for (const Json& d : t.at("shape")) {
        if (!d.is_number_unsigned() || d.get<uint64_t>() == 0 || d.get<uint64_t>() > (1ull << 40) / count)
          return Error{fmt::format("{}: bad checkpoint header: tensor {} has an impossible shape", path,
                                   printable(t.at("name").dump(), 100))};
        count *= d.get<uint64_t>();
      }
      auto& v = w.tensors[t.at("name").get<std::string>()];
      v.resize(count);
      in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * 4));
      if (!in) return Error{fmt::format("{}: truncated at tensor {}", path, t.at("name").dump())};
    }
  } catch (const Json::exception& e) {
    return Error{fmt::format("{}: bad checkpoint header: {}", path, e.what())};
  }
  return w;
}

namespace {

// The trainer's tensors in its order (trainer.cpp, gguf_tensors) with torch's shapes: a matrix
// is [rows (outputs), cols (inputs)], the reverse of GGUF's dims.
std::vector<std::pair<std::string, std::vector<uint64_t>>> trainer_tensors(const llm::ModelConfig& c) {
  uint64_t hd = static_cast<uint64_t>(c.dim / c.heads), dim = c.dim, ffn = c.ffn, vocab = c.vocab;
  std::vector<std::pair<std::string, std::vector<uint64_t>>> t = {
      {"token_embd.weight", {vocab, dim}}, {"output_norm.weight", {dim}}, {"output.weight", {vocab, dim}}};
  for (int i = 0; i < c.layers; ++i) {
    auto p = fmt::format("blk.{}.", i);
    t.insert(t.end(), {{p + "attn_norm.weight", {dim}},
                       {p + "attn_q.weight", {c.heads * hd, dim}},
                       {p + "attn_k.weight", {c.kv_heads * hd, dim}},
                       {p + "attn_v.weight", {c.kv_heads * hd, dim}},
                       {p + "attn_output.weight", {dim, c.heads * hd}},
                       {p + "ffn_norm.weight", {dim}},
                       {p + "ffn_gate.weight", {ffn, dim}},
                       {p + "ffn_up.weight", {ffn, dim}},
                       {p + "ffn_down.weight", {dim, ffn}}});
  }
  return t;
}

std::vector<float> dequantized(const llm::Matrix& m) {
  std::vector<float> v(static_cast<std::size_t>(m.rows) * m.cols);
  for (int r = 0; r < m.rows; ++r) llm::dequantize_row(m.type, m.row(r), v.data() + static_cast<std::size_t>(r) * m.cols, m.cols);
  return v;
}

}  // namespace

Result<llm::ModelWeights> weights_from_gguf(const std::string& path) {
  auto model = llm::Model::load(path);
  if (!model) return model.error();
  const llm::Model& m = **model;
  llm::ModelWeights w;
  w.config = m.config();
  w.tokenizer = m.tokenizer();
  w.prompt_format = m.prompt_format();
  const auto& c = w.config;
  auto vec = [&](const float* p) { return std::vector<float>(p, p + c.dim); };
  w.tensors["token_embd.weight"] = dequantized(m.embeddings());
  w.tensors["output_norm.weight"] = vec(m.output_norm());
  w.tensors["output.weight"] = dequantized(m.output());
  for (int i = 0; i < c.layers; ++i) {
    const auto& L = m.layers()[i];
    auto p = fmt::format("blk.{}.", i);
    w.tensors[p + "attn_norm.weight"] = vec(L.attn_norm);
    w.tensors[p + "ffn_norm.weight"] = vec(L.ffn_norm);
    w.tensors[p + "attn_q.weight"] = dequantized(L.wq);
    w.tensors[p + "attn_k.weight"] = dequantized(L.wk);
    w.tensors[p + "attn_v.weight"] = dequantized(L.wv);
    w.tensors[p + "attn_output.weight"] = dequantized(L.wo);
    w.tensors[p + "ffn_gate.weight"] = dequantized(L.w_gate);
    w.tensors[p + "ffn_up.weight"] = dequantized(L.w_up);
    w.tensors[p + "ffn_down.weight"] = dequantized(L.w_down);
  }
  if (c.dim % c.heads || c.head_dim != c.dim / c.heads)
    return Error{fmt::format("{}: head size {} is not dim / heads: wand-train cannot hold this model", path, c.head_dim)};
  return w;
}

VoidResult write_checkpoint(const std::string& path, const llm::ModelWeights& w, const std::string& source) {
  const auto& c = w.config;
  auto tensors = trainer_tensors(c);
  std::string list;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto& [name, shape] = tensors[i];
    auto it = w.tensors.find(name);
    uint64_t count = 1;
    for (auto d : shape) count *= d;
    if (it == w.tensors.end() || it->second.size() != count)
      return Error{fmt::format("{}: the weights have no tensor {} of {} values", path, name, count)};
    list += fmt::format("{}{{\"name\": \"{}\", \"shape\": [", i ? ", " : "", name);
    for (std::size_t d = 0; d < shape.size(); ++d) list += fmt::format("{}{}", d ? ", " : "", shape[d]);
    list += "]}";
  }
  // The trainer's own header form (config_json, save_checkpoint): --init finds keys and the tensor
  // list by their exact text.
  Json src = source;
  std::string header = fmt::format(
      "{{\"format\": \"wand checkpoint 1\", \"step\": 0, \"loss\": 0, \"data\": {}, \"config\": {{\"vocab\": {}, "
      "\"dim\": {}, \"layers\": {}, \"heads\": {}, \"kv_heads\": {}, \"ffn\": {}, \"context\": {}, \"rope_base\": {}, "
      "\"norm_eps\": {}}}, \"tensors\": [{}]}}",
      src.dump(), c.vocab, c.dim, c.layers, c.heads, c.kv_heads, c.ffn, c.context, c.rope_base, c.norm_eps, list);
  auto target = rename_target(path);
  if (!target) return target.error();
  std::string tmp = *target + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  if (!f) return Error{fmt::format("{}: cannot write", tmp)};
  f << "WANDCKPT1\n";
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  for (auto& [name, _] : tensors) {
    const auto& v = w.tensors.at(name);
    f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  }
  f.close();
  if (!f || std::rename(tmp.c_str(), target->c_str()) != 0) {
    std::remove(tmp.c_str());
    return Error{fmt::format("{}: write failed", path)};
  }
  return ok_status();
}

VoidResult export_model(const ExportOptions& opt) {
  auto w = read_checkpoint(opt.checkpoint);
  if (!w) return w.error();
  auto f = llm::GgufFile::open(opt.tokenizer);
  if (!f) return f.error();
  auto tok = llm::Tokenizer::from_gguf(**f);
  if (!tok) return tok.error();
  if (static_cast<int>(tok->size()) != w->config.vocab)
    return Error{fmt::format("{} has {} tokens but the checkpoint was trained on {}", opt.tokenizer, tok->size(),
                             w->config.vocab)};
  if (opt.prompt_format != "agent" && opt.prompt_format != "agent_json" && opt.prompt_format != "verifier" &&
      !llm::format_question(opt.prompt_format, "x"))
    return Error{fmt::format("prompt format '{}': expected pot, pot-numbers, pot-delex, cot, func, agent, agent_json or verifier",
                             opt.prompt_format)};
  w->tokenizer = std::move(*tok);
  w->prompt_format = opt.prompt_format;
  w->name = opt.name;
  return llm::write_model(opt.out, *w, opt.type);
}

VoidResult merge_models(const MergeOptions& opt) {
  const std::size_t n = opt.models.size();
  if (n < 2) return Error{fmt::format("--model: a merge needs two models or more, got {}", n)};
  std::vector<double> weights = opt.weights.empty() ? std::vector<double>(n, 1.0 / static_cast<double>(n)) : opt.weights;
  if (weights.size() != n)
    return Error{fmt::format("--weights: {} given for {} models (one per --model, in order)", weights.size(), n)};
  double sum = 0;
  for (double w : weights) {
    if (!std::isfinite(w)) return Error{fmt::format("--weights: {} is not a finite number", w)};
    sum += w;
  }
  if (std::abs(sum - 1) > 1e-6) return Error{fmt::format("--weights must sum to 1 (within 1e-6), not {:.8g}", sum)};
  if (opt.out.empty()) return Error{"--out: no file given"};
  std::optional<llm::ModelWeights> merged;  // the first model, scaled, then each other added
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& path = opt.models[i];
    auto w = weights_from_gguf(path);
    if (!w) return Error{fmt::format("--model {}", w.error().message)};
    const float scale = static_cast<float>(weights[i]);
    if (i == 0) {
      for (auto& [_, t] : w->tensors)
        for (float& x : t) x *= scale;
      merged = std::move(*w);
      continue;
    }
    const std::string& first = opt.models[0];
    const llm::ModelConfig &a = merged->config, &b = w->config;
    if (a.arch != b.arch || a.dim != b.dim || a.layers != b.layers || a.heads != b.heads || a.kv_heads != b.kv_heads ||
        a.ffn != b.ffn || a.vocab != b.vocab || a.context != b.context || a.head_dim != b.head_dim ||
        a.rope_dim != b.rope_dim || a.norm_eps != b.norm_eps || a.rope_base != b.rope_base)
      return Error{fmt::format("--model {}: not the architecture of {} (dim {} / {} layers / vocab {} against {} / {} / {})", path,
                               first, b.dim, b.layers, b.vocab, a.dim, a.layers, a.vocab)};
    if (w->tokenizer.tokens() != merged->tokenizer.tokens() || w->tokenizer.merges() != merged->tokenizer.merges())
      return Error{fmt::format("--model {}: its tokenizer is not {}'s", path, first)};
    if (w->prompt_format != merged->prompt_format)
      return Error{fmt::format("--model {}: prompt format '{}', but {}'s is '{}'", path, w->prompt_format, first,
                               merged->prompt_format)};
    for (auto& [name, t] : merged->tensors) {
      auto it = w->tensors.find(name);
      if (it == w->tensors.end() || it->second.size() != t.size())
        return Error{fmt::format("--model {}: tensor {} is missing or of another size", path, name)};
      for (std::size_t k = 0; k < t.size(); ++k) t[k] += scale * it->second[k];
    }
  }
  merged->name = opt.name;
  return llm::write_model(opt.out, *merged, opt.type);
}

}  // namespace wand::train
