// The embedded engine against real references (../shared/data: llama.cpp's tokenizer vectors
// and greedy continuations) and against a plain double-precision forward pass written here.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/base64.h"
#include "common/json.h"
#include "llm/gguf.h"
#include "llm/kernels.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "llm/sampler.h"
#include "llm/weights.h"

using namespace wand;
using namespace wand::llm;

namespace {

std::string data(const std::string& rel) { return std::string(WAND_SHARED_DATA) + "/" + rel; }
#define NEED_DATA(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found: needs ../shared/data beside the repo"

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("wand_llm_test_" + std::to_string(getpid()) + "_" + name)).string();
}

class Tokenizers : public testing::TestWithParam<std::string> {};

TEST_P(Tokenizers, ReproduceLlamaCppTestVectors) {
  std::string base = data("gguf-vocab/ggml-vocab-" + GetParam() + ".gguf");
  NEED_DATA(base);
  auto f = GgufFile::open(base);
  ASSERT_TRUE(f) << f.error().message;
  auto tok = Tokenizer::from_gguf(**f);
  ASSERT_TRUE(tok) << tok.error().message;
  auto inp_file = read_file(base + ".inp"), out_file = read_file(base + ".out");
  ASSERT_TRUE(inp_file && out_file);
  std::string inp = *inp_file, sep = "\n__ggml_vocab_test__\n";
  std::istringstream out(*out_file);
  std::size_t p = 0, q, cases = 0;
  while ((q = inp.find(sep, p)) != std::string::npos) {
    std::string text = inp.substr(p, q - p), want, got;
    p = q + sep.size();
    std::getline(out, want);
    for (auto id : tok->encode(text)) got += " " + std::to_string(id);
    EXPECT_EQ(got, want) << "text: [" << text << "]";
    ++cases;
    // Decoding gives the text back (SentencePiece adds its leading space).
    std::string back = tok->decode(tok->encode(text));
    if (tok->kind() == Tokenizer::Kind::spm && !text.empty()) back.erase(0, 1);
    EXPECT_EQ(back, text);
  }
  EXPECT_GT(cases, 40u);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, Tokenizers,
                         testing::Values("gpt-2", "starcoder", "deepseek-coder", "llama-spm", "phi-3"));

// llama-cli's output: the prompt echoed, the continuation, " [end of text]\n" if the model
// ended it, then two newlines. With an F32 cache every continuation matches token for token.
// With an F16 cache (llama.cpp's default, as when these were made) a continuation may leave the
// reference only at a near-tie: where the first differing token was chosen, the reference's pick
// must have been within 0.02 of the top logit (logits of random-weight models lie within a few units).
// A Q8 cache rounds more (stories260K's heads have 8 dimensions, each query and key one int8 scale):
// 6 of 14 exact when measured (stories260K 4 of its 10), the widest gap where one left the
// reference 0.16.
TEST(Engine, ReproducesLlamaCppGreedyContinuations) {
  std::string refs = data("models/greedy-references.jsonl");
  NEED_DATA(refs);
  int checked = 0, exact_f16 = 0, exact_q8 = 0;
  for (CacheType cache : {CacheType::f32, CacheType::f16, CacheType::q8}) {
    auto r = for_each_json_line(refs, [&](int line, const Json& j) -> VoidResult {
      auto model = Model::load(data("models/" + j["model"].get<std::string>()));
      if (!model) return model.error();
      const Tokenizer& tok = (*model)->tokenizer();
      const std::string want = base64_decode(j["output_base64"].get<std::string>());
      auto ids = tok.encode(j["prompt"].get<std::string>(), tok.add_bos_default());
      Context ctx(*model, 0, 1 + line % 2, cache);  // one and two threads
      std::string out;
      for (auto t : ids) out += tok.piece(t);
      auto logits = ctx.eval(ids);
      if (!logits) return logits.error();
      Sampler greedy({});
      double gap_at_divergence = -1;  // top logit minus the reference's token's, where they part
      for (int i = 0; i < j["n_predict"].get<int>(); ++i) {
        Token t = greedy.sample(*logits, ids);
        const std::string piece = tok.is_eog(t) ? " [end of text]\n" : tok.piece(t);
        if (gap_at_divergence < 0 && want.compare(out.size(), piece.size(), piece) != 0) {
          // The reference's next token: the longest piece that continues its text.
          double best = -1e30;
          for (Token c = 0; c < static_cast<Token>(tok.size()); ++c) {
            const std::string p = tok.is_eog(c) ? " [end of text]\n" : tok.piece(c);
            if (!p.empty() && want.compare(out.size(), p.size(), p) == 0) best = std::max(best, double((*logits)[c]));
          }
          gap_at_divergence = (*logits)[t] - best;
        }
        out += piece;
        if (tok.is_eog(t)) break;
        logits = ctx.eval(std::span<const Token>(&t, 1));
        if (!logits) return logits.error();
      }
      out += "\n\n";
      const std::string where = fmt::format("{} / {} / {}", j["model"].get<std::string>(),
                                            j["prompt"].get<std::string>(), j["n_predict"].get<int>());
      if (cache == CacheType::f32) {
        EXPECT_EQ(out, want) << where;
      } else if (out == want) {
        ++(cache == CacheType::f16 ? exact_f16 : exact_q8);
      } else {
        EXPECT_LT(gap_at_divergence, cache == CacheType::f16 ? 0.02 : 0.25)
            << where << (cache == CacheType::f16 ? " / f16" : " / q8") << " cache: left the reference "
            << gap_at_divergence << " from a tie";
      }
      ++checked;
      return ok_status();
    });
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(checked, 42);
  EXPECT_GE(exact_f16, 13) << "of 14 with an F16 cache";
  EXPECT_GE(exact_q8, 6) << "of 14 with a Q8 cache";
}

TEST(Engine, CacheTypesParseByNameAndRefuseOthers) {
  EXPECT_EQ(*parse_cache_type("f16"), CacheType::f16);
  EXPECT_EQ(*parse_cache_type("f32"), CacheType::f32);
  EXPECT_EQ(*parse_cache_type("q8"), CacheType::q8);
  auto bad = parse_cache_type("q8_0");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "KV cache type 'q8_0' is unknown (f32, f16 or q8)");
}

// ---- a plain reference forward pass, in double precision, for clarity not speed ----

struct Reference {
  const ModelWeights& w;
  std::vector<std::vector<std::vector<double>>> kc, vc;  // [layer][pos][kv_dim]

  const std::vector<float>& t(const std::string& n) const { return w.tensors.at(n); }
  static std::vector<double> matvec(const std::vector<float>& m, const std::vector<double>& x, std::size_t rows) {
    std::vector<double> y(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < x.size(); ++i) y[r] += m[r * x.size() + i] * x[i];
    return y;
  }
  std::vector<double> norm(const std::vector<double>& x, const std::vector<float>& g) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    double s = 1.0 / std::sqrt(ss / x.size() + w.config.norm_eps);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * g[i];
    return y;
  }
  void rope(std::vector<double>& v, int heads, int pos) const {
    const auto& c = w.config;
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < c.rope_dim / 2; ++i) {
        double theta = pos * std::pow(double(c.rope_base), -2.0 * i / c.rope_dim);
        double& a = v[h * c.head_dim + 2 * i];
        double& b = v[h * c.head_dim + 2 * i + 1];
        double x0 = a, x1 = b;
        a = x0 * std::cos(theta) - x1 * std::sin(theta);
        b = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
  }
  std::vector<double> step(Token token) {
    const auto& c = w.config;
    const std::size_t D = c.dim, hd = c.head_dim, qd = c.heads * hd, kvd = c.kv_heads * hd;
    if (kc.empty()) kc.resize(c.layers), vc.resize(c.layers);
    int pos = static_cast<int>(kc[0].size());
    std::vector<double> x(t("token_embd.weight").begin() + token * D, t("token_embd.weight").begin() + (token + 1) * D);
    for (int l = 0; l < c.layers; ++l) {
      std::string p = "blk." + std::to_string(l) + ".";
      auto h = norm(x, t(p + "attn_norm.weight"));
      auto q = matvec(t(p + "attn_q.weight"), h, qd), k = matvec(t(p + "attn_k.weight"), h, kvd),
           v = matvec(t(p + "attn_v.weight"), h, kvd);
      rope(q, c.heads, pos);
      rope(k, c.kv_heads, pos);
      kc[l].push_back(k);
      vc[l].push_back(v);
      std::vector<double> att(qd, 0.0);
      for (int hh = 0; hh < c.heads; ++hh) {
        int kvh = hh / (c.heads / c.kv_heads);
        std::vector<double> s(pos + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= pos; ++j) {
          s[j] = 0;
          for (std::size_t i = 0; i < hd; ++i) s[j] += q[hh * hd + i] * kc[l][j][kvh * hd + i];
          s[j] /= std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int j = 0; j <= pos; ++j)
          for (std::size_t i = 0; i < hd; ++i) att[hh * hd + i] += s[j] / sum * vc[l][j][kvh * hd + i];
      }
      auto o = matvec(t(p + "attn_output.weight"), att, D);
      for (std::size_t i = 0; i < D; ++i) x[i] += o[i];
      h = norm(x, t(p + "ffn_norm.weight"));
      auto g = matvec(t(p + "ffn_gate.weight"), h, c.ffn), u = matvec(t(p + "ffn_up.weight"), h, c.ffn);
      for (int i = 0; i < c.ffn; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      auto d = matvec(t(p + "ffn_down.weight"), g, D);
      for (std::size_t i = 0; i < D; ++i) x[i] += d[i];
    }
    return matvec(t("output.weight"), norm(x, t("output_norm.weight")), c.vocab);
  }
};

struct Shape {
  int dim, layers, heads, kv_heads, ffn;
};

// A random-weight F32 model of the shape, its weights for the reference, and a prompt.
class Forward : public testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    const Shape s = GetParam();
    c.dim = s.dim, c.layers = s.layers, c.heads = s.heads, c.kv_heads = s.kv_heads, c.ffn = s.ffn, c.vocab = 300;
    c.context = 64;
    w = random_weights(c, 7 + s.dim);
    ASSERT_TRUE(write_model(path, w, TensorType::F32));
    auto m = Model::load(path);
    ASSERT_TRUE(m) << m.error().message;
    model = *m;
  }
  void TearDown() override { std::filesystem::remove(path); }
  ModelConfig c;
  ModelWeights w;
  std::string path = temp_path("ref.gguf");
  std::shared_ptr<const Model> model;
  std::vector<Token> seq = {1, 77, 5, 260, 42, 42, 9, 128, 255, 3, 17, 200};
};

// Token by token and as one batch, the engine's logits agree with the reference within 1e-3
// (absolute, on logits of order 1) in F32.
TEST_P(Forward, MatchesThePlainReference) {
  Reference ref{w};
  Context one(model, 0, 2), batch(model, 0, 2), scored(model, 0, 2);
  auto all = batch.eval(std::span<const Token>(seq).first(seq.size() - 1));
  ASSERT_TRUE(all);
  all = batch.eval(std::span<const Token>(seq).last(1));
  // Every position's logits in one pass (how a prompt is scored) are row t of the result.
  auto rows = scored.eval(seq, /*all_positions=*/true);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), seq.size() * c.vocab);
  std::vector<double> want;
  for (std::size_t k = 0; k < seq.size(); ++k) {
    Token t = seq[k];
    want = ref.step(t);
    auto got = one.eval(std::span<const Token>(&t, 1));
    ASSERT_TRUE(got);
    for (int i = 0; i < c.vocab; ++i) {
      ASSERT_NEAR((*got)[i], want[i], 1e-3) << "token " << t << " logit " << i;
      ASSERT_NEAR((*rows)[k * c.vocab + i], (*got)[i], 1e-4) << "all positions, row " << k << " logit " << i;
    }
  }
  for (int i = 0; i < c.vocab; ++i) ASSERT_NEAR((*all)[i], want[i], 1e-3) << "batched, logit " << i;
}

// With a Q8 cache (keys, values and queries as int8, one scale a head) the logits stay within
// what 8 bits allow of the reference, token by token and as one batch, and closer with an F16
// cache; heads whose size is not a multiple of 4 are refused, by the backend as an error.
TEST_P(Forward, Q8CacheStaysCloseToTheReference) {
  Reference ref{w};
  Context one(model, 0, 2, CacheType::q8), batch(model, 0, 2, CacheType::q8), half(model, 0, 1, CacheType::f16);
  auto all = batch.eval(seq);
  ASSERT_TRUE(all);
  double worst = 0, worst_f16 = 0;
  std::vector<double> want;
  for (Token t : seq) {
    want = ref.step(t);
    auto got = one.eval(std::span<const Token>(&t, 1));
    ASSERT_TRUE(got);
    auto got16 = half.eval(std::span<const Token>(&t, 1));
    ASSERT_TRUE(got16);
    for (int i = 0; i < c.vocab; ++i) {
      worst = std::max(worst, std::fabs((*got)[i] - want[i]));
      worst_f16 = std::max(worst_f16, std::fabs((*got16)[i] - want[i]));
    }
  }
  // (Measured: at most 3.4e-4 over these shapes, an F16 cache 1.5e-5.)
  for (int i = 0; i < c.vocab; ++i) ASSERT_NEAR((*all)[i], want[i], 2e-3) << "batched, logit " << i;
  EXPECT_LT(worst, 2e-3);
  EXPECT_GT(worst, worst_f16);  // int8 loses more than fp16
}

TEST(Engine, Q8CacheRefusesHeadsNotAMultipleOfFour) {
  ModelConfig c;
  c.dim = 36, c.layers = 1, c.heads = 6, c.kv_heads = 3, c.ffn = 64, c.vocab = 300, c.context = 16;  // heads of 6
  std::string path = temp_path("hd6.gguf");
  ASSERT_TRUE(write_model(path, random_weights(c, 2), TensorType::F32));
  auto model = Model::load(path);
  ASSERT_TRUE(model) << model.error().message;
  EXPECT_THROW(Context(*model, 0, 1, CacheType::q8), std::invalid_argument);
  auto backend = open_backend("local:" + path, {.kv_cache = "q8"});
  ASSERT_FALSE(backend);
  EXPECT_EQ(backend.error().message, "a Q8 KV cache needs heads of a multiple of 4 dimensions; " + path + "'s have 6");
  EXPECT_TRUE(open_backend("local:" + path, {.kv_cache = "f16"}));
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Forward,
                         testing::Values(Shape{64, 2, 4, 2, 96}, Shape{128, 3, 8, 8, 256}, Shape{96, 1, 6, 3, 160},
                                         Shape{32, 2, 1, 1, 64}));

// Q8_0 and F16 files: the same model within the error their rounding allows.
TEST(Engine, QuantizedModelsStayCloseToF32) {
  ModelConfig c;
  c.dim = 64, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.ffn = 128, c.vocab = 300, c.context = 32;
  auto w = random_weights(c, 3);
  std::vector<Token> seq = {10, 20, 30, 40, 50};
  std::vector<std::vector<float>> out;
  for (auto type : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0}) {
    std::string path = temp_path(std::string(type_name(type)) + ".gguf");
    ASSERT_TRUE(write_model(path, w, type));
    auto m = Model::load(path);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ((*m)->embeddings().type, type);
    Context ctx(*m, 0, 2);
    auto l = ctx.eval(seq);
    ASSERT_TRUE(l);
    out.emplace_back(l->begin(), l->end());
    std::filesystem::remove(path);
  }
  auto max_diff = [&](int k) {
    double d = 0;
    for (int i = 0; i < c.vocab; ++i) d = std::max(d, double(std::fabs(out[k][i] - out[0][i])));
    return d;
  };
  EXPECT_LT(max_diff(1), 0.01);
  EXPECT_LT(max_diff(2), 0.1);
  EXPECT_LT(max_diff(3), 0.6);
  EXPECT_GT(max_diff(3), max_diff(2));  // 4 bits lose more than 8
}

TEST(Kernels, HalfFloatsRoundToNearestEven) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1e-5f, 1e-7f, 0.333333f, 1000.1f}) {
    float back = fp16_to_fp32(fp32_to_fp16(f));
    EXPECT_NEAR(back, f, std::fabs(f) * 1e-3 + 6e-8) << f;
  }
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 2048), fp32_to_fp16(1.0f));  // a tie goes to even
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7c00);                            // overflow is infinity
}

// ---- GGUF reader: every prefix and many corruptions of a real file give errors, not crashes ----

TEST(Gguf, WriterRoundTripsMetadataAndTensors) {
  GgufWriter w;
  w.set("a.string", std::string("hello"));
  w.set("a.int", int64_t{42});
  w.set("a.neg", int64_t{-5});
  w.set("a.float", 0.25);
  w.set("a.bool", true);
  w.set("a.list", GgufArray{std::vector<std::string>{"x", "yz"}});
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(w.add_tensor("t", TensorType::F32, {3, 2}, {reinterpret_cast<uint8_t*>(v.data()), 24}));
  EXPECT_FALSE(w.add_tensor("bad", TensorType::F32, {3, 2}, {reinterpret_cast<uint8_t*>(v.data()), 20}));
  std::string path = temp_path("rt.gguf");
  ASSERT_TRUE(w.write(path));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(*(*f)->get_string("a.string"), "hello");
  EXPECT_EQ(*(*f)->get_int("a.int", 0), 42);
  EXPECT_EQ(*(*f)->get_int("a.neg", 0), -5);
  EXPECT_EQ(*(*f)->get_float("a.float", 0), 0.25);
  EXPECT_TRUE(*(*f)->get_bool("a.bool", false));
  EXPECT_FALSE((*f)->get_int("a.string", 0));  // wrong type is an error
  auto* t = (*f)->tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(reinterpret_cast<const float*>(t->data)[5], 6.f);
  std::filesystem::remove(path);
}

// A model written over a symbolic link goes to the link's target (the link stays); over a pipe, a
// device or a folder it is refused naming the path: the rename that keeps a failed write from
// leaving half a model would otherwise replace the node itself (as it once replaced /dev/full).
TEST(Gguf, WriterWritesThroughALinkAndRefusesSpecialFiles) {
  GgufWriter w;
  w.set("a.int", int64_t{7});
  namespace fs = std::filesystem;
  std::string target = temp_path("target.gguf"), link = temp_path("link.gguf"), fifo = temp_path("pipe.gguf");
  std::string folder = temp_path("folder.gguf");
  fs::remove(link), fs::remove(fifo), fs::remove_all(folder);
  std::ofstream(target) << "old";
  fs::create_symlink(target, link);
  ASSERT_TRUE(w.write(link));
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(link)));
  auto f = GgufFile::open(target);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(*(*f)->get_int("a.int", 0), 7);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_directories(folder);
  for (auto& [path, says] : std::vector<std::pair<std::string, std::string>>{
           {fifo, "not a regular file (a device, pipe or socket)"}, {folder, "not a regular file (a folder)"}}) {
    auto r = w.write(path);
    ASSERT_FALSE(r) << path;
    EXPECT_EQ(r.error().message, path + ": " + says + "; give the path of a file to write");
  }
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(fifo)));
  EXPECT_FALSE(fs::exists(fifo + ".tmp"));
  for (auto& p : {target, link, fifo}) fs::remove(p);
  fs::remove_all(folder);
}

// release drops a tensor's pages from memory, not its bytes: read again, they come back from the
// file unchanged (the engine releases every matrix it repacked); a range outside the file is ignored.
TEST(Gguf, ReleasedTensorsReadBackFromTheFile) {
  GgufWriter w;
  std::vector<float> v(40000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  ASSERT_TRUE(w.add_tensor("t", TensorType::F32, {200, 200}, {reinterpret_cast<uint8_t*>(v.data()), v.size() * 4}));
  std::string path = temp_path("release.gguf");
  ASSERT_TRUE(w.write(path));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  auto* t = (*f)->tensor("t");
  ASSERT_NE(t, nullptr);
  const std::size_t n = v.size() * 4;
  ASSERT_EQ(std::memcmp(t->data, v.data(), n), 0);
  (*f)->release(t->data, n);
  EXPECT_EQ(std::memcmp(t->data, v.data(), n), 0);
  (*f)->release(reinterpret_cast<const uint8_t*>(v.data()), n);  // not the file's: ignored
  EXPECT_EQ(v[39999], 39999 * 0.5f);
  std::filesystem::remove(path);
}

TEST(Gguf, TruncatedAndCorruptFilesGiveErrors) {
  std::string path = data("models/tiny-bytes-q8_0-pure.gguf");
  NEED_DATA(path);
  auto file = read_file(path);
  ASSERT_TRUE(file) << file.error().message;
  std::string bytes = *file;
  auto span = [](const std::string& s, std::size_t n) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), n);
  };
  ASSERT_TRUE(parse_gguf(span(bytes, bytes.size()), "whole"));
  for (std::size_t n = 0; n < bytes.size(); n += (n < 20000 ? 1 : 997)) {
    auto r = parse_gguf(span(bytes, n), "prefix");
    ASSERT_FALSE(r) << "a " << n << "-byte prefix parsed";
    EXPECT_NE(r.error().message.find("prefix"), std::string::npos);
  }
  std::mt19937 rng(1);
  for (int i = 0; i < 3000; ++i) {  // flipped bytes in the header: an error or a valid parse, never a crash
    std::string b = bytes;
    for (int k = 0; k < 4; ++k) b[rng() % 20000] = static_cast<char>(rng());
    (void)parse_gguf(span(b, b.size()), "mutant");
  }
  std::string junk(1000, 'x');
  auto r = parse_gguf(span(junk, junk.size()), "junk.gguf");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a GGUF file"), std::string::npos);
}

TEST(Gguf, ModelLoadNamesMissingTensors) {
  ModelConfig c;
  c.dim = 32, c.layers = 1, c.heads = 2, c.kv_heads = 2, c.ffn = 64, c.vocab = 260;
  auto w = random_weights(c, 1);
  w.tensors.erase("blk.0.ffn_up.weight");
  EXPECT_FALSE(write_model(temp_path("x.gguf"), w, TensorType::F32));  // the writer checks too
  GgufWriter g;
  g.set("general.architecture", std::string("mamba"));
  std::string path = temp_path("arch.gguf");
  ASSERT_TRUE(g.write(path));
  auto m = Model::load(path);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("mamba"), std::string::npos);
  std::filesystem::remove(path);
}

// Hand-built GGUF v3 images: a header, then metadata pairs and tensor infos as given.
struct GgufBytes {
  std::string b;
  template <class T>
  GgufBytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  GgufBytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  GgufBytes(uint64_t tensors, uint64_t kvs) { put<uint32_t>(0x46554747u).put<uint32_t>(3).put(tensors).put(kvs); }
  GgufBytes& kv_u32(const std::string& key, uint32_t v) { return str(key).put<uint32_t>(4).put(v); }
  GgufBytes& tensor(const std::string& name, uint32_t type) {  // one F32-sized row of 32, offset 0
    return str(name).put<uint32_t>(1).put<uint64_t>(32).put(type).put<uint64_t>(0);
  }
  Result<GgufImage> parse() const {
    return parse_gguf({reinterpret_cast<const uint8_t*>(b.data()), b.size()}, "hand.gguf");
  }
};

std::string binary_name(std::size_t n) {  // every byte value, over and over
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 256);
  return s;
}

TEST(Gguf, NamesInErrorsAreEscapedAndClipped) {
  std::string key = binary_name(65536);
  auto r = GgufBytes(0, 1).str(key).put<uint32_t>(99).parse();  // an unknown value type
  ASSERT_FALSE(r);
  const std::string& m = r.error().message;
  EXPECT_LT(m.size(), 1200u) << "65 KB of name must not reach the message";
  EXPECT_NE(m.find("hand.gguf"), std::string::npos);
  EXPECT_NE(m.find("\\x00\\x01\\x02"), std::string::npos) << m;
  EXPECT_NE(m.find("(65336 more bytes)"), std::string::npos) << m;
  for (unsigned char c : m) EXPECT_TRUE(c == 0xe2 || c == 0x80 || c == 0xa6 || (c >= 0x20 && c < 0x7f)) << int(c);

  // A tensor name as well (an unsupported ggml type), and a string the model loader quotes.
  auto t = GgufBytes(1, 0).tensor(binary_name(70000), 77).parse();
  ASSERT_FALSE(t);
  EXPECT_LT(t.error().message.size(), 1200u);
  EXPECT_NE(t.error().message.find("\\x7f\\x80"), std::string::npos) << t.error().message;
  GgufWriter g;
  g.set("general.architecture", binary_name(65536));
  std::string path = temp_path("binarch.gguf");
  ASSERT_TRUE(g.write(path));
  auto model = Model::load(path);
  ASSERT_FALSE(model);
  EXPECT_LT(model.error().message.size(), 1200u);
  EXPECT_NE(model.error().message.find("architecture '\\x00\\x01"), std::string::npos) << model.error().message;
  std::filesystem::remove(path);
}

TEST(Gguf, EmptyAndDuplicateNamesAreRejectedAsLlamaCppDoes) {
  auto good = GgufBytes(0, 2).kv_u32("a.b", 1).kv_u32("a.c", 2).parse();
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good->kv.size(), 2u);

  auto empty = GgufBytes(0, 2).kv_u32("a.b", 1).kv_u32("", 2).parse();
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("metadata key 1 is empty"), std::string::npos) << empty.error().message;

  auto dup = GgufBytes(0, 3).kv_u32("general.alignment", 32).kv_u32("x", 1).kv_u32("general.alignment", 64).parse();
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("metadata key 'general.alignment' is given twice"), std::string::npos)
      << dup.error().message;

  auto tdup = GgufBytes(2, 0).tensor("w", 0).tensor("w", 0).parse();
  ASSERT_FALSE(tdup);
  EXPECT_NE(tdup.error().message.find("tensor 'w' is given twice"), std::string::npos) << tdup.error().message;
  auto tempty = GgufBytes(1, 0).tensor("", 0).parse();
  ASSERT_FALSE(tempty);
  EXPECT_NE(tempty.error().message.find("tensor 0 has an empty name"), std::string::npos) << tempty.error().message;
}

// Found by the fuzz run: a u64 array element past INT64_MAX went through a double into int64_t
// (undefined). Integer arrays are read as integers: 64-bit values exact, too-large ones refused.
TEST(Gguf, SixtyFourBitArrayElementsAreExactOrRefused) {
  auto array = [](uint32_t type, std::vector<uint64_t> xs) {
    GgufBytes g(0, 1);
    g.str("a.ids").put<uint32_t>(9).put<uint32_t>(type).put<uint64_t>(xs.size());
    for (uint64_t x : xs) g.put(x);
    return g.parse();
  };
  auto exact = array(11, {uint64_t(INT64_MAX), uint64_t(INT64_MAX - 1)});  // i64
  ASSERT_TRUE(exact) << exact.error().message;
  auto& v = std::get<std::vector<int64_t>>(std::get<GgufArray>(exact->kv.at("a.ids")));
  EXPECT_EQ(v, (std::vector<int64_t>{INT64_MAX, INT64_MAX - 1}));
  auto too_big = array(10, {1, UINT64_MAX});  // u64
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().message.find("array 'a.ids' holds 18446744073709551615, past the largest signed 64-bit"),
            std::string::npos)
      << too_big.error().message;
}

// ---- sampling and the backend ----

TEST(Sampler, GreedyTakesTheFirstMaximumAndSeedsReproduce) {
  std::vector<float> logits = {0.1f, 2.f, 2.f, -1.f, 1.5f};
  Sampler g({});
  EXPECT_EQ(g.sample(logits, {}), 1);
  SamplingParams p;
  p.temperature = 1.f;
  p.seed = 9;
  Sampler a(p), b(p);
  std::vector<Token> xa, xb;
  for (int i = 0; i < 50; ++i) xa.push_back(a.sample(logits, {})), xb.push_back(b.sample(logits, {}));
  EXPECT_EQ(xa, xb);
  EXPECT_GT(std::set<Token>(xa.begin(), xa.end()).size(), 2u);
  p.top_k = 1;
  Sampler k1(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(k1.sample(logits, {}), 1);
  p.top_k = 0, p.min_p = 0.9f;  // only tokens near the best survive
  Sampler mp(p);
  for (int i = 0; i < 20; ++i) {
    Token t = mp.sample(logits, {});
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
  SamplingParams rp;
  rp.repeat_penalty = 10.f;
  Sampler pen(rp);
  std::vector<Token> hist = {1, 2};
  EXPECT_EQ(pen.sample(logits, hist), 4);
}

TEST(StopMatcher, HoldsBackPossibleStopPrefixes) {
  std::vector<std::string> stops = {"\n\n", "END"};
  StopMatcher m(stops);
  EXPECT_EQ(m.feed("ab"), "ab");
  EXPECT_EQ(m.feed("c\n"), "c");
  EXPECT_EQ(m.feed("x E"), "\nx ");
  EXPECT_EQ(m.feed("NDtail"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n(stops);
  EXPECT_EQ(n.feed("EN"), "");
  EXPECT_EQ(n.flush(), "EN");
}

TEST(Backend, LocalBackendGeneratesStopsAndSamples) {
  std::string path = data("models/stories260K.gguf");
  NEED_DATA(path);
  auto b = open_backend("local:" + path, {.threads = 2});
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ((*b)->id(), "local:" + path);
  GenerateOptions o;
  o.max_tokens = 40;
  std::string streamed;
  o.on_text = [&](int, std::string_view t) {
    streamed += t;
    return true;
  };
  auto r = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].text.rfind(", there was a little girl named Lily.", 0), 0u) << (*r)[0].text;
  EXPECT_EQ(streamed, (*r)[0].text);
  EXPECT_EQ((*r)[0].completion_tokens, 40);
  EXPECT_EQ((*r)[0].finish_reason, "length");
  o.on_text = nullptr;
  o.stop = {"Lily"};
  r = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].text, ", there was a little girl named ");
  EXPECT_EQ((*r)[0].finish_reason, "stop");
  o.stop.clear();
  o.temperature = 1.0f, o.n = 3, o.seed = 5, o.max_tokens = 12;
  auto s1 = (*b)->complete("Once upon a time", o);
  auto s2 = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(s1 && s2);
  ASSERT_EQ(s1->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*s1)[i].text, (*s2)[i].text);  // seeded
  EXPECT_FALSE((*s1)[0].text == (*s1)[1].text && (*s1)[1].text == (*s1)[2].text);
  EXPECT_FALSE(open_backend("ftp://x"));
  auto missing = open_backend("local:/no/such/model.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/no/such/model.gguf"), std::string::npos);
}

// Sample i of a run seeded s draws from sample_seed(s, i): sample 0 from s itself, the others
// from a mix of both, so neighbouring seeds share no sample (with seed + i, seed 1's sample 1 was
// seed 2's sample 0).
// An empty prompt is a document's start for a model whose prompts begin with BOS (OpenAI's API
// allows it); a model without BOS has nothing to go on, and says so as a bad request.
TEST(Backend, AnEmptyPromptNeedsABosToStartFrom) {
  std::string with_bos = data("models/stories260K.gguf");
  NEED_DATA(with_bos);
  GenerateOptions o;
  o.max_tokens = 5;
  auto b = open_backend("local:" + with_bos, {.threads = 2});
  ASSERT_TRUE(b) << b.error().message;
  auto r = (*b)->complete("", o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)[0].completion_tokens, 5);
  // A vocabulary without a BOS token (as Qwen's GGUFs have): no BOS is added.
  ModelConfig c;
  c.dim = 32, c.layers = 1, c.heads = 2, c.kv_heads = 1, c.ffn = 64, c.vocab = 270, c.context = 16;
  auto w = random_weights(c, 9);
  auto tokens = w.tokenizer.tokens();
  std::replace(tokens.begin(), tokens.end(), std::string("<|bos|>"), std::string("<|start|>"));
  w.tokenizer = Tokenizer::bpe(tokens, w.tokenizer.merges(), w.tokenizer.types());
  std::string path = temp_path("no-bos.gguf");
  ASSERT_TRUE(write_model(path, w, TensorType::F32));
  auto n = open_backend("local:" + path, {.threads = 2});
  ASSERT_TRUE(n) << n.error().message;
  for (auto& e : {(*n)->complete("", o), (*n)->complete_tokens({}, o)}) {
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, kInvalidRequest);
    EXPECT_EQ(e.error().message, "the prompt is empty");
  }
  EXPECT_TRUE((*n)->complete("ab", o));
  std::filesystem::remove(path);
}

TEST(Backend, SamplesOfDifferentSeedsNeverShareAStream) {
  EXPECT_EQ(sample_seed(7, 0), 7u);
  std::set<uint64_t> seeds;
  for (uint64_t s : {1, 2, 3})
    for (int i = 0; i < 4; ++i) seeds.insert(sample_seed(s, i));
  EXPECT_EQ(seeds.size(), 12u);
  for (uint64_t s : seeds) EXPECT_LT(s, uint64_t{1} << 53);  // survives JSON as a double
  EXPECT_NE(random_seed(), random_seed());

  std::string path = data("models/stories260K.gguf");
  NEED_DATA(path);
  auto b = open_backend("local:" + path, {.threads = 2});
  ASSERT_TRUE(b) << b.error().message;
  GenerateOptions o;
  o.temperature = 1.0f, o.n = 4, o.max_tokens = 30;
  std::set<std::string> texts;
  for (uint64_t seed : {1, 2}) {
    o.seed = seed;
    auto r = (*b)->complete("Once upon a time", o);
    ASSERT_TRUE(r) << r.error().message;
    for (auto& c : *r) texts.insert(c.text);
    auto again = (*b)->complete("Once upon a time", o);  // the same seed reproduces the run
    ASSERT_TRUE(again);
    for (int i = 0; i < 4; ++i) EXPECT_EQ((*again)[i].text, (*r)[i].text) << "seed " << seed << " sample " << i;
  }
  EXPECT_EQ(texts.size(), 8u);
  // One sample with seed s is sample 0 of a run with seed s.
  o.n = 1, o.seed = 2;
  auto one = (*b)->complete("Once upon a time", o);
  o.n = 4;
  auto four = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(one && four);
  EXPECT_EQ((*one)[0].text, (*four)[0].text);
}

}  // namespace
