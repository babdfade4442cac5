// Taking a data dir: the folder is made (0700: it holds credentials) and an exclusive, non-blocking flock on its
// lock file says this process owns it, as long as the returned descriptor stays open.
//
// Thread-safety: a plain function; call it once at start-up.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/status.h"

namespace autopipe {

// Returns the open lock file's descriptor; `busy` (HTTP 409) when another process holds the lock.
inline Result<int> TakeDataDir(const std::filesystem::path& dir, const std::string& lock_name, const Status& busy) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create data dir " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  int fd = ::open((dir / lock_name).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("cannot open " + (dir / lock_name).string());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return busy;
  }
  return fd;
}

}  // namespace autopipe
