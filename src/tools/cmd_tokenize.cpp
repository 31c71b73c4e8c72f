// `onebit tokenize`, `onebit detokenize`, `onebit export-tokenizer`: the tokenizer from the command
// line. stdout carries only the result (ids on one line, or the text), so scripts can compare it.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/mmap.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"

namespace onebit::tools {

namespace {

struct Source {
    std::string model_dir, tokenizer_file;
};

void add_source(CLI::App* cmd, Source& s) {
    auto* m = cmd->add_option("--model", s.model_dir, "Model directory (reads tokenizer.json)");
    auto* t = cmd->add_option("--tokenizer", s.tokenizer_file,
                              "tokenizer.json, or a llama2.c tokenizer .bin");
    m->excludes(t);
}

std::string tokenizer_path(const Source& s) {
    if (!s.tokenizer_file.empty()) return s.tokenizer_file;
    if (!s.model_dir.empty()) return s.model_dir + "/tokenizer.json";
    fail("tokenize", "--model DIR or --tokenizer FILE is required");
}

void print_ids(const std::vector<int32_t>& ids) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
}

}  // namespace

std::vector<int32_t> parse_ids(const std::string& text, const char* component) {
    std::istringstream in(text);
    std::vector<int32_t> v;
    std::string word;
    while (in >> word) {
        size_t used = 0;
        long long id = -1;
        try {
            id = std::stoll(word, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != word.size() || id < 0 || id > INT32_MAX)
            fail(component, "'", word, "' is not a token id");
        v.push_back(static_cast<int32_t>(id));
    }
    return v;
}

void add_tokenize_commands(CLI::App& app, Runner& run) {
    struct Opts {
        Source src;
        std::string text, file, ids, batch;
        bool text_set = false, split_special = false;
        std::string out;
    };
    auto o = std::make_shared<Opts>();

    auto* enc = app.add_subcommand("tokenize", "Print the ids of a text, space-separated");
    add_source(enc, o->src);
    auto* text = enc->add_option("--text", o->text, "The text");
    auto* efile = enc->add_option("--file", o->file, "Read the text from a file")->excludes(text);
    enc->add_option("--batch", o->batch,
                    "JSON Lines file of strings: prints one line of ids per string")
        ->excludes(text)
        ->excludes(efile);
    enc->add_flag("--split-special", o->split_special,
                  "Treat special tokens written in the text as plain text");
    enc->callback([o, &run, text] {
        o->text_set = text->count() > 0;
        run = [o] {
            if (!o->text_set && o->file.empty() && o->batch.empty())
                fail("tokenize", "--text, --file or --batch is required");
            const tok::Tokenizer t = tok::Tokenizer::from_file(tokenizer_path(o->src));
            if (!o->batch.empty()) {
                std::istringstream in(read_file(o->batch, "tokenize"));
                std::string line;
                for (size_t n = 1; std::getline(in, line); ++n) {
                    nlohmann::json j;
                    try {
                        j = nlohmann::json::parse(line);
                    } catch (const std::exception&) {
                    }
                    if (!j.is_string()) fail("tokenize", o->batch, ":", n, ": not a JSON string");
                    print_ids(t.encode(j.get<std::string>(), o->split_special));
                }
                return;
            }
            const std::string input = o->text_set ? o->text : read_file(o->file, "tokenize");
            print_ids(t.encode(input, o->split_special));
        };
    });

    auto* dec = app.add_subcommand("detokenize", "Print the text of space-separated ids");
    add_source(dec, o->src);
    auto* ids = dec->add_option("--ids", o->ids, "Ids, e.g. \"1 2 3\"");
    auto* dfile = dec->add_option("--file", o->file, "Read the ids from a file")->excludes(ids);
    dec->add_option("--batch", o->batch,
                    "File with one line of ids per text: prints each text as a JSON string")
        ->excludes(ids)
        ->excludes(dfile);
    dec->callback([o, &run] {
        run = [o] {
            if (o->ids.empty() && o->file.empty() && o->batch.empty())
                fail("detokenize", "--ids, --file or --batch is required");
            const tok::Tokenizer t = tok::Tokenizer::from_file(tokenizer_path(o->src));
            if (!o->batch.empty()) {
                std::istringstream in(read_file(o->batch, "detokenize"));
                std::string line;
                while (std::getline(in, line))
                    std::printf("%s\n", nlohmann::json(t.decode(parse_ids(line, "detokenize"))).dump().c_str());
                return;
            }
            const std::string s =
                t.decode(parse_ids(o->ids.empty() ? read_file(o->file, "detokenize") : o->ids, "detokenize"));
            std::fwrite(s.data(), 1, s.size(), stdout);
        };
    });

    auto* exp = app.add_subcommand("export-tokenizer",
                                   "Write a tokenizer as tokenizer.json (llama2.c .bin converted)");
    add_source(exp, o->src);
    exp->add_option("-o,--output", o->out, "Output file")->required();
    exp->callback([o, &run] {
        run = [o] {
            const std::string path = tokenizer_path(o->src);
            std::string bytes = read_file(path, "export-tokenizer");
            if (tok::is_llama2c_tokenizer(bytes)) bytes = tok::llama2c_tokenizer_to_json(bytes, path);
            tok::Tokenizer::from_json(bytes, path);  // validates
            std::ofstream f(o->out, std::ios::binary);
            if (!(f << bytes)) fail("export-tokenizer", "cannot write '", o->out, "'");
        };
    });
}

}  // namespace onebit::tools
