// The worker thread (core/worker.h) that diagnose renders heatmaps on and train prepares
// batches on: one long-lived thread, jobs in order, exceptions delivered through the future.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/worker.h"

using medattn::Worker;

TEST_CASE("the worker runs every job on one thread of its own, in the order submitted, after its start hook", "[core][worker]") {
  std::thread::id started;
  std::vector<int> order;
  std::vector<std::thread::id> ran_on;
  {
    Worker worker([&] { started = std::this_thread::get_id(); });
    std::vector<std::future<int>> results;
    for (int i = 0; i < 20; ++i) {
      results.push_back(worker.submit([&, i] {
        order.push_back(i);  // one thread: no race
        ran_on.push_back(std::this_thread::get_id());
        return i * i;
      }));
    }
    for (int i = 0; i < 20; ++i) CHECK(results[i].get() == i * i);
  }
  REQUIRE(ran_on.size() == 20);
  for (const auto& id : ran_on) CHECK(id == started);
  CHECK(started != std::this_thread::get_id());
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) expected[i] = i;
  CHECK(order == expected);
}

TEST_CASE("a job's exception reaches its future and the worker carries on", "[core][worker]") {
  Worker worker;
  auto failing = worker.submit([]() -> int { throw std::runtime_error("no batch"); });
  auto next = worker.submit([] { return 7; });
  CHECK_THROWS_WITH(failing.get(), "no batch");
  CHECK(next.get() == 7);
  // A job without a result (diagnose's rendering): the future says when it is done, or what it threw.
  std::atomic<int> runs{0};
  auto done = worker.submit([&] { ++runs; });
  done.get();
  CHECK(runs == 1);
  auto disk_full = worker.submit([] { throw std::runtime_error("disk full"); });
  CHECK_THROWS_WITH(disk_full.get(), "disk full");
  worker.submit([&] { ++runs; }).get();  // still usable after a failure
  CHECK(runs == 2);
}

TEST_CASE("the destructor finishes the jobs already submitted before it joins", "[core][worker]") {
  std::atomic<int> runs{0};
  {
    Worker worker;
    for (int i = 0; i < 5; ++i) {
      worker.submit([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ++runs;
      });  // futures dropped: nobody waits for them
    }
  }
  CHECK(runs == 5);
}

TEST_CASE("with a bound on jobs in flight, submit waits until one finishes", "[core][worker]") {
  Worker worker({}, /*max_in_flight=*/1);
  std::atomic<bool> release{false}, second_ran{false};
  auto first = worker.submit([&] {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  std::atomic<bool> submitted{false};
  std::thread submitter([&] {
    worker.submit([&] { second_ran = true; }).get();
    submitted = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(!second_ran);  // the first job holds the only slot
  release = true;
  first.get();
  submitter.join();
  CHECK(submitted);
  CHECK(second_ran);
}
