#include "pipeline/encoder.h"

#include <utility>

namespace medattn::pipeline {

BatchEncoder::BatchEncoder() : thread_([this] { loop(); }) {}

BatchEncoder::~BatchEncoder() {
  wait();
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchEncoder::start(std::function<void()> work) {
  std::lock_guard<std::mutex> lk(m_);
  work_ = std::move(work);
  error_ = nullptr;
  busy_ = true;
  cv_.notify_all();
}

std::exception_ptr BatchEncoder::wait() {
  std::unique_lock<std::mutex> lk(m_);
  cv_.wait(lk, [&] { return !busy_; });
  return std::exchange(error_, nullptr);
}

void BatchEncoder::loop() {
  std::unique_lock<std::mutex> lk(m_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || (busy_ && work_); });
    if (stop_) return;
    auto work = std::move(work_);
    work_ = nullptr;
    lk.unlock();
    std::exception_ptr error;
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    lk.lock();
    error_ = error;
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace medattn::pipeline
