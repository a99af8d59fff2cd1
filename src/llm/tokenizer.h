// Tokenizers read from GGUF metadata (tokenizer.ggml.*), reproducing llama.cpp's:
//  - "gpt2": byte-level BPE with merges and a pre-tokenizer chosen by tokenizer.ggml.pre
//    (gpt-2, starcoder, deepseek-coder; others fall back to gpt-2's split);
//  - "llama": SentencePiece-style merges by score, with byte fallback tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "llm/gguf.h"

namespace wand::llm {

using Token = int32_t;

class Tokenizer {
 public:
  enum class Kind { bpe, spm };
  // Token types as stored in tokenizer.ggml.token_type.
  enum TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

  static Result<Tokenizer> from_gguf(const GgufFile& f);
  // Builds a byte-level BPE tokenizer from a vocabulary and merges (the trainer's own).
  static Tokenizer bpe(std::vector<std::string> tokens, std::vector<std::string> merges,
                       std::vector<int32_t> types, std::string pre = "gpt-2");

  // parse_special: text spelling a control/user-defined token (e.g. "<|im_start|>") becomes that token.
  std::vector<Token> encode(const std::string& text, bool add_bos = false, bool parse_special = false) const;
  // The pieces the pre-tokenizer cuts text into (merges never cross them); BPE only.
  std::vector<std::string> split(const std::string& text) const;
  // The bytes of one token (control tokens give "" unless `special`).
  std::string piece(Token t, bool special = false) const;
  std::string decode(const std::vector<Token>& tokens, bool special = false) const;

  Kind kind() const { return kind_; }
  std::size_t size() const { return tokens_.size(); }
  Token bos() const { return bos_; }
  Token eos() const { return eos_; }
  bool is_eog(Token t) const;
  Token find(const std::string& text) const;  // -1 when absent
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<std::string>& merges() const { return merges_; }
  const std::vector<int32_t>& types() const { return types_; }
  const std::string& pre() const { return pre_; }
  bool add_bos_default() const { return add_bos_; }

 private:
  void index();
  void encode_fragment(const std::string& text, bool first, std::vector<Token>& out) const;
  void encode_bpe(const std::string& text, std::vector<Token>& out) const;
  void encode_spm(const std::string& text, std::vector<Token>& out) const;

  Kind kind_ = Kind::bpe;
  std::string pre_;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  std::vector<std::string> merges_;
  std::unordered_map<std::string, Token> ids_;
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank
  std::vector<Token> specials_;                       // longest first
  std::vector<Token> eog_;
  Token bos_ = -1, eos_ = -1, byte_tokens_[256] = {};
  bool add_bos_ = false, add_space_prefix_ = true;
};

// Byte-level BPE's reversible byte <-> printable code point mapping (GPT-2's bytes_to_unicode),
// as UTF-8 strings.
const std::string& byte_to_unicode(uint8_t b);

}  // namespace wand::llm
