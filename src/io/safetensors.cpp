// The safetensors container: an 8-byte little-endian header length, a JSON
// header, then the tensors' raw bytes. Reading checks every size and offset
// before it allocates, so a hostile file costs no more memory than it holds.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "io/json_text.h"
#include "io/memory_guard.h"
#include "lenet/checkpoint.h"
#include "lenet/error.h"

namespace lenet {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The reference implementation refuses headers above 100 MB, for models of tens
// of thousands of tensors. Ours are kilobytes (a few tensors, the metadata, a
// run's history); 16 MiB leaves room for 100,000 class names and bounds what a
// hostile header can cost once parsed.
constexpr uint64_t kMaxHeader = uint64_t{16} << 20;

void put_le64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void append_floats_le(std::string& out, std::span<const float> values) {
  const size_t start = out.size();
  out.resize(start + values.size() * 4);
  char* dst = out.data() + start;
  if constexpr (std::endian::native == std::endian::little) {
    if (!values.empty()) std::memcpy(dst, values.data(), values.size() * 4);
  } else {
    for (size_t i = 0; i < values.size(); ++i) {
      const uint32_t bits = std::bit_cast<uint32_t>(values[i]);
      for (int b = 0; b < 4; ++b) dst[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
    }
  }
}

void floats_from_le(const char* src, size_t n, float* out) {
  if constexpr (std::endian::native == std::endian::little) {
    if (n) std::memcpy(out, src, n * 4);
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits = 0;
      for (int b = 3; b >= 0; --b) bits = (bits << 8) | static_cast<unsigned char>(src[4 * i + b]);
      out[i] = std::bit_cast<float>(bits);
    }
  }
}

struct Entry {
  std::string name;
  Shape shape;
  uint64_t begin = 0, end = 0;
  bool int64 = false;  // I64 (PyTorch's num_batches_tracked), read as float
};

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<Entry> entries;  // sorted by offset
};

[[noreturn]] void bad(const std::string& name, const std::string& what) { throw FileError(name, what); }

// Parses and checks the JSON header against the size of the data that follows it.
Header parse_header(std::string_view text, uint64_t data_size, const std::string& name) {
  // The header's shape is fixed: {"name": {"dtype": s, "shape": [n, ...], "data_offsets": [b, e]}, ...,
  // "__metadata__": {"key": s, ...}}. Refuse deeper nesting and longer lists while
  // parsing, so that "[[[[..." or a list of millions of numbers is refused before
  // it is built (a JSON value costs far more memory than its text).
  constexpr int kMaxListLength = 8;
  int list_length = 0;
  auto shape_guard = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth > 2)
      bad(name, "garbled safetensors header: nested deeper than a safetensors header");
    if (event == json::parse_event_t::array_start) list_length = 0;
    if (event == json::parse_event_t::value && depth == 3 && ++list_length > kMaxListLength)
      bad(name, "garbled safetensors header: a list longer than " + std::to_string(kMaxListLength) + " entries");
    return true;
  };
  const json j = parse_json_text(text, name, "safetensors header", shape_guard);
  if (!j.is_object())
    bad(name, "garbled safetensors header: expected a JSON object, found " + std::string(j.type_name()));
  Header h;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) bad(name, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(name, "__metadata__ value of '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!v.is_object()) bad(name, where + " is not described by an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) bad(name, where + " has no dtype");
    const std::string dtype = v["dtype"].get<std::string>();
    if (dtype != "F32" && dtype != "I64")
      bad(name, where + " has dtype " + dtype + "; only F32 (and I64 for counters) is supported");
    if (!v.contains("shape") || !v["shape"].is_array()) bad(name, where + " has no shape list");
    if (v["shape"].size() > 8)
      bad(name, where + " has " + std::to_string(v["shape"].size()) + " dimensions; at most 8 are supported");
    Entry e;
    e.name = key;
    e.int64 = dtype == "I64";
    const uint64_t elem = e.int64 ? 8 : 4;
    uint64_t count = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad(name, where + " has a shape entry " + d.dump() + " that is not a size >= 0");
      const uint64_t n = d.get<uint64_t>();
      // Any tensor larger than the file's data is a lie; stop before the product overflows.
      if (n > data_size / 4 + 1 || (n && count > (data_size / 4 + 1) / n))
        bad(name, where + " claims shape " + v["shape"].dump() + ", more data than the file's " +
                      std::to_string(data_size) + " bytes");
      count *= n;
      e.shape.push_back(static_cast<int64_t>(n));
    }
    const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad(name, where + " needs data_offsets [begin, end] of two sizes");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      bad(name, where + " has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] outside the file's " + std::to_string(data_size) + " data bytes (truncated file?)");
    if (e.end - e.begin != count * elem)
      bad(name, where + " has shape " + v["shape"].dump() + " (" + std::to_string(count * elem) +
                    " bytes) but data_offsets span " + std::to_string(e.end - e.begin) + " bytes");
    h.entries.push_back(std::move(e));
  }
  std::sort(h.entries.begin(), h.entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t at = 0;
  for (const Entry& e : h.entries) {
    if (e.begin != at)
      bad(name, "tensor '" + e.name + "' starts at byte " + std::to_string(e.begin) +
                    " but the previous tensor ends at " + std::to_string(at) +
                    " (offsets must tile the data without gaps or overlaps)");
    at = e.end;
  }
  if (at != data_size)
    bad(name, "the tensors cover " + std::to_string(at) + " data bytes but the file holds " +
                  std::to_string(data_size) + (at < data_size ? " (trailing bytes)" : " (truncated file)"));
  return h;
}

SafetensorsFile fill(const Header& h, const char* data) {
  SafetensorsFile f;
  f.metadata = h.metadata;
  f.tensors.reserve(h.entries.size());
  for (const Entry& e : h.entries) {
    Tensor t(e.shape);
    if (e.int64)
      for (uint64_t i = 0; i < (e.end - e.begin) / 8; ++i)
        t.data()[i] = static_cast<float>(static_cast<int64_t>(get_le64(data + e.begin + 8 * i)));
    else
      floats_from_le(data + e.begin, static_cast<size_t>((e.end - e.begin) / 4), t.data());
    f.tensors.emplace_back(e.name, std::move(t));
  }
  return f;
}

// Header length from the first 8 bytes, checked against the file size.
uint64_t header_length(const char* first8, uint64_t file_size, const std::string& name) {
  const uint64_t n = get_le64(first8);
  if (n > kMaxHeader)
    bad(name, "safetensors header length " + std::to_string(n) + " is absurd (at most " + std::to_string(kMaxHeader) +
                  " bytes); not a safetensors file or corrupt");
  if (n > file_size - 8)
    bad(name, "truncated: the header claims " + std::to_string(n) + " bytes but only " + std::to_string(file_size - 8) +
                  " follow the length field");
  if (n < 2) bad(name, "garbled safetensors header: length " + std::to_string(n) + " is too short for a JSON object");
  return n;
}

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string encode_safetensors(const std::vector<NamedTensor>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    if (t.name == "__metadata__" || t.name.empty())
      throw std::invalid_argument("safetensors: invalid tensor name '" + t.name + "'");
    if (header.contains(t.name)) throw std::invalid_argument("safetensors: duplicate tensor name '" + t.name + "'");
    const int64_t n = numel(t.shape);
    if (static_cast<size_t>(n) != t.values.size())
      throw std::invalid_argument("safetensors: tensor '" + t.name + "' has shape " + to_string(t.shape) + " but " +
                                  std::to_string(t.values.size()) + " values");
    const uint64_t elem = t.int64 ? 8 : 4;
    header[t.name] = {{"dtype", t.int64 ? "I64" : "F32"},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + elem * static_cast<uint64_t>(n)}}};
    offset += elem * static_cast<uint64_t>(n);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  put_le64(out, text.size());
  out += text;
  for (const NamedTensor& t : tensors) {
    if (!t.int64) {
      append_floats_le(out, t.values);
      continue;
    }
    for (float v : t.values) put_le64(out, static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
  return out;
}

namespace {

SafetensorsFile decode(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 8)
    bad(name, "truncated: " + std::to_string(bytes.size()) +
                  " bytes, too short for a safetensors file (8-byte header length first)");
  const uint64_t n = header_length(bytes.data(), bytes.size(), name);
  const Header h = parse_header(bytes.substr(8, n), bytes.size() - 8 - n, name);
  return fill(h, bytes.data() + 8 + n);
}

SafetensorsFile read(const fs::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!fs::exists(path, ec)) bad(name, "file not found");
  if (!fs::is_regular_file(path, ec)) bad(name, "not a regular file");
  const uint64_t size = fs::file_size(path, ec);
  if (ec) bad(name, "cannot read its size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) bad(name, std::string("cannot open: ") + std::strerror(errno));
  if (size < 8)
    bad(name,
        "truncated: " + std::to_string(size) + " bytes, too short for a safetensors file (8-byte header length first)");
  char first8[8];
  in.read(first8, 8);
  const uint64_t n = header_length(first8, size, name);
  // Header first: only once it checks out do we allocate room for the data.
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  if (!in) bad(name, "read error in the header");
  const uint64_t data_size = size - 8 - n;
  const Header h = parse_header(header, data_size, name);
  std::string data(data_size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  if (static_cast<uint64_t>(in.gcount()) != data_size) bad(name, "truncated while reading the tensor data");
  return fill(h, data.data());
}

}  // namespace

SafetensorsFile decode_safetensors(std::string_view bytes, const std::string& name) {
  return reading_within_memory(name, [&] { return decode(bytes, name); });
}

SafetensorsFile read_safetensors(const fs::path& path) {
  return reading_within_memory(path, [&] { return read(path); });
}

}  // namespace lenet
