#include "llm/weights.h"

#include <random>

#include <fmt/core.h>

#include "llm/kernels.h"

namespace wand::llm {

std::vector<std::pair<std::string, std::vector<uint64_t>>> llama_tensor_shapes(const ModelConfig& c, bool tied) {
  const uint64_t d = c.dim, q = uint64_t(c.heads) * c.head_dim, kv = uint64_t(c.kv_heads) * c.head_dim;
  std::vector<std::pair<std::string, std::vector<uint64_t>>> s = {{"token_embd.weight", {d, uint64_t(c.vocab)}},
                                                                  {"output_norm.weight", {d}}};
  if (!tied) s.push_back({"output.weight", {d, uint64_t(c.vocab)}});
  for (int i = 0; i < c.layers; ++i) {
    auto p = fmt::format("blk.{}.", i);
    s.push_back({p + "attn_norm.weight", {d}});
    s.push_back({p + "attn_q.weight", {d, q}});
    s.push_back({p + "attn_k.weight", {d, kv}});
    s.push_back({p + "attn_v.weight", {d, kv}});
    s.push_back({p + "attn_output.weight", {q, d}});
    s.push_back({p + "ffn_norm.weight", {d}});
    s.push_back({p + "ffn_gate.weight", {d, uint64_t(c.ffn)}});
    s.push_back({p + "ffn_up.weight", {d, uint64_t(c.ffn)}});
    s.push_back({p + "ffn_down.weight", {uint64_t(c.ffn), d}});
  }
  return s;
}

void set_tokenizer_metadata(GgufWriter& g, const Tokenizer& tok) {
  g.set("tokenizer.ggml.model", std::string(tok.kind() == Tokenizer::Kind::spm ? "llama" : "gpt2"));
  g.set("tokenizer.ggml.pre", tok.pre());
  g.set("tokenizer.ggml.tokens", GgufArray{tok.tokens()});
  std::vector<int64_t> types(tok.types().begin(), tok.types().end());
  g.set("tokenizer.ggml.token_type", GgufArray{types});
  if (!tok.merges().empty()) g.set("tokenizer.ggml.merges", GgufArray{tok.merges()});
  if (tok.bos() >= 0) g.set("tokenizer.ggml.bos_token_id", int64_t{tok.bos()});
  if (tok.eos() >= 0) g.set("tokenizer.ggml.eos_token_id", int64_t{tok.eos()});
  g.set("tokenizer.ggml.add_bos_token", tok.bos() >= 0);
}

VoidResult write_model(const std::string& path, const ModelWeights& w, TensorType matrix_type) {
  const auto& c = w.config;
  GgufWriter g;
  g.set("general.architecture", std::string("llama"));
  g.set("general.name", w.name);
  g.set("general.alignment", int64_t{32});
  g.set("llama.context_length", int64_t{c.context});
  g.set("llama.embedding_length", int64_t{c.dim});
  g.set("llama.block_count", int64_t{c.layers});
  g.set("llama.feed_forward_length", int64_t{c.ffn});
  g.set("llama.attention.head_count", int64_t{c.heads});
  g.set("llama.attention.head_count_kv", int64_t{c.kv_heads});
  g.set("llama.rope.dimension_count", int64_t{c.rope_dim});
  g.set("llama.rope.freq_base", double{c.rope_base});
  g.set("llama.attention.layer_norm_rms_epsilon", double{c.norm_eps});
  g.set("llama.vocab_size", int64_t{c.vocab});
  set_tokenizer_metadata(g, w.tokenizer);
  if (!w.prompt_format.empty()) g.set("wand.prompt_format", w.prompt_format);

  bool tied = !w.tensors.count("output.weight");
  for (auto& [name, dims] : llama_tensor_shapes(c, tied)) {
    auto it = w.tensors.find(name);
    if (it == w.tensors.end()) return Error{fmt::format("export: tensor '{}' is missing", name)};
    uint64_t n = 1;
    for (auto d : dims) n *= d;
    if (it->second.size() != n)
      return Error{fmt::format("export: tensor '{}' has {} values, its shape needs {}", name, it->second.size(), n)};
    TensorType t = dims.size() == 1 ? TensorType::F32 : matrix_type;
    if (dims[0] % type_block(t) != 0) t = TensorType::F32;  // rows too short to quantize
    std::vector<uint8_t> bytes(type_bytes(t, n));
    const std::size_t row_bytes = type_bytes(t, dims[0]);
    for (uint64_t r = 0; r < n / dims[0]; ++r) quantize_row(t, it->second.data() + r * dims[0], bytes.data() + r * row_bytes, dims[0]);
    if (auto ok = g.add_tensor(name, t, dims, bytes); !ok) return ok.error();
  }
  return g.write(path);
}

ModelWeights random_weights(const ModelConfig& cfg, uint64_t seed) {
  ModelWeights w;
  w.config = cfg;
  auto& c = w.config;
  if (c.head_dim == 0) c.head_dim = c.dim / c.heads;
  if (c.rope_dim == 0) c.rope_dim = c.head_dim;
  // Byte-level vocabulary: the 256 byte symbols, control tokens, then filler merges if asked.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    types.push_back(Tokenizer::kNormal);
  }
  for (auto s : {"<|bos|>", "<|eos|>", "<|pad|>"}) {
    tokens.push_back(s);
    types.push_back(Tokenizer::kControl);
  }
  std::vector<std::string> merges;
  for (int i = 0; static_cast<int>(tokens.size()) < c.vocab; ++i) {  // pairs of letters as merges
    std::string a = byte_to_unicode(static_cast<uint8_t>('a' + i % 26)), b = byte_to_unicode(static_cast<uint8_t>('a' + (i / 26) % 26));
    if (i >= 26 * 26) a = fmt::format("{}{}", a, i);
    merges.push_back(a + " " + b);
    tokens.push_back(a + b);
    types.push_back(Tokenizer::kNormal);
  }
  c.vocab = static_cast<int>(tokens.size());
  w.tokenizer = Tokenizer::bpe(tokens, merges, types);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.02f);
  for (auto& [name, dims] : llama_tensor_shapes(c, false)) {
    uint64_t n = 1;
    for (auto d : dims) n *= d;
    auto& v = w.tensors[name];
    v.resize(n);
    if (dims.size() == 1) {
      for (auto& x : v) x = 1.f + normal(rng);
    } else {
      for (auto& x : v) x = normal(rng) * (name == "token_embd.weight" ? 50.f : 1.f);
    }
  }
  return w;
}

}  // namespace wand::llm
