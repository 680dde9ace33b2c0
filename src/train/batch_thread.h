// One long-lived thread that prepares training batches while the calling thread trains.
//
// Why not a std::async per batch: in LibTorch 1.13 a new thread's first parallel operation
// builds its own intra-op (OpenMP) team, whose worker then spins for 20-30 ms; one epoch of the
// pneumonia-cxr recipe created 147 such threads. This thread is started once per run and keeps
// its team (or, with one thread, has none).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

namespace medattn::train {

class BatchThread {
 public:
  // Starts the thread; `on_start` runs on it first (e.g. to set its LibTorch thread count).
  explicit BatchThread(std::function<void()> on_start = {});
  // Finishes the jobs already submitted, then joins.
  ~BatchThread();
  BatchThread(const BatchThread&) = delete;
  BatchThread& operator=(const BatchThread&) = delete;

  // Runs `job` on the thread after the jobs submitted before it (first in, first out); the
  // future holds its result or the exception it threw.
  template <typename T>
  std::future<T> submit(std::function<T()> job) {
    auto task = std::make_shared<std::packaged_task<T()>>(std::move(job));
    auto result = task->get_future();
    post([task] { (*task)(); });
    return result;
  }

 private:
  void post(std::function<void()> job);
  void run(const std::function<void()>& on_start);

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace medattn::train
