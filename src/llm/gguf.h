// GGUF (v2/v3): the file format of the embedded engine. GgufFile maps a file read-only and
// validates every offset, size and type before anything points into it, so a truncated or
// corrupt file is an Error naming the file and the field, never a crash. GgufWriter writes
// the same format (the trainer exports with it; tests build random-weight models with it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace wand::llm {

// ggml tensor types the engine reads (numbers as in ggml.h).
enum class TensorType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8 };
const char* type_name(TensorType t);
// Bytes for n elements of type t (n a multiple of the block size for quantized types).
std::size_t type_bytes(TensorType t, std::size_t n);
std::size_t type_block(TensorType t);

// A metadata value. Arrays hold one element type; strings and numbers are what the engine needs.
using GgufArray = std::variant<std::vector<std::string>, std::vector<int64_t>, std::vector<double>>;
using GgufValue = std::variant<std::string, int64_t, uint64_t, double, bool, GgufArray>;

struct TensorView {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // dims[0] varies fastest (the row length of a matrix)
  const uint8_t* data = nullptr;
  std::size_t bytes = 0;
  uint64_t elements() const;
};

class GgufFile {
 public:
  static Result<std::shared_ptr<GgufFile>> open(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* tensor(const std::string& name) const;
  // Drops the whole pages of [p, p + n) (bytes of this file's mapping) from memory: a read-only
  // file mapping reads them back from the file if touched again, so nothing changes but the
  // resident size. For tensors the engine holds in another form (repacked at load).
  void release(const uint8_t* p, std::size_t n) const;

  // Typed metadata lookups; a missing key gives `fallback`, a key of the wrong type an Error.
  Result<std::string> get_string(const std::string& key, std::string fallback = "") const;
  Result<int64_t> get_int(const std::string& key, int64_t fallback) const;
  Result<double> get_float(const std::string& key, double fallback) const;
  Result<bool> get_bool(const std::string& key, bool fallback) const;
  const GgufArray* get_array(const std::string& key) const;

 private:
  GgufFile() = default;
  std::string path_;
  uint32_t version_ = 0;
  const uint8_t* map_ = nullptr;
  std::size_t size_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::size_t> index_;
  friend class GgufParser;
};

// Parses a GGUF image already in memory (the fuzz target uses this; open() maps and calls it).
// The returned views point into `bytes`, which must outlive them.
struct GgufImage {
  uint32_t version = 0;
  std::map<std::string, GgufValue> kv;
  std::vector<TensorView> tensors;
};
Result<GgufImage> parse_gguf(std::span<const uint8_t> bytes, const std::string& what);

class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  // Data is copied; its size must match dims and type.
  VoidResult add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                        std::span<const uint8_t> data);
  VoidResult write(const std::string& path) const;

 private:
  struct Pending {
    std::string name;
    TensorType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace wand::llm
