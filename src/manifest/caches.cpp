#include "manifest/caches.hpp"

#include <algorithm>
#include <ranges>
#include <string>

#include "util/units.hpp"
#include "manifest/words.hpp"

namespace tensorinit::manifest {
namespace {

using Entries = std::vector<std::pair<std::string, Field>>;

const Field* find(const Entries& entries, std::string_view key) {
  for (auto& [name, field] : entries)
    if (name == key) return &field;
  return nullptr;
}

// "/a/b/" -> "/a/b"; "." and ".." segments are refused by the caller.
std::string without_trailing_slash(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

bool has_dot_segment(std::string_view path) {
  for (auto part : std::views::split(path, '/')) {
    const std::string_view segment(part.begin(), part.end());
    if (segment == "." || segment == "..") return true;
  }
  return false;
}

// Whether `inner` is `outer` or lies below it.
bool within(const std::string& inner, const std::string& outer) {
  return inner == outer || (inner.starts_with(outer) && (outer == "/" || inner[outer.size()] == '/'));
}

Cache parse_cache(const Fields& f, const Field& entry) {
  if (!entry.node.IsMap())
    f.fail(entry, "expected a map, got " + describe(entry.node) + " (name, path, sources, save, max_size)");
  Entries keys = f.entries(entry, {"name", "path", "sources", "save", "max_size"});
  Cache cache;
  cache.where = f.where(entry.mark);
  constexpr std::string_view name_allowed = "[a-z0-9._-], 1 to 64 characters, not . or ..";
  const Field* name = find(keys, "name");
  if (!name) f.fail(entry, "missing required key 'name' (" + std::string(name_allowed) + ")");
  cache.name = f.text(*name, name_allowed);
  if (!valid_model_name(cache.name))
    f.fail(*name, f.quoted(*name, cache.name) + " is not a valid name (" + std::string(name_allowed) + ")");

  constexpr std::string_view path_allowed = "an absolute directory path, e.g. /root/.cache/inductor";
  const Field* path = find(keys, "path");
  if (!path) f.fail(entry, "missing required key 'path' (" + std::string(path_allowed) + ")");
  cache.path = without_trailing_slash(f.text(*path, path_allowed));
  if (cache.path.empty() || cache.path.front() != '/' || has_dot_segment(cache.path))
    f.fail(*path, f.quoted(*path, cache.path) + " is not an absolute path without . or .. (" +
                      std::string(path_allowed) + ")");
  if (cache.path == "/") f.fail(*path, "'/' cannot be a cache (" + std::string(path_allowed) + ")");

  constexpr std::string_view sources_allowed = "a list of at least one source, e.g. [{type: volume, path: /mnt/caches}]";
  const Field* sources = find(keys, "sources");
  if (!sources || sources->node.IsNull()) f.fail(sources ? *sources : entry, "no sources (" + std::string(sources_allowed) + ")");
  for (const Field& item : f.items(*sources, sources_allowed)) cache.sources.push_back(parse_source(f, item));
  if (cache.sources.empty()) f.fail(*sources, "no sources (" + std::string(sources_allowed) + ")");

  if (const Field* save = find(keys, "save"))
    cache.save = f.word<CacheSave>(*save, kCacheSaveWords);
  if (const Field* size = find(keys, "max_size")) {
    cache.max_size = f.size(*size, "the most bytes the directory may hold, e.g. 4GiB");
    if (cache.max_size == 0) f.fail(*size, "0 bytes (the most bytes the directory may hold, e.g. 4GiB)");
  }
  return cache;
}

}  // namespace

std::vector<Cache> parse_caches(const Fields& f, const Field& list) {
  std::vector<Cache> caches;
  if (list.node.IsNull()) return caches;
  std::vector<Field> items = f.items(list, "a list of caches, each a map with name, path and sources");
  for (const Field& item : items) {
    Cache cache = parse_cache(f, item);
    for (size_t i = 0; i < caches.size(); ++i) {
      if (caches[i].name == cache.name)
        f.fail(item, "cache name '" + cache.name + "' is used twice (first at " + caches[i].where + ")");
      if (within(cache.path, caches[i].path) || within(caches[i].path, cache.path))
        f.fail(item, "cache path '" + cache.path + "' overlaps '" + caches[i].path + "' of cache '" +
                         caches[i].name + "' (each cache needs a directory of its own)");
    }
    caches.push_back(std::move(cache));
  }
  return caches;
}

}  // namespace tensorinit::manifest
