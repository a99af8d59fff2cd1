// Base64 (RFC 4648, with padding) for bytes that travel inside JSON.
#pragma once
#include <string>
#include <string_view>

namespace wand {
std::string base64_encode(std::string_view bytes);
// Ignores characters outside the alphabet (whitespace, line breaks).
std::string base64_decode(std::string_view text);
// Whether `text` is base64: the alphabet in whole groups of four, '=' padding only at the end,
// whitespace aside. Anything else decodes to garbage, so inputs are checked with this first.
bool is_base64(std::string_view text);
}  // namespace wand
