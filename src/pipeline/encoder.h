// diagnose's encoding thread: renders and writes one batch's heatmaps (overlays, PNG
// compression, thumbnails, DICOM objects) while the calling thread runs the model on the next
// batch. One batch in flight at a time (a queue of one), so memory stays bounded by the batch.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace medattn::pipeline {

class BatchEncoder {
 public:
  BatchEncoder();
  ~BatchEncoder();  // waits for the batch in flight
  BatchEncoder(const BatchEncoder&) = delete;
  BatchEncoder& operator=(const BatchEncoder&) = delete;

  // Runs `work` on the encoding thread. REQUIRES: nothing in flight (wait() returned since the
  // last start()).
  void start(std::function<void()> work);
  // Waits until the work in flight (if any) is done; returns what it threw (null: nothing).
  std::exception_ptr wait();

 private:
  void loop();
  std::mutex m_;
  std::condition_variable cv_;
  std::function<void()> work_;
  bool busy_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace medattn::pipeline
