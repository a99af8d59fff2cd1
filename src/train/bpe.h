// Trains a small byte-level BPE vocabulary on sample text, in the format the engine's
// tokenizer reads (GPT-2 byte symbols, merges by rank, starcoder-style split so every digit is
// its own piece: numbers stay copyable digit by digit).
#pragma once
#include <string>
#include <vector>

#include "llm/tokenizer.h"

namespace wand::train {

// vocab_size counts the 256 byte symbols and the control tokens <|bos|>, <|eos|>, <|pad|>.
llm::Tokenizer train_bpe(const std::vector<std::string>& texts, int vocab_size);

}  // namespace wand::train
