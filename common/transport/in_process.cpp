#include "common/transport/in_process.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

namespace lpi::transport {

InProcessHub::InProcessHub(int size)
    : size_(size), alive_(size), mailbox_(static_cast<std::size_t>(size)) {
  if (size < 1) throw std::invalid_argument("InProcessHub: size " + std::to_string(size));
  errors_.resize(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) endpoints_.push_back(std::make_unique<Endpoint>(*this, r));
}

InProcessHub::Endpoint& InProcessHub::endpoint(int rank) {
  return *endpoints_.at(static_cast<std::size_t>(rank));
}

std::optional<Message> InProcessHub::take(int rank, int source) {
  auto& box = mailbox_[static_cast<std::size_t>(rank)];
  for (auto it = box.begin(); it != box.end(); ++it) {
    if (source == kAnySource || it->source == source) {
      Message m = std::move(*it);
      box.erase(it);
      return m;
    }
  }
  return std::nullopt;
}

InProcessHub::Endpoint::~Endpoint() = default;

void InProcessHub::complete_if_all() {
  if (present_ == 0 || present_ < alive_) return;
  result_ = value_;
  failure_.reset();
  for (int r = 0; r < size_ && !failure_; ++r)
    if (!errors_[static_cast<std::size_t>(r)].empty())
      failure_ = RankError{r, errors_[static_cast<std::size_t>(r)]};
  for (auto& e : errors_) e.clear();
  present_ = 0;
  ++generation_;
  met_.notify_all();
}

void InProcessHub::Endpoint::leave() {
  std::lock_guard<std::mutex> lock(hub_.mutex_);
  if (left_) return;
  left_ = true;
  --hub_.alive_;
  if (rank_ != 0) {
    hub_.mailbox_[0].push_back({rank_, sweep::MessageKind::WorkerLost, {}});
    hub_.arrived_.notify_all();
  }
  hub_.complete_if_all();
}

void InProcessHub::Endpoint::send(int dest, sweep::MessageKind kind,
                                  const std::vector<uint8_t>& bytes) {
  if (dest < 0 || dest >= hub_.size_)
    throw std::out_of_range("in-process transport: rank " + std::to_string(rank_) +
                            " sends to rank " + std::to_string(dest) + " of " +
                            std::to_string(hub_.size_));
  std::lock_guard<std::mutex> lock(hub_.mutex_);
  hub_.mailbox_[static_cast<std::size_t>(dest)].push_back({rank_, kind, bytes});
  hub_.arrived_.notify_all();
}

Message InProcessHub::Endpoint::receive(int source) {
  std::unique_lock<std::mutex> lock(hub_.mutex_);
  std::optional<Message> m;
  hub_.arrived_.wait(lock, [&] { return (m = hub_.take(rank_, source)).has_value(); });
  return std::move(*m);
}

std::optional<Message> InProcessHub::Endpoint::receive_for(double seconds, int source) {
  std::unique_lock<std::mutex> lock(hub_.mutex_);
  std::optional<Message> m;
  hub_.arrived_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, seconds)),
                         [&] { return (m = hub_.take(rank_, source)).has_value(); });
  return m;
}

std::optional<Message> InProcessHub::Endpoint::poll(int source) {
  std::lock_guard<std::mutex> lock(hub_.mutex_);
  return hub_.take(rank_, source);
}

std::string InProcessHub::Endpoint::broadcast(const std::string& text) {
  std::unique_lock<std::mutex> lock(hub_.mutex_);
  if (rank_ == 0) hub_.value_ = text;
  const auto generation = hub_.generation_;
  ++hub_.present_;
  hub_.complete_if_all();
  hub_.met_.wait(lock, [&] { return hub_.generation_ != generation; });
  return hub_.result_;
}

std::optional<RankError> InProcessHub::Endpoint::agree_error(const std::string& error) {
  std::unique_lock<std::mutex> lock(hub_.mutex_);
  hub_.errors_[static_cast<std::size_t>(rank_)] = error;
  const auto generation = hub_.generation_;
  ++hub_.present_;
  hub_.complete_if_all();
  hub_.met_.wait(lock, [&] { return hub_.generation_ != generation; });
  return hub_.failure_;
}

}  // namespace lpi::transport
