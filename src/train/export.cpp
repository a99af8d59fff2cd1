#include "train/export.h"

#include <fstream>

#include <fmt/core.h>

#include "common/json.h"
#include "common/text.h"

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
  if (opt.prompt_format != "pot" && opt.prompt_format != "cot" && opt.prompt_format != "agent" && opt.prompt_format != "agent_json")
    return Error{fmt::format("prompt format '{}': expected pot, cot, agent or agent_json", opt.prompt_format)};
  w->tokenizer = std::move(*tok);
  w->prompt_format = opt.prompt_format;
  w->name = opt.name;
  return llm::write_model(opt.out, *w, opt.type);
}

}  // namespace wand::train
