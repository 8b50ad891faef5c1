// JSON inside the files we read (a safetensors header, metadata values): parsed
// with nlohmann::json, whose exceptions become FileErrors in our words, with
// where in the text the problem is.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "lenet/data.h"
#include "lenet/error.h"

namespace lenet {

// Parses `text`, a part of `file` described by `what` ("safetensors header",
// "checkpoint metadata 'input_shape'"). Throws FileError(file, ...): "garbled
// <what>: not valid JSON at byte N (...)" or "<what> number out of range at byte
// N, in "key": 5e999 does not fit a double". `guard` (nlohmann's parser callback) may
// refuse the text's shape by throwing a FileError itself.
nlohmann::json parse_json_text(std::string_view text, const std::filesystem::path& file, const std::string& what,
                               const nlohmann::json::parser_callback_t& guard = nullptr);

// `text` cut to `max` bytes, control and non-ASCII bytes shown as '?': a piece
// of a hostile file that can go into a one-line message.
std::string printable_excerpt(std::string_view text, size_t max = 40);

// A normalisation as stored in checkpoints and ONNX metadata: {"mean": m,
// "std": s} for one value over every channel (the form of older files), or
// {"mean": [m0, m1, m2], "std": [s0, s1, s2]} per channel.
nlohmann::json normalization_json(const Normalization& norm);
// Back from that form; throws std::invalid_argument saying what is wrong (not
// numbers, lists of other lengths, a magnitude above 1e30, a std <= 0).
Normalization normalization_from_json(const nlohmann::json& j);

}  // namespace lenet
