// wand-train: trains the decoder-only Llama model the embedded engine runs, on token shards
// from `wand corpus`, with libtorch (CPU here; the same file builds against a CUDA libtorch on a
// GPU machine, which is why it depends on nothing but libtorch and the standard library).
//
// Output (--out DIR): checkpoint.wckpt (weights under their GGUF names; `wand export` turns it
// into a GGUF), state.pt + state.step (model and optimizer, for --resume), log.jsonl (loss, lr,
// tokens/s per logged step), curves.html (the loss curves), sample.txt (--sample's greedy ids).
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/numbers.h"
#include "train/sizes.h"

namespace {

struct Config {
  int vocab = 512, dim = 256, layers = 6, heads = 8, kv_heads = 4, ffn = 704, seq = 256;
  double rope_base = 10000, eps = 1e-5;
  int head_dim() const { return dim / heads; }
};

struct Options {
  std::string data, out, cooldown_data, init;
  int steps = 1000, cooldown_steps = 0, batch = 32, warmup = 100, log_every = 10, eval_every = 200;
  int save_every = 500, threads = 0;
  double lr = 1e-3, min_lr_ratio = 0.1, wd = 0.1, clip = 1.0;
  uint64_t seed = 1;
  std::string device = "cpu", sample, dtype = "fp32";
  int sample_tokens = 48;
  bool resume = false;
  bool dpo = false;   // --dpo: preference pairs (pairs.bin), the --init model as the reference
  bool keep_checkpoints = false;  // --keep-checkpoints: each save also as checkpoint-STEP.wckpt
  double beta = 0.1;  // DPO's β: how far the policy may move from the reference
  // --nll-weight: α of iterative RPO (Pang et al. 2024): α × the chosen completion's mean token
  // NLL is added to the DPO loss so that the chosen program stays likely, not only more likely
  // than the rejected one. 0 is plain DPO.
  double nll_weight = 0;
  // --objective: "lm" (every next token) or "final" (each document's last token only, the one
  // before <|eos|>: an outcome verifier's label, `wand export --format verifier --corpus DIR`).
  std::string objective = "lm";
};

// --dtype bf16: autocast while it lives. Matmuls run in bfloat16; the weights, the optimizer's
// state, the norms and the loss stay in fp32 (mixed precision, so no loss scaling is needed).
class Autocast {
 public:
  Autocast(torch::Device dev, bool on) : type_(dev.type()), on_(on) {
    if (on_) set(true);
  }
  ~Autocast() {
    if (!on_) return;
    set(false);
    at::autocast::clear_cache();
  }

 private:
  void set(bool enabled) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(type_, enabled);
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
#else
    if (type_ == torch::kCUDA) {
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    } else {
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    }
#endif
  }
  torch::DeviceType type_;
  bool on_;
};

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * w;
}

// Rotates adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/d): the engine's (and llama.cpp's
// "normal") convention, so weights export without permutation.
torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  auto sizes = x.sizes().vec();  // [B, T, H, hd]
  auto p = x.reshape({sizes[0], sizes[1], sizes[2], sizes[3] / 2, 2});
  auto x0 = p.select(-1, 0), x1 = p.select(-1, 1);
  auto c = cos.unsqueeze(0).unsqueeze(2), s = sin.unsqueeze(0).unsqueeze(2);  // [1, T, 1, hd/2]
  return torch::stack({x0 * c - x1 * s, x0 * s + x1 * c}, -1).reshape(sizes);
}

struct BlockImpl : torch::nn::Module {
  torch::nn::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr}, gate{nullptr}, up{nullptr}, down{nullptr};
  torch::Tensor attn_norm, ffn_norm;
  Config c;
  explicit BlockImpl(const Config& cfg) : c(cfg) {
    auto lin = [&](const char* name, int in, int out) {
      return register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)));
    };
    int hd = c.head_dim();
    wq = lin("wq", c.dim, c.heads * hd);
    wk = lin("wk", c.dim, c.kv_heads * hd);
    wv = lin("wv", c.dim, c.kv_heads * hd);
    wo = lin("wo", c.heads * hd, c.dim);
    gate = lin("gate", c.dim, c.ffn);
    up = lin("up", c.dim, c.ffn);
    down = lin("down", c.ffn, c.dim);
    attn_norm = register_parameter("attn_norm", torch::ones({c.dim}));
    ffn_norm = register_parameter("ffn_norm", torch::ones({c.dim}));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask) {
    const int64_t B = x.size(0), T = x.size(1), hd = c.head_dim();
    auto h = rms_norm(x, attn_norm, c.eps);
    auto q = rope(wq(h).view({B, T, c.heads, hd}), cos, sin).transpose(1, 2);
    auto k = rope(wk(h).view({B, T, c.kv_heads, hd}), cos, sin).transpose(1, 2);
    auto v = wv(h).view({B, T, c.kv_heads, hd}).transpose(1, 2);
    if (c.kv_heads != c.heads) {  // query head i reads key/value head i / group
      k = k.repeat_interleave(c.heads / c.kv_heads, 1);
      v = v.repeat_interleave(c.heads / c.kv_heads, 1);
    }
    auto att = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(hd));
    att = torch::softmax(att + mask, -1);
    auto o = torch::matmul(att, v).transpose(1, 2).reshape({B, T, c.heads * hd});
    x = x + wo(o);
    h = rms_norm(x, ffn_norm, c.eps);
    return x + down(torch::silu(gate(h)) * up(h));
  }
};
TORCH_MODULE(Block);

struct LlamaImpl : torch::nn::Module {
  Config c;
  torch::nn::Embedding emb{nullptr};
  torch::nn::Linear out{nullptr};
  torch::Tensor out_norm;
  std::vector<Block> blocks;
  explicit LlamaImpl(const Config& cfg) : c(cfg) {
    emb = register_module("emb", torch::nn::Embedding(c.vocab, c.dim));
    for (int i = 0; i < c.layers; ++i) blocks.push_back(register_module("blk" + std::to_string(i), Block(c)));
    out_norm = register_parameter("out_norm", torch::ones({c.dim}));
    out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.vocab).bias(false)));
    torch::NoGradGuard ng;
    for (auto& p : named_parameters())
      if (p.value().dim() == 2) torch::nn::init::normal_(p.value(), 0.0, 0.02);
  }
  torch::Tensor forward(const torch::Tensor& tokens) {
    const int64_t T = tokens.size(1), half = c.head_dim() / 2;
    auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(tokens.device());
    auto inv = torch::pow(c.rope_base, -torch::arange(0, half, opts) * 2.0 / c.head_dim());
    auto ang = torch::outer(torch::arange(0, T, opts), inv);
    auto cos = ang.cos(), sin = ang.sin();
    auto mask = torch::full({T, T}, -INFINITY, opts).triu(1);
    auto x = emb(tokens);
    for (auto& b : blocks) x = b->forward(x, cos, sin, mask);
    return out(rms_norm(x, out_norm, c.eps));
  }
  // Weights under the engine's GGUF names; Linear weights are [out, in], rows of `in`: as GGUF.
  std::vector<std::pair<std::string, torch::Tensor>> gguf_tensors() {
    std::vector<std::pair<std::string, torch::Tensor>> t = {
        {"token_embd.weight", emb->weight}, {"output_norm.weight", out_norm}, {"output.weight", out->weight}};
    for (int i = 0; i < c.layers; ++i) {
      auto p = "blk." + std::to_string(i) + ".";
      auto& b = blocks[i];
      t.insert(t.end(), {{p + "attn_norm.weight", b->attn_norm}, {p + "attn_q.weight", b->wq->weight},
                         {p + "attn_k.weight", b->wk->weight}, {p + "attn_v.weight", b->wv->weight},
                         {p + "attn_output.weight", b->wo->weight}, {p + "ffn_norm.weight", b->ffn_norm},
                         {p + "ffn_gate.weight", b->gate->weight}, {p + "ffn_up.weight", b->up->weight},
                         {p + "ffn_down.weight", b->down->weight}});
    }
    return t;
  }
};
TORCH_MODULE(Llama);

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "wand-train: " << msg << "\n";
  std::exit(2);
}

// The shard files DIR/manifest.json lists ("shards": ["train-00000.bin", ...]); none when it
// lists none (an older corpus): the folder is read as it is.
std::vector<std::string> manifest_shards(const std::string& dir) {
  std::ifstream in(dir + "/manifest.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  std::vector<std::string> out;
  auto p = s.find("\"shards\":");
  if (p == std::string::npos) return out;
  auto open = s.find('[', p), close = s.find(']', p);
  if (open == std::string::npos || close == std::string::npos || close < open) return out;
  for (auto q = s.find('"', open); q != std::string::npos && q < close; q = s.find('"', q + 1)) {
    auto end = s.find('"', q + 1);
    if (end == std::string::npos || end > close) break;
    out.push_back(s.substr(q + 1, end - q - 1));
    q = end;
  }
  return out;
}

// The corpus: the shards its manifest lists, else DIR/train.bin or its shards DIR/train-00000.bin,
// ... concatenated in order. A listed shard that is missing, or a file that is not a whole number
// of 2-byte tokens (a truncated copy), is refused.
std::vector<uint16_t> load_tokens(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& name : manifest_shards(dir)) {
    if (!std::filesystem::exists(dir + "/" + name))
      die(dir + "/manifest.json lists " + name + ", which is not there (copy the whole folder, or write the corpus again)");
    files.push_back(dir + "/" + name);
  }
  if (files.empty() && std::filesystem::exists(dir + "/train.bin")) {  // no list: the folder as it is
    files.push_back(dir + "/train.bin");
  } else if (files.empty()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (auto n = e.path().filename().string(); n.rfind("train-", 0) == 0 && e.path().extension() == ".bin")
        files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) die(dir + ": no train.bin or train-*.bin (run `wand corpus --out " + dir + "` first)");
  std::vector<uint16_t> v;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) die(path + ": cannot read");
    auto bytes = static_cast<std::size_t>(in.tellg());
    if (bytes % 2) die(path + ": " + std::to_string(bytes) + " bytes, not a whole number of 2-byte tokens (a truncated copy?)");
    auto n = bytes / 2, at = v.size();
    v.resize(at + n);
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data() + at), static_cast<std::streamsize>(n * 2));
    if (!in) die(path + ": unreadable");
  }
  if (v.size() < 1000)
    die(dir + ": the corpus is too short (" + std::to_string(v.size()) + " tokens; wand-train needs at least 1000)");
  return v;
}

// A whole-number entry of DIR/manifest.json; -1 when it has none.
long manifest_number(const std::string& dir, const std::string& key) {
  std::ifstream in(dir + "/manifest.json");
  if (!in) die(dir + "/manifest.json: cannot read (is " + dir + " a corpus? `wand corpus --out " + dir + "` writes one)");
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  auto p = s.find("\"" + key + "\":");
  if (p == std::string::npos) return -1;
  return std::strtol(s.c_str() + p + key.size() + 3, nullptr, 10);
}

int manifest_vocab(const std::string& dir) {
  long v = manifest_number(dir, "vocab");
  if (v == -1) die(dir + "/manifest.json: no \"vocab\" entry");
  if (v < 2 || v > 65535) die(dir + "/manifest.json: \"vocab\" is not a vocabulary size from 2 to 65535");
  return static_cast<int>(v);
}

// --dpo: DIR/pairs.bin as `wand export --format dpo --corpus` writes it (train/corpus.h).
struct Pair {
  std::vector<int64_t> prompt, chosen, rejected;
};
std::vector<Pair> load_pairs(const std::string& dir, int vocab) {
  std::string path = dir + "/pairs.bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) die(path + ": cannot read (`wand export --run ID --format dpo --corpus " + dir + "` writes it)");
  std::vector<Pair> pairs;
  for (uint32_t n[3]; in.read(reinterpret_cast<char*>(n), sizeof n);) {
    Pair p;
    std::vector<int64_t>* parts[3] = {&p.prompt, &p.chosen, &p.rejected};
    for (int i = 0; i < 3; ++i) {
      auto* v = parts[i];
      if (n[i] == 0 || n[i] > (1u << 24)) die(path + ": a pair's length is out of range (not a pairs file?)");
      std::vector<uint16_t> t(n[i]);
      if (!in.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(t.size() * 2))) die(path + ": cut off");
      for (auto id : t) {
        if (id >= vocab) die(path + ": token id " + std::to_string(id) + " is outside the vocabulary");
        v->push_back(id);
      }
    }
    pairs.push_back(std::move(p));
  }
  if (pairs.empty()) die(path + ": no pairs");
  return pairs;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o;
}

std::string config_json(const Config& c) {
  std::ostringstream o;
  o << "{\"vocab\": " << c.vocab << ", \"dim\": " << c.dim << ", \"layers\": " << c.layers << ", \"heads\": " << c.heads
    << ", \"kv_heads\": " << c.kv_heads << ", \"ffn\": " << c.ffn << ", \"context\": " << c.seq
    << ", \"rope_base\": " << c.rope_base << ", \"norm_eps\": " << c.eps << "}";
  return o.str();
}

// WANDCKPT1: magic line, u64 header length, JSON header (config, tensors in order), raw f32 data.
void save_checkpoint(const std::string& path, Llama& m, int step, double loss, const std::string& data) {
  auto tensors = m->gguf_tensors();
  std::ostringstream h;
  h << "{\"format\": \"wand checkpoint 1\", \"step\": " << step << ", \"loss\": " << loss << ", \"data\": \""
    << json_escape(data) << "\", \"config\": " << config_json(m->c) << ", \"tensors\": [";
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    h << (i ? ", " : "") << "{\"name\": \"" << tensors[i].first << "\", \"shape\": [";
    auto s = tensors[i].second.sizes();
    for (std::size_t d = 0; d < s.size(); ++d) h << (d ? ", " : "") << s[d];
    h << "]}";
  }
  h << "]}";
  std::string header = h.str(), tmp = path + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  f << "WANDCKPT1\n";
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  for (auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(c.numel() * 4));
  }
  f.close();
  if (!f || std::rename(tmp.c_str(), path.c_str()) != 0) die(path + ": write failed");
}

// OUT/checkpoint.wckpt, and with --keep-checkpoints a copy that later saves leave alone
// (checkpoint-STEP.wckpt), so a run's checkpoints can be compared on a dev set afterwards.
void save_checkpoints(const Options& o, Llama& m, int step, double loss) {
  save_checkpoint(o.out + "/checkpoint.wckpt", m, step, loss, o.data);
  if (!o.keep_checkpoints) return;
  std::error_code ec;
  const std::string kept = o.out + "/checkpoint-" + std::to_string(step) + ".wckpt";
  std::filesystem::copy_file(o.out + "/checkpoint.wckpt", kept, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) die(kept + ": " + ec.message());
}

// --init: the header of a checkpoint save_checkpoint wrote, and where its data starts.
struct CheckpointHeader {
  std::string json;
  std::streamoff data = 0;
};
CheckpointHeader read_checkpoint_header(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("--init " + path + ": cannot read");
  std::string magic;
  std::getline(f, magic);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  if (magic != "WANDCKPT1" || !f || n == 0 || n > (1u << 26)) die("--init " + path + ": not a wand-train checkpoint");
  CheckpointHeader h;
  h.json.resize(n);
  f.read(h.json.data(), static_cast<std::streamsize>(n));
  if (!f) die("--init " + path + ": the header is cut off");
  h.data = f.tellg();
  return h;
}

// A number of the header's "config" object (the header is ours: keys are unique and plain).
double config_number(const CheckpointHeader& h, const std::string& path, const std::string& key) {
  auto at = h.json.find("\"config\": {");
  auto p = at == std::string::npos ? at : h.json.find("\"" + key + "\": ", at);
  if (p == std::string::npos) die("--init " + path + ": the header has no config." + key);
  return std::strtod(h.json.c_str() + p + key.size() + 4, nullptr);
}

Config checkpoint_config(const CheckpointHeader& h, const std::string& path) {
  Config c;
  auto integer = [&](const char* k) { return static_cast<int>(config_number(h, path, k)); };
  c.vocab = integer("vocab"), c.dim = integer("dim"), c.layers = integer("layers"), c.heads = integer("heads");
  c.kv_heads = integer("kv_heads"), c.ffn = integer("ffn"), c.seq = integer("context");
  c.rope_base = config_number(h, path, "rope_base"), c.eps = config_number(h, path, "norm_eps");
  if (c.vocab < 2 || c.dim < 2 || c.layers < 1 || c.heads < 1 || c.kv_heads < 1 || c.ffn < 1 || c.seq < 1 ||
      c.dim % c.heads || c.heads % c.kv_heads)
    die("--init " + path + ": the header's config is not a model's");
  return c;
}

// Copies the checkpoint's tensors into the model, checking that it lists the model's tensors
// under the same names and shapes, in order.
void load_checkpoint(const std::string& path, const CheckpointHeader& h, Llama& m) {
  auto tensors = m->gguf_tensors();
  std::ostringstream want;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    want << (i ? ", " : "") << "{\"name\": \"" << tensors[i].first << "\", \"shape\": [";
    auto s = tensors[i].second.sizes();
    for (std::size_t d = 0; d < s.size(); ++d) want << (d ? ", " : "") << s[d];
    want << "]}";
  }
  if (h.json.find("\"tensors\": [" + want.str() + "]") == std::string::npos)
    die("--init " + path + ": its tensors are not this model's (names or shapes differ)");
  std::ifstream f(path, std::ios::binary);
  f.seekg(h.data);
  torch::NoGradGuard ng;
  for (auto& [name, t] : tensors) {
    std::vector<float> buf(static_cast<std::size_t>(t.numel()));
    f.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 4));
    if (!f) die("--init " + path + ": cut off in " + name);
    t.copy_(torch::from_blob(buf.data(), t.sizes(), torch::kFloat32));
  }
}

void write_curves(const std::string& path, const std::vector<std::pair<int, double>>& train,
                  const std::vector<std::pair<int, double>>& eval) {
  double maxl = 0, minl = 1e9;
  int maxs = 1;
  for (auto* v : {&train, &eval})
    for (auto& [s, l] : *v) maxl = std::max(maxl, l), minl = std::min(minl, l), maxs = std::max(maxs, s);
  if (maxl <= minl) maxl = minl + 1;
  auto line = [&](const std::vector<std::pair<int, double>>& v, const char* color) {
    std::ostringstream o;
    o << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
    for (auto& [s, l] : v) o << 50 + 700.0 * s / maxs << "," << 20 + 360 * (maxl - l) / (maxl - minl) << " ";
    o << "'/>";
    return o.str();
  };
  std::ofstream f(path);
  f << "<!doctype html><meta charset=utf-8><title>wand-train loss</title><body style='font-family:sans-serif'>"
    << "<h3>Loss (blue: train, orange: held-out tail)</h3><svg width=800 height=420 style='border:1px solid #ccc'>"
    << line(train, "#1f77b4") << line(eval, "#ff7f0e") << "<text x=5 y=20>" << maxl << "</text><text x=5 y=380>"
    << minl << "</text><text x=700 y=410>step " << maxs << "</text></svg></body>";
  f.close();
  if (!f) die(path + ": write failed");
}

struct Batcher {
  const std::vector<uint16_t>& tok;
  std::size_t lo, hi;  // sample windows from [lo, hi)
  std::mt19937_64 rng;
  // x: the windows, y: their next tokens; with `final_of` >= 0 (the eos id, --objective final),
  // also `final`: 1 where y is a document's last token (followed by eos), else 0.
  std::pair<torch::Tensor, torch::Tensor> next(int B, int T, torch::Device dev, int final_of = -1,
                                               torch::Tensor* final = nullptr) {
    std::uniform_int_distribution<std::size_t> pick(lo, hi - T - 2);
    const bool marked = final_of >= 0 && final;
    auto x = torch::empty({B, T}, torch::kLong), y = torch::empty({B, T}, torch::kLong);
    auto m = marked ? torch::zeros({B, T}, torch::kFloat) : torch::Tensor();
    auto xa = x.accessor<int64_t, 2>(), ya = y.accessor<int64_t, 2>();
    for (int b = 0; b < B; ++b) {
      std::size_t o = pick(rng);
      for (int t = 0; t < T; ++t) xa[b][t] = tok[o + t], ya[b][t] = tok[o + t + 1];
      if (!marked) continue;
      auto ma = m.accessor<float, 2>();
      for (int t = 0; t < T; ++t) ma[b][t] = tok[o + t + 2] == final_of && tok[o + t + 1] != final_of;
    }
    if (marked) *final = m.to(dev);
    return {x.to(dev), y.to(dev)};
  }
};

Options parse(int argc, char** argv, Config& c) {
  Options o;
  // Every number is checked against its rule first (wand's one message form, common/numbers.h),
  // so NaN, 1e400, negative or absurd values stop here with exit 2.
  auto checked = [](const std::string& name, const std::string& v, const wand::NumberRule& rule) {
    if (auto p = wand::number_problem(v, rule); !p.empty()) die(name + ": " + p);
  };
  auto integer = [&](int& field, double lo, double hi) {
    return [&field, lo, hi, &checked](const std::string& name, const std::string& v) {
      checked(name, v, {.lo = lo, .hi = hi, .integer = true});
      field = std::stoi(v);
    };
  };
  auto real = [&](double& field, double lo, double hi, bool lo_open) {
    return [&field, lo, hi, lo_open, &checked](const std::string& name, const std::string& v) {
      checked(name, v, {.lo = lo, .hi = hi, .lo_open = lo_open});
      field = std::stod(v);
    };
  };
  auto text = [](std::string& field) { return [&field](const std::string&, const std::string& v) { field = v; }; };
  const double kBig = 1e9;
  const double kThreads = std::max(8u, 4 * std::max(1u, std::thread::hardware_concurrency()));
  std::map<std::string, std::function<void(const std::string&, const std::string&)>> set = {
      {"--data", text(o.data)}, {"--out", text(o.out)}, {"--cooldown-data", text(o.cooldown_data)},
      {"--init", text(o.init)},
      {"--steps", integer(o.steps, 1, kBig)}, {"--cooldown-steps", integer(o.cooldown_steps, 0, kBig)},
      {"--batch", integer(o.batch, 1, 65536)}, {"--warmup", integer(o.warmup, 0, kBig)},
      {"--log-every", integer(o.log_every, 1, kBig)}, {"--eval-every", integer(o.eval_every, 0, kBig)},
      {"--save-every", integer(o.save_every, 0, kBig)}, {"--threads", integer(o.threads, 0, kThreads)},
      {"--lr", real(o.lr, 0, 10, true)}, {"--min-lr-ratio", real(o.min_lr_ratio, 0, 1, false)},
      {"--wd", real(o.wd, 0, 10, false)}, {"--clip", real(o.clip, 0, 1e6, true)},
      {"--seed",
       [&](const std::string& name, const std::string& v) {
         checked(name, v, {.lo = 0, .hi = 1.8446744073709552e19, .integer = true});
         o.seed = std::stoull(v);
       }},
      {"--device", text(o.device)}, {"--dtype", text(o.dtype)}, {"--sample", text(o.sample)},
      {"--objective", text(o.objective)},
      {"--sample-tokens", integer(o.sample_tokens, 1, 1 << 20)},
      {"--dim", integer(c.dim, 2, wand::train::kMaxDim)}, {"--layers", integer(c.layers, 1, wand::train::kMaxLayers)},
      {"--heads", integer(c.heads, 1, wand::train::kMaxHeads)}, {"--kv-heads", integer(c.kv_heads, 1, wand::train::kMaxHeads)},
      {"--ffn", integer(c.ffn, 1, wand::train::kMaxFfn)}, {"--seq", integer(c.seq, 1, wand::train::kMaxSeq)},
      {"--beta", real(o.beta, 0, 1000, true)}, {"--nll-weight", real(o.nll_weight, 0, 1000, false)},
  };
  // Options that only mean something with --dpo: given without it they would be silently ignored.
  const std::set<std::string> dpo_only = {"--beta", "--nll-weight"};
  std::string dpo_option;  // the last DPO-only option given
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << "usage: wand-train --data CORPUS_DIR --out DIR [--steps N] [--batch B] [--seq T] [--lr LR]\n"
                   "  [--warmup N] [--min-lr-ratio R] [--wd W] [--clip C] [--dim D] [--layers L] [--heads H]\n"
                   "  [--kv-heads K] [--ffn F] [--cooldown-data DIR --cooldown-steps N] [--device cpu|cuda]\n"
                   "  [--dtype fp32|bf16]\n"
                   "  [--threads N] [--seed S] [--resume] [--sample \"ID ID ...\" --sample-tokens N]\n"
                   "  [--log-every N] [--eval-every N] [--save-every N] [--keep-checkpoints] [--init CHECKPOINT]\n"
                   "  [--dpo --beta B --nll-weight A] [--objective lm|final]\n"
                   "Defaults: --steps 1000 --batch 32 --seq 256 --lr 1e-3 --warmup 100 --min-lr-ratio 0.1 --wd 0.1\n"
                   "--clip 1 --dim 256 --layers 6 --heads 8 --kv-heads 4 --ffn 704 --threads 0 (every core) --seed 1\n"
                   "--log-every 10 (a line in log.jsonl) --eval-every 200 (the held-out loss) --save-every 500 (state.pt,\n"
                   "optimizer.pt and checkpoint.wckpt; also at the end, and on Ctrl-C or SIGTERM); --keep-checkpoints also\n"
                   "keeps each save's weights as checkpoint-STEP.wckpt, to choose one on a dev set. --resume continues\n"
                   "from OUT's saved state with the same options; a finished run is left as it is.\n"
                   "--init starts from a checkpoint.wckpt's weights (fine-tuning, e.g. on `wand export --run ID\n"
                   "--format sft --corpus DIR`); its sizes replace --dim/--layers/--heads/--kv-heads/--ffn/--seq\n"
                   "and its vocabulary must be the corpus's. With --resume, a saved state wins over it.\n"
                   "Cosine decay from --lr to lr*min-lr-ratio after a linear warmup; the cool-down steps\n"
                   "(from their own corpus) decay linearly to zero. bf16 is mixed precision: matmuls in\n"
                   "bfloat16, weights and optimizer state in fp32; checkpoints are fp32 either way.\n"
                   "--dpo trains on preference pairs (`wand export --run ID --format dpo --corpus DIR`) by Direct\n"
                   "Preference Optimization (Rafailov et al. 2023): loss -log sigmoid(B * ((policy - reference\n"
                   "log-prob of the chosen completion) - (the same of the rejected))), --batch pairs a step, the\n"
                   "--init model as the frozen reference; log.jsonl also has the mean margin, reward accuracy and\n"
                   "the policy's mean per-token log-prob of the chosen and rejected completions and its change\n"
                   "from the reference (chosen_logp, rejected_logp, chosen_change, rejected_change; no held-out loss:\n"
                   "--eval-every does not apply). --nll-weight A (default 0, plain DPO) adds A times the chosen\n"
                   "completion's mean per-token negative log-likelihood, as iterative RPO (Pang et al. 2024) does,\n"
                   "so the chosen program stays likely rather than only more likely than the rejected one (the\n"
                   "logged loss includes it).\n"
                   "--objective final trains on each document's last token only (the one before <|eos|>; the\n"
                   "held-out loss too): an outcome verifier's label after `wand export --run ID --format verifier\n"
                   "--corpus DIR`, whose manifest gives the eos id. The default, lm, trains on every token.\n";
      std::exit(0);
    }
    if (a == "--resume" || a == "--dpo" || a == "--keep-checkpoints") {
      (a == "--dpo" ? o.dpo : a == "--resume" ? o.resume : o.keep_checkpoints) = true;
      continue;
    }
    auto it = set.find(a);
    if (it == set.end()) die("unknown option " + a + " (see --help)");
    if (i + 1 >= argc) die(a + " needs a value");
    it->second(a, argv[++i]);
    if (dpo_only.count(a)) dpo_option = a;
  }
  if (!dpo_option.empty() && !o.dpo) die(dpo_option + " applies to --dpo training only");
  if (o.data.empty() || o.out.empty()) die("--data and --out are required (see --help)");
  if (o.dtype != "fp32" && o.dtype != "bf16") die("--dtype: '" + o.dtype + "' (expected fp32 or bf16)");
  if (o.objective != "lm" && o.objective != "final") die("--objective: '" + o.objective + "' (expected lm or final)");
  if (o.dpo && o.objective != "lm") die("--objective final is for language-model training, not --dpo");
  if (o.device != "cpu" && o.device != "cuda") die("--device: '" + o.device + "' (expected cpu or cuda)");
  if (c.dim % c.heads || c.heads % c.kv_heads || c.head_dim() % 2) die("heads must divide dim, kv-heads divide heads");
  if (!o.cooldown_data.empty() && o.cooldown_steps == 0)
    die("--cooldown-data " + o.cooldown_data + " needs --cooldown-steps N (the steps trained on it)");
  if (o.dpo && o.init.empty()) die("--dpo needs --init CHECKPOINT (the starting policy and the frozen reference)");
  if (o.dpo && (o.resume || !o.cooldown_data.empty() || !o.sample.empty()))
    die("--dpo: --resume, --cooldown-data and --sample are for language-model training only");
  return o;
}

// The log-probability `m` gives `completion` after `prompt`: `sum` over the completion's tokens
// kept, and their number `tokens`; a sequence longer than the context keeps its last seq + 1
// tokens (the prompt's start goes first).
struct CompletionLogprob {
  torch::Tensor sum;
  int64_t tokens;
  // `x` (a sum over this completion's tokens) per token: length-normalised, as RPO's NLL term is.
  torch::Tensor per_token(const torch::Tensor& x) const { return x / static_cast<double>(std::max<int64_t>(1, tokens)); }
};
CompletionLogprob completion_logprob(Llama& m, const std::vector<int64_t>& prompt, const std::vector<int64_t>& completion,
                                 int seq, torch::Device dev) {
  std::vector<int64_t> ids = prompt;
  ids.insert(ids.end(), completion.begin(), completion.end());
  std::size_t cut = ids.size() > static_cast<std::size_t>(seq) + 1 ? ids.size() - seq - 1 : 0;
  ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(cut));
  // Targets are ids[1..]; the completion's first token is target number (prompt tokens kept) - 1.
  int64_t first = std::max<int64_t>(0, static_cast<int64_t>(prompt.size()) - static_cast<int64_t>(cut) - 1);
  auto t = torch::tensor(ids, torch::kLong).to(dev);
  auto x = t.slice(0, 0, -1).unsqueeze(0), y = t.slice(0, 1);
  auto logp = torch::log_softmax(m->forward(x).squeeze(0).to(torch::kFloat), -1).gather(1, y.unsqueeze(1)).squeeze(1);
  auto kept = logp.slice(0, first);
  return {kept.sum(), kept.size(0)};
}

// Direct Preference Optimization (Rafailov et al. 2023) on --data's pairs, from and against the
// --init model: per pair, margin = (log π(chosen) - log π_ref(chosen)) - (log π(rejected) -
// log π_ref(rejected)), loss = -log sigmoid(β margin) + α × (mean token NLL of chosen under π),
// averaged over --batch pairs drawn at random (α = --nll-weight; 0 is plain DPO).
int train_dpo(const Options& o, const Config& c, Llama& model, torch::optim::AdamW& opt, const CheckpointHeader& init,
              torch::Device dev) {
  auto pairs = load_pairs(o.data, c.vocab);
  Llama reference(c);
  load_checkpoint(o.init, init, reference);
  reference->to(dev);
  reference->eval();
  for (auto& p : reference->parameters()) p.set_requires_grad(false);
  // The reference's log-probs never change: computed once.
  std::vector<std::pair<double, double>> ref;
  {
    torch::NoGradGuard ng;
    Autocast ac(dev, o.dtype == "bf16");
    for (auto& p : pairs)
      ref.emplace_back(completion_logprob(reference, p.prompt, p.chosen, c.seq, dev).sum.item<double>(),
                       completion_logprob(reference, p.prompt, p.rejected, c.seq, dev).sum.item<double>());
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  std::ofstream log(o.out + "/log.jsonl", std::ios::trunc);
  if (!log) die(o.out + "/log.jsonl: cannot write");
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<std::size_t> pick(0, pairs.size() - 1);
  double loss_v = 0, first_loss = -1;
  for (int step = 0; step < o.steps; ++step) {
    double lr = step < o.warmup ? o.lr * (step + 1) / o.warmup
                                : o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 *
                                                               (1 + std::cos(M_PI * double(step - o.warmup) / std::max(1, o.steps - o.warmup))));
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    // Per pair: the policy's mean token log-prob of each side, and its change from the reference.
    std::vector<torch::Tensor> margins, chosen_mean, rejected_mean, chosen_change, rejected_change;
    {
      Autocast ac(dev, o.dtype == "bf16");
      for (int b = 0; b < o.batch; ++b) {
        std::size_t i = pick(rng);
        auto chosen = completion_logprob(model, pairs[i].prompt, pairs[i].chosen, c.seq, dev);
        auto rejected = completion_logprob(model, pairs[i].prompt, pairs[i].rejected, c.seq, dev);
        margins.push_back((chosen.sum - ref[i].first) - (rejected.sum - ref[i].second));
        chosen_mean.push_back(chosen.per_token(chosen.sum));
        rejected_mean.push_back(rejected.per_token(rejected.sum));
        chosen_change.push_back(chosen.per_token(chosen.sum - ref[i].first));
        rejected_change.push_back(rejected.per_token(rejected.sum - ref[i].second));
      }
    }
    auto margin = torch::stack(margins);
    auto chosen_logp = torch::stack(chosen_mean).mean(), rejected_logp = torch::stack(rejected_mean).mean();
    auto loss = -torch::log_sigmoid(o.beta * margin).mean();
    if (o.nll_weight > 0) loss = loss - o.nll_weight * chosen_logp;
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip);
    opt.step();
    if (step % o.log_every == 0 || step == o.steps - 1) {
      loss_v = loss.item<double>();
      if (first_loss < 0) first_loss = loss_v;
      std::ostringstream line;
      line << "{\"step\": " << step << ", \"loss\": " << loss_v << ", \"margin\": " << margin.mean().item<double>()
           << ", \"reward_accuracy\": " << (margin > 0).to(torch::kFloat).mean().item<double>()
           << ", \"chosen_logp\": " << chosen_logp.item<double>() << ", \"rejected_logp\": " << rejected_logp.item<double>()
           << ", \"chosen_change\": " << torch::stack(chosen_change).mean().item<double>()
           << ", \"rejected_change\": " << torch::stack(rejected_change).mean().item<double>()
           << ", \"lr\": " << lr << ", \"phase\": \"dpo\", \"beta\": " << o.beta << ", \"nll_weight\": " << o.nll_weight
           << "}";
      log << line.str() << std::endl;
      if (!log) die(o.out + "/log.jsonl: write failed (disk full?)");
      std::cerr << line.str() << "\n";
    }
    if ((o.save_every > 0 && (step + 1) % o.save_every == 0) || step == o.steps - 1)
      save_checkpoints(o, model, step + 1, loss_v);
  }
  std::cerr << "done: first logged DPO loss " << first_loss << ", last " << loss_v << "; checkpoint in " << o.out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  Options o = parse(argc, argv, c);
  torch::manual_seed(o.seed);
  if (o.threads > 0) torch::set_num_threads(o.threads);
  torch::Device dev(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  if (dev.is_cuda() && !torch::cuda::is_available()) die("--device cuda, but no CUDA device is available");
  if (dev.is_cuda()) at::globalContext().setAllowTF32CuBLAS(true);
  c.vocab = manifest_vocab(o.data);
  // --objective final: documents end where eos comes (the corpus's manifest names it).
  const int final_of = o.objective == "final" ? static_cast<int>(manifest_number(o.data, "eos")) : -1;
  if (o.objective == "final" && final_of < 0)
    die(o.data + "/manifest.json: no \"eos\" entry, which --objective final needs (write the corpus again with this wand)");
  std::optional<CheckpointHeader> init;
  if (!o.init.empty()) {
    init = read_checkpoint_header(o.init);
    Config from = checkpoint_config(*init, o.init);
    if (from.vocab != c.vocab)
      die("--init " + o.init + ": its vocabulary has " + std::to_string(from.vocab) + " tokens, the corpus's " +
          std::to_string(c.vocab) + " (tokenize the data with the model's tokenizer)");
    c = from;
  }
  // --sample's ids, checked before any training: whole integers inside the vocabulary.
  std::vector<int64_t> sample_ids;
  {
    std::istringstream in(o.sample);
    for (std::string w; in >> w;) {
      if (w.find_first_not_of("0123456789") != std::string::npos || w.size() > 9)
        die("--sample: '" + w + "' is not a token id (give space-separated integers)");
      int64_t v = std::stoll(w);
      if (v >= c.vocab) die("--sample: token id " + w + " is outside the vocabulary of " + std::to_string(c.vocab));
      sample_ids.push_back(v);
    }
    if (!o.sample.empty() && sample_ids.empty()) die("--sample: no token ids");
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) die(o.out + ": cannot create: " + ec.message());

  Llama model(c);
  if (init) load_checkpoint(o.init, *init, model);
  model->to(dev);
  // Weight decay on matrices only (not norms).
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model->named_parameters()) (p.value().dim() >= 2 ? decay : no_decay).push_back(p.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(o.wd).betas({0.9, 0.95})));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(0.0).betas({0.9, 0.95})));
  torch::optim::AdamW opt(std::move(groups));
  if (o.dpo) return train_dpo(o, c, model, opt, *init, dev);
  auto tokens = load_tokens(o.data);
  std::vector<uint16_t> cool;
  if (!o.cooldown_data.empty()) cool = load_tokens(o.cooldown_data);
  // An id at or past the vocabulary would end in an index error deep in torch: a corpus folder
  // whose manifest is not its tokens' (an interrupted `wand corpus` over an older one) is named.
  for (auto* t : {&tokens, &cool})
    if (auto m = std::max_element(t->begin(), t->end()); m != t->end() && *m >= c.vocab)
      die((t == &tokens ? o.data : o.cooldown_data) + ": token id " + std::to_string(*m) +
          " is outside the vocabulary of " + std::to_string(c.vocab) +
          " (manifest.json is not these tokens'; write the corpus again)");

  int start = 0;
  std::string state = o.out + "/state.pt";
  const int total = o.steps + o.cooldown_steps;
  if (o.resume && std::filesystem::exists(state)) {
    // A state saved by a model of other sizes loads without complaint and fails later in torch:
    // its shapes are compared with this model's first.
    std::map<std::string, std::vector<int64_t>> shapes;
    for (auto& p : model->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
    std::string loading = state;  // the file named when loading fails
    try {
      torch::serialize::InputArchive in;
      in.load_from(state, dev);
      model->load(in);
      loading = o.out + "/optimizer.pt";
      torch::serialize::InputArchive oin;
      oin.load_from(loading, dev);
      opt.load(oin);
    } catch (const c10::Error& e) {
      die("--resume: " + loading + " cannot be loaded (" + std::string(e.what_without_backtrace()) +
          "); give the options it was trained with, or a new --out");
    }
    for (auto& p : model->named_parameters())
      if (p.value().sizes().vec() != shapes[p.key()])
        die("--resume: " + state + " is a model of other sizes (" + p.key() +
            " differs); give the --dim/--layers/--heads/--kv-heads/--ffn/--seq it was trained with, or a new --out");
    // A step that is not a count (a damaged file) would silently restart or end the run.
    std::ifstream step_file(o.out + "/state.step");
    std::string rest;
    if (!(step_file >> start) || start < 0 || (step_file >> rest))
      die("--resume: " + o.out + "/state.step: not a step number (a damaged state); give a new --out");
    if (start >= total) {  // its checkpoint, log and curves stay as they are
      std::cerr << "wand-train: " << o.out << " is finished (" << start << " of " << total
                << " steps); nothing to do (raise --steps to train further)\n";
      return 0;
    }
    std::cerr << "resumed at step " << start << "\n";
  } else if (o.resume) {
    std::cerr << "wand-train: --resume: no saved state in " << o.out << "; starting at step 0\n";
  }

  // The last 1% of the tokens is never trained on: the held-out loss.
  std::size_t held_tokens = std::max<std::size_t>(tokens.size() / 100, c.seq * 4);
  // Both parts must hold a window of --seq + 1 tokens (a fine-tuning corpus from a run is small).
  if (tokens.size() < held_tokens + c.seq + 2)
    die(o.data + ": the corpus has " + std::to_string(tokens.size()) + " tokens; --seq " + std::to_string(c.seq) +
        " needs at least " + std::to_string(held_tokens + c.seq + 2) + " (the held-out tail is " +
        std::to_string(held_tokens) + ")");
  std::size_t split = tokens.size() - held_tokens;
  Batcher train{tokens, 0, split, std::mt19937_64(o.seed + start)};
  Batcher held{tokens, split, tokens.size(), std::mt19937_64(o.seed + 99)};
  Batcher cooldown{cool.empty() ? tokens : cool, 0, cool.empty() ? split : cool.size(), std::mt19937_64(o.seed + 7)};
  // The log up to the saved step (lines past it were logged before an interruption and are done
  // again), which the curves start from.
  std::vector<std::pair<int, double>> train_curve, eval_curve;
  std::string kept;
  if (start > 0) {
    std::ifstream old_log(o.out + "/log.jsonl");
    auto number = [](const std::string& line, const std::string& key) -> std::optional<double> {
      auto at = line.find("\"" + key + "\": ");
      if (at == std::string::npos) return std::nullopt;
      return std::strtod(line.c_str() + at + key.size() + 4, nullptr);
    };
    for (std::string line; std::getline(old_log, line);) {
      auto step = number(line, "step"), loss = number(line, "loss");
      if (!step || !loss || *step >= start) continue;
      kept += line + "\n";
      train_curve.emplace_back(static_cast<int>(*step), *loss);
      if (auto e = number(line, "eval_loss")) eval_curve.emplace_back(static_cast<int>(*step), *e);
    }
  }
  std::ofstream log(o.out + "/log.jsonl", std::ios::trunc);
  log << kept;
  if (!log) die(o.out + "/log.jsonl: cannot write");
  auto lr_at = [&](int step) {
    if (step < o.warmup) return o.lr * (step + 1) / o.warmup;
    if (step >= o.steps) return o.lr * o.min_lr_ratio * (total - step) / std::max(1, o.cooldown_steps);
    double p = double(step - o.warmup) / std::max(1, o.steps - o.warmup);
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + std::cos(M_PI * p)));
  };
  const bool bf16 = o.dtype == "bf16";
  // The mean next-token loss of a batch: over every token, or (--objective final) over the
  // documents' last tokens only (none in the batch: zero).
  auto batch_loss = [&](Batcher& from) {
    torch::Tensor final;
    auto [x, y] = from.next(o.batch, c.seq, dev, final_of, &final);
    Autocast ac(dev, bf16);
    auto logits = model->forward(x).view({-1, c.vocab});
    if (final_of < 0) return torch::cross_entropy_loss(logits, y.view({-1}));
    auto nll = torch::cross_entropy_loss(logits, y.view({-1}), {}, at::Reduction::None);
    auto m = final.view({-1});
    return (nll * m).sum() / m.sum().clamp_min(1);
  };
  auto eval_loss = [&] {
    torch::NoGradGuard ng;
    model->eval();
    double s = 0;
    for (int i = 0; i < 4; ++i) s += batch_loss(held).item<double>();
    model->train();
    return s / 4;
  };
  auto t0 = std::chrono::steady_clock::now();
  double loss_v = 0, first_loss = -1;
  auto save_state = [&](int steps_done) {
    torch::serialize::OutputArchive out, oout;
    model->save(out);
    out.save_to(state);
    opt.save(oout);
    oout.save_to(o.out + "/optimizer.pt");
    std::ofstream(o.out + "/state.step") << steps_done;
    save_checkpoints(o, model, steps_done, loss_v);
  };
  // Ctrl-C and SIGTERM end the run after the step in progress, its state saved for --resume.
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  for (int step = start; step < total; ++step) {
    double lr = lr_at(step);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    torch::Tensor loss = batch_loss(step >= o.steps ? cooldown : train);
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip);
    opt.step();
    if (step % o.log_every == 0 || step == total - 1) {
      loss_v = loss.item<double>();
      if (first_loss < 0) first_loss = loss_v;
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double tps = double(step - start + 1) * o.batch * c.seq / std::max(secs, 1e-9);
      std::ostringstream line;
      line << "{\"step\": " << step << ", \"loss\": " << loss_v << ", \"lr\": " << lr << ", \"tokens_per_s\": " << tps
           << ", \"phase\": \"" << (step >= o.steps ? "cooldown" : "main") << "\", \"dtype\": \"" << o.dtype << "\"";
      train_curve.emplace_back(step, loss_v);
      if ((o.eval_every > 0 && step % o.eval_every == 0) || step == total - 1) {
        double e = eval_loss();
        eval_curve.emplace_back(step, e);
        line << ", \"eval_loss\": " << e;
      }
      line << "}";
      log << line.str() << std::endl;
      if (!log) die(o.out + "/log.jsonl: write failed (disk full?)");
      std::cerr << line.str() << "\n";
    }
    if ((o.save_every > 0 && (step + 1) % o.save_every == 0) || step == total - 1 || g_stop) save_state(step + 1);
    if (g_stop) {
      write_curves(o.out + "/curves.html", train_curve, eval_curve);
      std::cerr << "wand-train: stopped by a signal after step " << step + 1 << " of " << total
                << "; its state is saved in " << o.out << ": the same command with --resume continues\n";
      return 130;
    }
  }
  write_curves(o.out + "/curves.html", train_curve, eval_curve);
  if (!sample_ids.empty()) {  // the trainer's own greedy continuation, to check the export against
    torch::NoGradGuard ng;
    model->eval();
    std::vector<int64_t> ids = sample_ids;
    std::ofstream s(o.out + "/sample.txt");
    for (int i = 0; i < o.sample_tokens; ++i) {
      auto x = torch::tensor(ids, torch::kLong).unsqueeze(0).to(dev);
      auto next = model->forward(x).select(1, -1).argmax(-1).item<int64_t>();
      ids.push_back(next);
      s << next << (i + 1 < o.sample_tokens ? " " : "\n");
    }
    s.close();
    if (!s) die(o.out + "/sample.txt: write failed");
  }
  std::cerr << "done: first logged loss " << first_loss << ", last " << loss_v << "; checkpoint in " << o.out << "\n";
  return 0;
}
