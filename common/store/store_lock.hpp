// One writer per store: a lock file beside it (PATH.lock, flock(2)) held by
// lpi-sweep's rank 0 for a whole run and by lpi-analyze while it links its
// results. A second writer is refused with the holder's pid, host and start
// time named. The kernel drops the lock when its holder dies (kill -9
// included), so a lock file left behind is taken over, never stale.
// flock works across the nodes of NFS (v4: byte-range locks) and of Lustre
// mounted with -o flock; on a file system without it, locking fails loudly.
#pragma once

#include <stdexcept>
#include <string>

namespace lpi::store {

struct StoreBusy : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class StoreLock {
 public:
  // Takes PATH.lock or throws StoreBusy (held elsewhere) / std::runtime_error
  // (cannot create or lock the file); `holder` says who takes it ("lpi-sweep").
  StoreLock(const std::string& store_path, const std::string& holder);
  StoreLock(StoreLock&& other) noexcept;
  StoreLock& operator=(StoreLock&&) = delete;
  StoreLock(const StoreLock&) = delete;
  ~StoreLock();  // removes the lock file, then releases the lock

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace lpi::store
