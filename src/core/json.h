// Parsing a JSON document with the project's error shape.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace onebit {

// The document in text; "[component] <source>: not valid JSON: <parser message>" otherwise.
template <typename Json = nlohmann::json>
Json parse_json(std::string_view text, const char* component, const std::string& source) {
    try {
        return Json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        fail(component, source, ": not valid JSON: ", e.what());
    }
}

}  // namespace onebit
