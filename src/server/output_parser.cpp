#include "server/output_parser.h"

#include <nlohmann/json.hpp>

namespace onebit::server {

namespace {

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr std::string_view kToolOpen = "<tool_call>", kToolClose = "</tool_call>";

// Length of the longest suffix of s that is a proper prefix of one of the tags.
size_t partial_tag(std::string_view s, std::initializer_list<std::string_view> tags) {
    size_t best = 0;
    for (std::string_view tag : tags)
        for (size_t n = std::min(tag.size() - 1, s.size()); n > best; --n)
            if (s.substr(s.size() - n) == tag.substr(0, n)) {
                best = n;
                break;
            }
    return best;
}

bool parse_tool_call(std::string_view body, ToolCall& call) {
    const auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
    call.name = j["name"].get<std::string>();
    const auto args = j.contains("arguments") ? j["arguments"] : nlohmann::json::object();
    call.arguments = args.is_string() ? args.get<std::string>() : args.dump();
    return true;
}

std::string_view trim(std::string_view s) {
    const size_t a = s.find_first_not_of(" \t\r\n");
    if (a == std::string_view::npos) return {};
    return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

}  // namespace

ParsedDelta OutputParser::push(std::string_view text) {
    pending_ += text;
    ParsedDelta out;
    drain(out, false);
    return out;
}

ParsedDelta OutputParser::finish() {
    ParsedDelta out;
    drain(out, true);
    if (in_tool_) {  // never closed: not a tool call
        emit(out, kToolOpen);
        emit(out, pending_);
        in_tool_ = false;
    } else {
        emit(out, pending_);
    }
    pending_.clear();
    return out;
}

void OutputParser::drain(ParsedDelta& out, bool final) {
    for (;;) {
        if (in_tool_) {
            const size_t end = pending_.find(kToolClose);
            if (end == std::string::npos) return;  // held until closed
            ToolCall call;
            const std::string body(pending_, 0, end);
            if (parse_tool_call(trim(body), call)) {
                out.tool_calls.push_back(std::move(call));
            } else {
                emit(out, kToolOpen);
                emit(out, body);
                emit(out, kToolClose);
            }
            pending_.erase(0, end + kToolClose.size());
            in_tool_ = false;
            continue;
        }
        // The next tag this mode reacts to.
        std::vector<std::string_view> tags;
        if (reasoning_) {
            tags = {kThinkClose};
        } else {
            tags = {kThinkOpen};
            if (tools_) tags.push_back(kToolOpen);
        }
        size_t at = std::string::npos;
        std::string_view tag;
        for (std::string_view t : tags) {
            const size_t p = pending_.find(t);
            if (p < at) {
                at = p;
                tag = t;
            }
        }
        if (!reasoning_ && strip_space_) {
            // After </think> the model writes blank lines before the answer.
            const size_t first = pending_.find_first_not_of(" \t\r\n");
            if (first == std::string::npos) {
                pending_.clear();
                return;
            }
            strip_space_ = false;
            pending_.erase(0, first);
            if (at != std::string::npos) at -= first;
        }
        if (at == std::string::npos) {
            const size_t hold = final ? 0 : partial_tag(pending_, {kThinkOpen, kThinkClose, kToolOpen});
            emit(out, std::string_view(pending_).substr(0, pending_.size() - hold));
            pending_.erase(0, pending_.size() - hold);
            return;
        }
        emit(out, std::string_view(pending_).substr(0, at));
        pending_.erase(0, at + tag.size());
        if (tag == kThinkOpen) {
            reasoning_ = true;
        } else if (tag == kThinkClose) {
            reasoning_ = false;
            strip_space_ = true;
        } else {
            in_tool_ = true;
        }
    }
}

}  // namespace onebit::server
