// Base64 (RFC 4648, with padding) for bytes that travel inside JSON.
#pragma once
#include <string>
#include <string_view>

namespace wand {
std::string base64_encode(std::string_view bytes);
// Ignores characters outside the alphabet (whitespace, line breaks).
std::string base64_decode(std::string_view text);
}  // namespace wand
