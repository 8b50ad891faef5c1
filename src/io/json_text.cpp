#include "io/json_text.h"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace lenet {

using json = nlohmann::json;

namespace {

// nlohmann reports a number beyond a double's range without its position; a
// second pass with a SAX handler that builds nothing finds where it is and under
// which key (run only after the parse failed).
class ErrorLocator : public json::json_sax_t {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t& k) override {
    last_key = k;
    return true;
  }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception&) override {
    end = position;
    last_token = token;
    return false;
  }

  std::size_t end = 0;  // bytes read when the error was found: just past the token
  std::string last_token, last_key;
};

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, column 7: " prefix.
std::string parse_error_detail(const json::parse_error& e) {
  std::string what = e.what();
  const size_t colon = what.find(": ");
  if (what.starts_with("[json.exception.") && colon != std::string::npos) what = what.substr(colon + 2);
  return printable_excerpt(what, 160);
}

}  // namespace

std::string printable_excerpt(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (text.size() > max) out += "...";
  return out;
}

json parse_json_text(std::string_view text, const std::filesystem::path& file, const std::string& what,
                     const json::parser_callback_t& guard) {
  try {
    return json::parse(text.begin(), text.end(), guard);
  } catch (const json::parse_error& e) {
    throw FileError(file, "garbled " + what + ": not valid JSON at byte " + std::to_string(e.byte ? e.byte - 1 : 0) +
                              " (" + parse_error_detail(e) + ")");
  } catch (const json::out_of_range&) {  // 406: a number too large for a double (1e999)
    ErrorLocator at;
    json::sax_parse(text.begin(), text.end(), &at);
    const size_t begin = at.end >= at.last_token.size() ? at.end - at.last_token.size() : 0;
    throw FileError(file, what + " number out of range at byte " + std::to_string(begin) +
                              (at.last_key.empty() ? "" : ", in \"" + printable_excerpt(at.last_key) + "\"") + ": " +
                              printable_excerpt(at.last_token) + " does not fit a double");
  }
}

json normalization_json(const Normalization& norm) {
  auto values = [&](const std::vector<float>& v) {
    if (v.size() == 1) return json(static_cast<double>(v[0]));
    json list = json::array();
    for (float x : v) list.push_back(static_cast<double>(x));
    return list;
  };
  return {{"mean", values(norm.mean)}, {"std", values(norm.std)}};
}

Normalization normalization_from_json(const json& j) {
  if (!j.is_object() || !j.contains("mean") || !j.contains("std"))
    throw std::invalid_argument("normalization must be {\"mean\": m, \"std\": s} (numbers, or lists per channel)");
  // As doubles first: a value beyond float's range may not be converted.
  auto values = [](const json& v, const char* what, bool positive) {  // what: "mean" or "std"
    std::vector<float> out;
    const bool list = v.is_array();
    if (list && (v.empty() || v.size() > 4))
      throw std::invalid_argument(std::string("normalization ") + what + " lists 1 to 4 values, got " +
                                  std::to_string(v.size()));
    for (const json& x : list ? v : json::array({v})) {
      const double d = x.is_number() ? x.get<double>() : NAN;
      if (!(std::fabs(d) <= 1e30) || (positive && !(d > 0)) || (positive && !(static_cast<float>(d) > 0)))
        throw std::invalid_argument(std::string("normalization needs ") +
                                    (positive ? "a positive std" : "a finite mean") +
                                    " of magnitude at most 1e30, got " + x.dump().substr(0, 40));
      out.push_back(static_cast<float>(d));
    }
    return out;
  };
  Normalization n;
  n.mean = values(j["mean"], "mean", false);
  n.std = values(j["std"], "std", true);
  if (n.mean.size() != n.std.size())
    throw std::invalid_argument("normalization has " + std::to_string(n.mean.size()) + " mean(s) but " +
                                std::to_string(n.std.size()) + " std(s)");
  return n;
}

}  // namespace lenet
