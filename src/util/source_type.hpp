// The source types of model.sources and caches[].sources: the one table of what each type is, as
// util/target.hpp is for targets and util/weight_format.hpp for formats. A leaf, so that the
// manifest (which parses a row's word and keys), io (which opens a remote row's objects,
// io/remote_endpoint.cpp), plan and app read one list; manifest::SourceType is this type.
// Everything else asks the row (is_remote, cache_writable) and names no type, except where the
// logic is about that one type (the cache candidate is a volume; `plan --advise` weighs image
// against volume).
// Adding a source type: its value and row here; a remote one also its endpoint in
// io/remote_endpoint.cpp (and its io client, where the existing ones cannot reach it).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>

namespace tensorinit {

enum class SourceType : uint8_t { image, volume, s3, http };

struct SourceTypeInfo {
  SourceType type;
  std::string_view word;  // the manifest's word (type: WORD), also the reports' and TENSORINIT_SOURCE
  // Local: `path` names a file or directory, indexed through format/model_files and read through
  // io/file_source; printed as the path. Remote: `url` names a prefix whose objects are opened
  // through the type's endpoint (io/remote_endpoint.cpp) with pinned versions, written through to
  // model.cache when set, and probed only when no earlier candidate is usable (policy ordered);
  // printed as the url redacted (util/url.hpp).
  bool remote = false;
  // Start-up caches: whether an archive may be saved there (image: the image's read-only layer;
  // http: no upload). Restoring reads every type.
  bool cache_writable = false;
  // Remote only. The keys an entry takes besides type, as error messages list them; a local entry
  // takes only path.
  std::string_view keys;
  std::string_view url_form;     // in "missing required key 'url' (type WORD needs URL_FORM)"
  std::string_view url_allowed;  // in "'URL' is not an WORD URL (URL_ALLOWED)"
  std::array<std::string_view, 2> url_schemes{};  // a url starts with one of these and names a host
  bool url_host_is_bucket = false;     // the host is an S3 bucket name ([A-Za-z0-9._-], 1-255)
  bool url_credentials_allowed = true;  // user:password@ in the url (s3: they go in their own keys)
};

// Every source type, in the enum's order (checked below), which is the order messages list them.
inline constexpr std::array<SourceTypeInfo, 4> kSourceTypes{{
    {.type = SourceType::image, .word = "image"},
    {.type = SourceType::volume, .word = "volume", .cache_writable = true},
    {.type = SourceType::s3, .word = "s3", .remote = true, .cache_writable = true,
     .keys = "url, endpoint, region, path_style, access_key_id, secret_access_key, session_token, files, ca_file, "
             "connections, retries, stall_timeout",
     .url_form = "s3://bucket/prefix/", .url_allowed = "s3://bucket/prefix/", .url_schemes = {"s3://"},
     .url_host_is_bucket = true, .url_credentials_allowed = false},
    {.type = SourceType::http, .word = "http", .remote = true,
     .keys = "url, files, ca_file, connections, retries, stall_timeout", .url_form = "http(s)://host/prefix/",
     .url_allowed = "http://host/prefix/ or https://host/prefix/", .url_schemes = {"http://", "https://"}},
}};

constexpr bool source_types_in_enum_order() {
  for (size_t i = 0; i < kSourceTypes.size(); ++i)
    if (static_cast<size_t>(kSourceTypes[i].type) != i) return false;
  return true;
}
// A value added to the enum without its row is caught by tests/unit/util/source_type_test.cpp.
static_assert(source_types_in_enum_order(), "kSourceTypes: one row per SourceType, in the enum's order");

// The row of a type. Thread-safe.
constexpr const SourceTypeInfo& source_type_info(SourceType type) {
  return kSourceTypes[static_cast<size_t>(type)];
}
constexpr bool is_remote(SourceType type) { return source_type_info(type).remote; }

// The word of a type, NUL-terminated. Thread-safe.
constexpr const char* to_string(SourceType type) { return source_type_info(type).word.data(); }

// The manifest's words (manifest/fields.hpp Fields::word), from the rows.
inline constexpr auto kSourceTypeWords = [] {
  std::array<std::pair<std::string_view, SourceType>, kSourceTypes.size()> words{};
  for (size_t i = 0; i < kSourceTypes.size(); ++i) words[i] = {kSourceTypes[i].word, kSourceTypes[i].type};
  return words;
}();

}  // namespace tensorinit
