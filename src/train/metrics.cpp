// metrics.csv: one row per epoch, numbers in their shortest round-trip form.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "lenet/fileio.h"
#include "lenet/train.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

constexpr std::array<const char*, 7> kColumns = {"epoch",    "train_loss", "train_acc",   "test_loss",
                                                 "test_acc", "seconds",    "images_per_s"};

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// Optional columns, written when some epoch has them and read when present.
bool has_lr(const std::vector<EpochMetrics>& h) {
  return std::any_of(h.begin(), h.end(), [](const EpochMetrics& m) { return m.lr > 0; });
}
bool has_val(const std::vector<EpochMetrics>& h) {
  return std::any_of(h.begin(), h.end(), [](const EpochMetrics& m) { return !std::isnan(m.val_loss); });
}

}  // namespace

void write_metrics_csv(const fs::path& path, const std::vector<EpochMetrics>& history) {
  std::string out;
  for (size_t i = 0; i < kColumns.size(); ++i) {
    if (i) out += ',';
    out += kColumns[i];
  }
  const bool lr = has_lr(history), val = has_val(history);
  if (lr) out += ",lr";
  if (val) out += ",val_loss,val_acc";
  out += "\n";
  for (const EpochMetrics& m : history) {
    out += std::to_string(m.epoch) + "," + number(m.train_loss) + "," + number(m.train_acc) + "," +
           number(m.test_loss) + "," + number(m.test_acc) + "," + number(m.seconds) + "," + number(m.images_per_s);
    if (lr) out += "," + number(m.lr);
    if (val) out += "," + number(m.val_loss) + "," + number(m.val_acc);
    out += "\n";
  }
  write_file_atomic(path, out);
}

std::vector<EpochMetrics> read_metrics_csv(const fs::path& path) {
  const std::string text = read_file(path);
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || trim(line).empty())
    throw std::runtime_error(path.string() + ": empty; expected a header line 'epoch,train_loss,...'");
  // Columns are found by name, so a file with extra columns still reads.
  const auto header = split_fields(line);
  std::array<int, kColumns.size()> where{};
  for (size_t c = 0; c < kColumns.size(); ++c) {
    where[c] = -1;
    for (size_t i = 0; i < header.size(); ++i)
      if (trim(header[i]) == kColumns[c]) where[c] = static_cast<int>(i);
    if (where[c] < 0)
      throw std::runtime_error(path.string() + ": line 1: the header lacks the column '" + kColumns[c] + "' (found '" +
                               trim(line) + "')");
  }
  auto optional_column = [&](const char* name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (trim(header[i]) == name) return static_cast<int>(i);
    return -1;
  };
  const int lr_at = optional_column("lr"), val_loss_at = optional_column("val_loss"),
            val_acc_at = optional_column("val_acc");
  std::vector<EpochMetrics> history;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const auto fields = split_fields(line);
    if (fields.size() != header.size())
      throw std::runtime_error(path.string() + ": line " + std::to_string(line_no) + ": " +
                               std::to_string(fields.size()) + " fields, expected " + std::to_string(header.size()));
    std::array<double, kColumns.size()> v{};
    for (size_t c = 0; c < kColumns.size(); ++c) {
      const std::string f = trim(fields[static_cast<size_t>(where[c])]);
      double x = 0;
      auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), x);
      if (f.empty() || ec != std::errc() || end != f.data() + f.size())
        throw std::runtime_error(path.string() + ": line " + std::to_string(line_no) + ": column '" + kColumns[c] +
                                 "' is '" + f + "', not a number");
      v[c] = x;
    }
    auto optional = [&](int at, const char* name, double absent) {
      if (at < 0) return absent;
      const std::string f = trim(fields[static_cast<size_t>(at)]);
      double x = 0;
      auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), x);
      if (f.empty() || ec != std::errc() || end != f.data() + f.size())
        throw std::runtime_error(path.string() + ": line " + std::to_string(line_no) + ": column '" + name + "' is '" +
                                 f + "', not a number");
      return x;
    };
    if (v[0] != std::floor(v[0]) || v[0] < 0 || v[0] > 1e9)
      throw std::runtime_error(path.string() + ": line " + std::to_string(line_no) + ": epoch '" +
                               trim(fields[static_cast<size_t>(where[0])]) + "' is not a whole number");
    EpochMetrics m{static_cast<int>(v[0]), v[1], v[2], v[3], v[4], v[5], v[6]};
    m.lr = optional(lr_at, "lr", 0);
    m.val_loss = optional(val_loss_at, "val_loss", NAN);
    m.val_acc = optional(val_acc_at, "val_acc", NAN);
    history.push_back(m);
  }
  return history;
}

}  // namespace lenet
