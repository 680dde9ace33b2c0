// One long-lived thread that runs jobs in the order they are submitted, while the caller does
// something else: diagnose renders and writes one batch's heatmaps while the model runs on the
// next; train prepares the next batch while one trains.
//
// Why one long-lived thread rather than a std::async per job: in LibTorch 1.13 a new thread's
// first parallel operation builds its own intra-op (OpenMP) team, whose worker then spins for
// 20-30 ms; one epoch of the pneumonia-cxr recipe created 147 such threads. A Worker is started
// once per run and keeps its team (or, with one thread, has none).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

namespace medattn {

class Worker {
 public:
  // Starts the thread; `on_start` runs on it before any job (e.g. to set its LibTorch thread
  // count; REQUIRES: does not throw). max_in_flight > 0 bounds the jobs submitted and not yet
  // finished: submit() then waits for one to finish (diagnose keeps one batch in flight, so
  // that memory stays bounded by the batch); 0: no bound.
  explicit Worker(std::function<void()> on_start = {}, size_t max_in_flight = 0);
  // Finishes the jobs already submitted, then joins.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs `job` on the thread after the jobs submitted before it (first in, first out); the
  // future holds its result or the exception it threw. The thread carries on after a job
  // that threw.
  template <typename Job>
  std::future<std::invoke_result_t<std::decay_t<Job>&>> submit(Job&& job) {
    using T = std::invoke_result_t<std::decay_t<Job>&>;
    auto task = std::make_shared<std::packaged_task<T()>>(std::forward<Job>(job));
    auto result = task->get_future();
    post([task] { (*task)(); });
    return result;
  }

 private:
  void post(std::function<void()> job);
  void run(const std::function<void()>& on_start);

  const size_t max_in_flight_;
  std::mutex mutex_;
  std::condition_variable ready_;     // a job was queued, or the destructor asks to stop
  std::condition_variable finished_;  // a job finished (for the bound)
  std::deque<std::function<void()>> jobs_;
  size_t in_flight_ = 0;  // submitted and not yet finished
  bool stopping_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace medattn
