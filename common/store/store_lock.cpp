#include "common/store/store_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace lpi::store {

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[512];
  ssize_t n = 0;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof buf)) > 0 && out.size() < 4096) out.append(buf, n);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

std::string who(const std::string& holder) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const auto t = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return holder + ", pid " + std::to_string(getpid()) + " on host " + host + " since " + when +
         "\n";
}

}  // namespace

StoreLock::StoreLock(const std::string& store_path, const std::string& holder)
    : path_(store_path + ".lock") {
  // Until the file we hold is the one at the path: a holder that just ended
  // removes the path it locked, and a newcomer must not lock an orphan.
  for (int attempt = 0;; ++attempt) {
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw std::runtime_error("cannot create the lock file " + path_ + " of store " + store_path +
                               ": " + std::strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const auto held_by = read_all(fd);
      close(fd);
      if (err == EWOULDBLOCK) {
        throw StoreBusy("store " + store_path + " is in use by " +
                        (held_by.empty() ? std::string("another process") : held_by) +
                        " (lock file " + path_ +
                        "): wait for it to end or stop it; two writers would mix their runs");
      }
      throw std::runtime_error("cannot lock " + path_ + " (store " + store_path + "): " +
                               std::strerror(err) + "; the file system must support flock(2)");
    }
    struct stat held {
    }, now{};
    if (fstat(fd, &held) == 0 && stat(path_.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev) {
      fd_ = fd;
      break;
    }
    close(fd);
    if (attempt > 100)
      throw std::runtime_error("cannot take the lock file " + path_ + ": it keeps changing");
  }
  const auto text = who(holder);
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, text.data(), text.size(), 0) < 0) {
    // The lock holds without its note; the note only names the holder.
  }
}

StoreLock::StoreLock(StoreLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

StoreLock::~StoreLock() {
  if (fd_ < 0) return;
  unlink(path_.c_str());
  close(fd_);
}

}  // namespace lpi::store
