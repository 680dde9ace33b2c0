#include "core/worker.h"

namespace medattn {

Worker::Worker(std::function<void()> on_start, size_t max_in_flight)
    : max_in_flight_(max_in_flight), thread_([this, start = std::move(on_start)] { run(start); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  thread_.join();
}

void Worker::post(std::function<void()> job) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (max_in_flight_ > 0) finished_.wait(lock, [this] { return in_flight_ < max_in_flight_; });
    jobs_.push_back(std::move(job));
    ++in_flight_;
  }
  ready_.notify_one();
}

void Worker::run(const std::function<void()>& on_start) {
  if (on_start) on_start();
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();  // a packaged_task: exceptions land in its future
    job = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --in_flight_;
    }
    finished_.notify_all();
  }
}

}  // namespace medattn
