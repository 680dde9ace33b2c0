#include "train/batch_thread.h"

namespace medattn::train {

BatchThread::BatchThread(std::function<void()> on_start)
    : thread_([this, start = std::move(on_start)] { run(start); }) {}

BatchThread::~BatchThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  thread_.join();
}

void BatchThread::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void BatchThread::run(const std::function<void()>& on_start) {
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
  }
}

}  // namespace medattn::train
