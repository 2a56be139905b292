// cache/store.hpp: directory_store.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "cache/store.hpp"
#include "io/file_source.hpp"
#include "util/atomic_file.hpp"
#include "util/fd.hpp"

namespace tensorinit::cache {
namespace {

constexpr auto kStalePartial = std::chrono::hours(1);

class DirectoryUpload final : public Upload {
 public:
  DirectoryUpload(UniqueFd fd, std::string partial, std::string final_path)
      : fd_(std::move(fd)), partial_(std::move(partial)), final_(std::move(final_path)) {}
  ~DirectoryUpload() override {
    if (!committed_) ::unlink(partial_.c_str());
  }
  int fd() const override { return fd_.get(); }
  Status commit(std::stop_token stop) override {
    if (stop.stop_requested()) return fail(Code::stopped, "stopped");
    if (::fsync(fd_.get()) != 0) return fail(Code::io, fmt::format("{}: fsync: {}", partial_, std::strerror(errno)));
    if (::rename(partial_.c_str(), final_.c_str()) != 0)
      return fail(Code::io, fmt::format("{}: rename: {}", final_, std::strerror(errno)));
    committed_ = true;
    return fsync_parent_directory(final_);
  }

 private:
  UniqueFd fd_;
  std::string partial_, final_;
  bool committed_ = false;
};

class DirectoryStore final : public Store {
 public:
  DirectoryStore(std::string dir, const std::string& cache, bool writable)
      : dir_(std::move(dir)), file_(archive_file_name(cache)), path_(dir_ + "/" + file_), writable_(writable) {}

  const std::string& name() const override { return path_; }

  Result<std::shared_ptr<const io::ByteSource>> open(std::stop_token) const override {
    auto opened = io::FileSource::open(path_);
    if (!opened) return std::unexpected(opened.error());
    return std::shared_ptr<const io::ByteSource>(std::move(*opened));
  }

  Result<std::unique_ptr<Upload>> begin(std::stop_token) const override {
    if (!writable_) return fail(Code::denied, fmt::format("{}: an image source is read only", dir_));
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return fail(Code::io, fmt::format("{}: {}", dir_, ec.message()));
    remove_stale_partials();
    std::string partial = fmt::format("{}/.{}.partial-{}", dir_, file_, random_suffix());
    UniqueFd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return fail(errno == EROFS || errno == EACCES ? Code::denied : Code::io,
                         fmt::format("{}: {}", partial, std::strerror(errno)));
    return std::unique_ptr<Upload>(std::make_unique<DirectoryUpload>(std::move(fd), std::move(partial), path_));
  }

 private:
  void remove_stale_partials() const {
    const std::string prefix = "." + file_ + ".partial-";
    const auto now = std::filesystem::file_time_type::clock::now();
    std::error_code ec;
    for (const auto& child : std::filesystem::directory_iterator(dir_, ec)) {
      if (!child.path().filename().string().starts_with(prefix)) continue;
      std::error_code e2;
      auto when = std::filesystem::last_write_time(child.path(), e2);
      if (!e2 && now - when > kStalePartial) std::filesystem::remove(child.path(), e2);
    }
  }

  std::string dir_, file_, path_;
  bool writable_;
};

}  // namespace

std::string archive_file_name(const std::string& cache_name) { return cache_name + ".tar.zst"; }

std::unique_ptr<Store> directory_store(std::string dir, const std::string& cache_name, bool writable) {
  return std::make_unique<DirectoryStore>(std::move(dir), cache_name, writable);
}

}  // namespace tensorinit::cache
