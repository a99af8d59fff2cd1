#include "llm/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <fmt/core.h>

#include "common/output.h"
#include "common/text.h"

namespace wand::llm {
namespace {

enum GgufType : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64, kTypeCount
};

constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxStringBytes = 1ull << 30;

// A bounds-checked cursor over the file image: every read says what it was reading so the
// error names the field that ran past the end.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& what) : b_(bytes), what_(what) {}
  std::size_t pos() const { return pos_; }

  template <class T>
  Result<T> read(const char* field) {
    if (b_.size() - pos_ < sizeof(T)) return fail(field);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string> string(const char* field) {
    auto n = read<uint64_t>(field);
    if (!n) return n.error();
    if (*n > kMaxStringBytes || b_.size() - pos_ < *n) return fail(field);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), *n);
    pos_ += *n;
    return s;
  }
  Error fail(const char* field) const {
    return Error{fmt::format("{}: truncated or corrupt GGUF: {} runs past the end of the file (offset {})",
                             what_, field, pos_)};
  }
  Error bad(const std::string& msg) const { return Error{fmt::format("{}: corrupt GGUF: {}", what_, msg)}; }

 private:
  std::span<const uint8_t> b_;
  const std::string& what_;
  std::size_t pos_ = 0;
};

Result<double> read_scalar_number(Cursor& c, uint32_t type, const char* field) {
  switch (type) {
#define WAND_NUM(tag, T)                   \
  case tag: {                              \
    auto v = c.read<T>(field);             \
    if (!v) return v.error();              \
    return static_cast<double>(*v);        \
  }
    WAND_NUM(kU8, uint8_t) WAND_NUM(kI8, int8_t) WAND_NUM(kU16, uint16_t) WAND_NUM(kI16, int16_t)
    WAND_NUM(kU32, uint32_t) WAND_NUM(kI32, int32_t) WAND_NUM(kF32, float) WAND_NUM(kU64, uint64_t)
    WAND_NUM(kI64, int64_t) WAND_NUM(kF64, double) WAND_NUM(kBool, uint8_t)
#undef WAND_NUM
  }
  return c.bad(fmt::format("{} has unknown type {}", field, type));
}

bool is_int_type(uint32_t t) { return t != kF32 && t != kF64 && t != kString && t != kArray; }

// An integer element read as an integer: a trip through double would round 64-bit values (and
// make the cast back undefined for u64 values past INT64_MAX, which are refused instead).
Result<int64_t> read_scalar_int(Cursor& c, uint32_t type, const std::string& key) {
  if (type == kU64) {
    auto v = c.read<uint64_t>("array element");
    if (!v) return v.error();
    if (*v > static_cast<uint64_t>(INT64_MAX))
      return c.bad(fmt::format("array '{}' holds {}, past the largest signed 64-bit integer", printable(key), *v));
    return static_cast<int64_t>(*v);
  }
  if (type == kI64) {
    auto v = c.read<int64_t>("array element");
    if (!v) return v.error();
    return *v;
  }
  auto x = read_scalar_number(c, type, "array element");  // 32 bits or fewer: exact in a double
  if (!x) return x.error();
  return static_cast<int64_t>(*x);
}

Result<GgufValue> read_value(Cursor& c, uint32_t type, const std::string& key, int depth = 0) {
  const char* field = "metadata value";
  if (type == kString) {
    auto s = c.string(field);
    if (!s) return s.error();
    return GgufValue{*s};
  }
  if (type == kArray) {
    auto et = c.read<uint32_t>("array type");
    auto n = c.read<uint64_t>("array length");
    if (!et) return et.error();
    if (!n) return n.error();
    if (*et >= kTypeCount) return c.bad(fmt::format("array '{}' has unknown element type {}", printable(key), *et));
    // Each element takes at least one byte: a length beyond the file is corrupt, not a huge allocation.
    if (*n > (1ull << 32)) return c.bad(fmt::format("array '{}' claims {} elements", printable(key), *n));
    if (*et == kString) {
      std::vector<std::string> v;
      v.reserve(std::min<uint64_t>(*n, 1 << 20));
      for (uint64_t i = 0; i < *n; ++i) {
        auto s = c.string("array string");
        if (!s) return s.error();
        v.push_back(std::move(*s));
      }
      return GgufValue{GgufArray{std::move(v)}};
    }
    if (*et == kArray) {  // nested arrays: no engine key uses them; read past them
      if (depth > 2) return c.bad(fmt::format("array '{}' nests too deep", printable(key)));
      for (uint64_t i = 0; i < *n; ++i) {
        auto v = read_value(c, kArray, key, depth + 1);
        if (!v) return v.error();
      }
      return GgufValue{GgufArray{std::vector<int64_t>{}}};
    }
    if (is_int_type(*et)) {
      std::vector<int64_t> v;
      v.reserve(std::min<uint64_t>(*n, 1 << 20));
      for (uint64_t i = 0; i < *n; ++i) {
        auto x = read_scalar_int(c, *et, key);
        if (!x) return x.error();
        v.push_back(*x);
      }
      return GgufValue{GgufArray{std::move(v)}};
    }
    std::vector<double> v;
    v.reserve(std::min<uint64_t>(*n, 1 << 20));
    for (uint64_t i = 0; i < *n; ++i) {
      auto x = read_scalar_number(c, *et, "array element");
      if (!x) return x.error();
      v.push_back(*x);
    }
    return GgufValue{GgufArray{std::move(v)}};
  }
  if (type >= kTypeCount) return c.bad(fmt::format("key '{}' has unknown type {}", printable(key), type));
  if (type == kU64) {
    auto v = c.read<uint64_t>(field);
    if (!v) return v.error();
    return GgufValue{*v};
  }
  if (type == kI64) {
    auto v = c.read<int64_t>(field);
    if (!v) return v.error();
    return GgufValue{*v};
  }
  auto x = read_scalar_number(c, type, field);
  if (!x) return x.error();
  if (type == kBool) return GgufValue{*x != 0};
  if (type == kF32 || type == kF64) return GgufValue{*x};
  return GgufValue{static_cast<int64_t>(*x)};
}

bool known_type(uint32_t t) { return t == 0 || t == 1 || t == 2 || t == 8; }

}  // namespace

const char* type_name(TensorType t) {
  switch (t) {
    case TensorType::F32: return "F32";
    case TensorType::F16: return "F16";
    case TensorType::Q4_0: return "Q4_0";
    case TensorType::Q8_0: return "Q8_0";
  }
  return "?";
}

std::size_t type_block(TensorType t) { return (t == TensorType::Q4_0 || t == TensorType::Q8_0) ? 32 : 1; }

std::size_t type_bytes(TensorType t, std::size_t n) {
  switch (t) {
    case TensorType::F32: return n * 4;
    case TensorType::F16: return n * 2;
    case TensorType::Q4_0: return n / 32 * 18;
    case TensorType::Q8_0: return n / 32 * 34;
  }
  return 0;
}

uint64_t TensorView::elements() const {
  uint64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

Result<GgufImage> parse_gguf(std::span<const uint8_t> bytes, const std::string& what) {
  Cursor c(bytes, what);
  auto magic = c.read<uint32_t>("magic");
  if (!magic) return magic.error();
  if (*magic != 0x46554747u)  // "GGUF" little-endian
    return Error{fmt::format("{}: not a GGUF file (bad magic)", what)};
  GgufImage img;
  auto version = c.read<uint32_t>("version");
  if (!version) return version.error();
  if (*version != 2 && *version != 3)
    return Error{fmt::format("{}: GGUF version {} is not supported (2 and 3 are)", what, *version)};
  img.version = *version;
  auto n_tensors = c.read<uint64_t>("tensor count");
  auto n_kv = c.read<uint64_t>("metadata count");
  if (!n_tensors) return n_tensors.error();
  if (!n_kv) return n_kv.error();
  if (*n_tensors > bytes.size() || *n_kv > bytes.size())
    return c.bad(fmt::format("counts ({} tensors, {} keys) exceed the file size", *n_tensors, *n_kv));

  for (uint64_t i = 0; i < *n_kv; ++i) {
    auto key = c.string("metadata key");
    if (!key) return key.error();
    auto type = c.read<uint32_t>("metadata type");
    if (!type) return type.error();
    // As llama.cpp's loader: a key must be non-empty and given once (a second value would
    // silently replace the first here but not there).
    if (key->empty()) return c.bad(fmt::format("metadata key {} is empty", i));
    if (img.kv.count(*key)) return c.bad(fmt::format("metadata key '{}' is given twice", printable(*key)));
    auto value = read_value(c, *type, *key);
    if (!value) return value.error();
    img.kv[*key] = std::move(*value);
  }

  uint64_t alignment = 32;
  if (auto it = img.kv.find("general.alignment"); it != img.kv.end()) {
    auto* a = std::get_if<int64_t>(&it->second);
    if (!a || *a <= 0 || (*a & (*a - 1)) != 0) return c.bad("general.alignment is not a power of two");
    alignment = static_cast<uint64_t>(*a);
  }

  std::vector<uint64_t> offsets;
  std::set<std::string> names;
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    TensorView t;
    auto name = c.string("tensor name");
    if (!name) return name.error();
    t.name = std::move(*name);
    if (t.name.empty()) return c.bad(fmt::format("tensor {} has an empty name", i));
    if (!names.insert(t.name).second) return c.bad(fmt::format("tensor '{}' is given twice", printable(t.name)));
    auto nd = c.read<uint32_t>("tensor dimension count");
    if (!nd) return nd.error();
    if (*nd == 0 || *nd > kMaxDims) return c.bad(fmt::format("tensor '{}' has {} dimensions", printable(t.name), *nd));
    uint64_t elements = 1;
    for (uint32_t d = 0; d < *nd; ++d) {
      auto dim = c.read<uint64_t>("tensor dimension");
      if (!dim) return dim.error();
      if (*dim == 0 || *dim > (1ull << 40) || elements > (1ull << 40) / *dim)
        return c.bad(fmt::format("tensor '{}' has an impossible shape", printable(t.name)));
      elements *= *dim;
      t.dims.push_back(*dim);
    }
    auto type = c.read<uint32_t>("tensor type");
    if (!type) return type.error();
    if (!known_type(*type))
      return Error{fmt::format("{}: tensor '{}' has ggml type {}, which the engine does not read (F32, F16, Q4_0, Q8_0)",
                               what, printable(t.name), *type)};
    t.type = static_cast<TensorType>(*type);
    if (t.dims[0] % type_block(t.type) != 0)
      return c.bad(fmt::format("tensor '{}' row length {} is not a multiple of the {} block", printable(t.name), t.dims[0],
                               type_name(t.type)));
    t.bytes = type_bytes(t.type, elements);
    auto off = c.read<uint64_t>("tensor offset");
    if (!off) return off.error();
    if (*off % alignment != 0) return c.bad(fmt::format("tensor '{}' offset is not aligned", printable(t.name)));
    offsets.push_back(*off);
    img.tensors.push_back(std::move(t));
  }

  uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  for (std::size_t i = 0; i < img.tensors.size(); ++i) {
    auto& t = img.tensors[i];
    if (data_start > bytes.size() || offsets[i] > bytes.size() - data_start ||
        t.bytes > bytes.size() - data_start - offsets[i])
      return Error{fmt::format("{}: truncated GGUF: tensor '{}' ({} bytes at offset {}) lies past the end of the file",
                               what, printable(t.name), t.bytes, offsets[i])};
    t.data = bytes.data() + data_start + offsets[i];
  }
  return img;
}

GgufFile::~GgufFile() {
  if (map_) munmap(const_cast<uint8_t*>(map_), size_);
}

Result<std::shared_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{fmt::format("{}: cannot open model file: {}", path, std::strerror(errno))};
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{fmt::format("{}: not a regular file", path)};
  }
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->size_ = static_cast<std::size_t>(st.st_size);
  if (f->size_ == 0) {
    ::close(fd);
    return Error{fmt::format("{}: not a GGUF file (empty)", path)};
  }
  void* m = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return Error{fmt::format("{}: cannot map: {}", path, std::strerror(errno))};
  f->map_ = static_cast<const uint8_t*>(m);
  auto img = parse_gguf({f->map_, f->size_}, path);
  if (!img) return img.error();
  f->version_ = img->version;
  f->kv_ = std::move(img->kv);
  f->tensors_ = std::move(img->tensors);
  for (std::size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

void GgufFile::release(const uint8_t* p, std::size_t n) const {
  const auto at = reinterpret_cast<uintptr_t>(p), map = reinterpret_cast<uintptr_t>(map_);
  if (at < map || at + n > map + size_) return;  // not this file's bytes
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (at + page - 1) / page * page, end = (at + n) / page * page;
  if (begin < end) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

const TensorView* GgufFile::tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Error wrong_type(const std::string& path, const std::string& key, const char* want) {
  return Error{fmt::format("{}: metadata '{}' is not {}", path, key, want)};
}
}  // namespace

Result<std::string> GgufFile::get_string(const std::string& key, std::string fallback) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  if (auto* s = std::get_if<std::string>(&it->second)) return *s;
  return wrong_type(path_, key, "a string");
}

Result<int64_t> GgufFile::get_int(const std::string& key, int64_t fallback) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  if (auto* v = std::get_if<uint64_t>(&it->second); v && *v <= uint64_t(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(*v);
  return wrong_type(path_, key, "an integer");
}

Result<double> GgufFile::get_float(const std::string& key, double fallback) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  if (auto* v = std::get_if<double>(&it->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
  return wrong_type(path_, key, "a number");
}

Result<bool> GgufFile::get_bool(const std::string& key, bool fallback) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  if (auto* v = std::get_if<bool>(&it->second)) return *v;
  return wrong_type(path_, key, "a boolean");
}

const GgufArray* GgufFile::get_array(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : std::get_if<GgufArray>(&it->second);
}

// ---- writer ----

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  kv_.emplace_back(key, std::move(value));
}

VoidResult GgufWriter::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                                  std::span<const uint8_t> data) {
  uint64_t n = 1;
  for (auto d : dims) n *= d;
  if (dims.empty() || dims[0] % type_block(type) != 0)
    return Error{fmt::format("tensor '{}': row length is not a multiple of the {} block", name, type_name(type))};
  if (data.size() != type_bytes(type, n))
    return Error{fmt::format("tensor '{}': {} bytes given, {} expected", name, data.size(), type_bytes(type, n))};
  tensors_.push_back({name, type, std::move(dims), {data.begin(), data.end()}});
  return ok_status();
}

namespace {
class Out {
 public:
  template <class T>
  void put(T v) {
    auto* p = reinterpret_cast<const char*>(&v);
    buf.append(p, sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    buf += s;
  }
  void value(const GgufValue& v) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            put<uint32_t>(kString);
            str(x);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            // Scalars as llama.cpp declares them (u32 counts), so its loader reads our files.
            if (x >= 0 && x <= std::numeric_limits<uint32_t>::max()) {
              put<uint32_t>(kU32);
              put<uint32_t>(static_cast<uint32_t>(x));
            } else if (x >= std::numeric_limits<int32_t>::min() && x < 0) {
              put<uint32_t>(kI32);
              put<int32_t>(static_cast<int32_t>(x));
            } else {
              put<uint32_t>(kI64);
              put<int64_t>(x);
            }
          } else if constexpr (std::is_same_v<T, uint64_t>) {
            put<uint32_t>(kU64);
            put<uint64_t>(x);
          } else if constexpr (std::is_same_v<T, double>) {
            put<uint32_t>(kF32);
            put<float>(static_cast<float>(x));
          } else if constexpr (std::is_same_v<T, bool>) {
            put<uint32_t>(kBool);
            put<uint8_t>(x ? 1 : 0);
          } else {
            put<uint32_t>(kArray);
            std::visit(
                [&](const auto& arr) {
                  using A = std::decay_t<decltype(arr)>;
                  if constexpr (std::is_same_v<A, std::vector<std::string>>) {
                    put<uint32_t>(kString);
                    put<uint64_t>(arr.size());
                    for (auto& s : arr) str(s);
                  } else if constexpr (std::is_same_v<A, std::vector<int64_t>>) {
                    put<uint32_t>(kI32);
                    put<uint64_t>(arr.size());
                    for (auto i : arr) put<int32_t>(static_cast<int32_t>(i));
                  } else {
                    put<uint32_t>(kF32);
                    put<uint64_t>(arr.size());
                    for (auto d : arr) put<float>(static_cast<float>(d));
                  }
                },
                x);
          }
        },
        v);
  }
  void pad(std::size_t alignment) { buf.resize((buf.size() + alignment - 1) / alignment * alignment, '\0'); }
  std::string buf;
};
}  // namespace

VoidResult GgufWriter::write(const std::string& path) const {
  constexpr std::size_t kAlign = 32;
  Out o;
  o.put<uint32_t>(0x46554747u);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (auto& [k, v] : kv_) {
    o.str(k);
    o.value(v);
  }
  uint64_t offset = 0;
  for (auto& t : tensors_) {
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (auto d : t.dims) o.put<uint64_t>(d);
    o.put<uint32_t>(static_cast<uint32_t>(t.type));
    o.put<uint64_t>(offset);
    offset += (t.data.size() + kAlign - 1) / kAlign * kAlign;
  }
  o.pad(kAlign);
  // Written to a temporary name and renamed, so a failed export never leaves half a model.
  auto target = rename_target(path);
  if (!target) return target.error();
  std::string tmp = *target + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  if (!f) return Error{fmt::format("{}: cannot write: {}", path, std::strerror(errno))};
  f.write(o.buf.data(), static_cast<std::streamsize>(o.buf.size()));
  static const char zeros[kAlign] = {};
  for (auto& t : tensors_) {
    f.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    f.write(zeros, static_cast<std::streamsize>((kAlign - t.data.size() % kAlign) % kAlign));
  }
  f.close();
  if (!f || std::rename(tmp.c_str(), target->c_str()) != 0) {
    std::remove(tmp.c_str());
    return Error{fmt::format("{}: write failed: {}", path, std::strerror(errno))};
  }
  return ok_status();
}

}  // namespace wand::llm
