// Hand-made tar.zst archives for the cache tests: whatever entries a hostile or broken archive
// could hold (absolute paths, "..", links out, devices), with or without a record.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "cache/archive_library.hpp"
#include "cache/content.hpp"
#include "io/memory_source.hpp"

namespace tensorinit::testing {

class ArchiveBuilder {
 public:
  ArchiveBuilder() : api_(*cache::archive_library().value()) {
    char name[] = "/tmp/tensorinit-archive-XXXXXX";
    fd_ = ::mkstemp(name);
    ::unlink(name);
    a_ = api_.write_new();
    api_.write_add_filter_zstd(a_);
    api_.write_set_format_pax_restricted(a_);
    api_.write_open_fd(a_, fd_);
    e_ = api_.entry_new();
  }
  ~ArchiveBuilder() {
    if (a_) api_.write_free(a_);
    api_.entry_free(e_);
    ::close(fd_);
  }

  ArchiveBuilder& file(const std::string& path, const std::string& data, unsigned type = AE_IFREG) {
    header(path, type, data.size());
    if (!data.empty()) api_.write_data(a_, data.data(), data.size());
    hash_.begin({.path = path, .type = cache::EntryType::file, .perm = 0644, .size = data.size()});
    hash_.data(std::as_bytes(std::span(data)));
    ++files_;
    bytes_ += data.size();
    return *this;
  }
  ArchiveBuilder& symlink(const std::string& path, const std::string& target) {
    api_.entry_clear(e_);
    api_.entry_copy_pathname(e_, path.c_str());
    api_.entry_set_filetype(e_, AE_IFLNK);
    api_.entry_set_perm(e_, 0777);
    api_.entry_copy_symlink(e_, target.c_str());
    api_.write_header(a_, e_);
    hash_.begin({.path = path, .type = cache::EntryType::symlink, .perm = 0777, .link = target});
    ++files_;
    return *this;
  }
  ArchiveBuilder& hardlink(const std::string& path, const std::string& target) {
    api_.entry_clear(e_);
    api_.entry_copy_pathname(e_, path.c_str());
    api_.entry_set_filetype(e_, AE_IFREG);
    api_.entry_copy_hardlink(e_, target.c_str());
    api_.write_header(a_, e_);
    return *this;
  }
  // The record of what was added (`lie` changes its hash), as the last entry.
  ArchiveBuilder& record(bool lie = false) {
    cache::Record r{.cache = "c", .sha256 = hash_.finish(), .files = files_, .bytes = bytes_};
    if (lie) r.sha256[0] = r.sha256[0] == '0' ? '1' : '0';
    const std::string text = cache::record_json(r);
    header(std::string(cache::kRecordName), AE_IFREG, text.size());
    api_.write_data(a_, text.data(), text.size());
    return *this;
  }
  // The archive's bytes (closes it).
  std::string bytes() {
    api_.write_close(a_);
    api_.write_free(a_);
    a_ = nullptr;
    std::string out(static_cast<size_t>(::lseek(fd_, 0, SEEK_END)), '\0');
    CHECK(::pread(fd_, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    return out;
  }

 private:
  void header(const std::string& path, unsigned type, size_t size) {
    api_.entry_clear(e_);
    api_.entry_copy_pathname(e_, path.c_str());
    api_.entry_set_filetype(e_, type);
    api_.entry_set_perm(e_, 0644);
    api_.entry_set_size(e_, static_cast<la_int64_t>(size));
    api_.write_header(a_, e_);
  }

  const cache::ArchiveApi& api_;
  int fd_ = -1;
  archive* a_ = nullptr;
  archive_entry* e_ = nullptr;
  cache::ContentHash hash_;
  uint64_t files_ = 0, bytes_ = 0;
};

}  // namespace tensorinit::testing
