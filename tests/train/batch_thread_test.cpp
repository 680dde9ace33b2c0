// The training batch thread (train/batch_thread.h): one long-lived thread, jobs in order,
// exceptions delivered through the future.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <thread>
#include <vector>

#include "train/batch_thread.h"

using namespace medattn::train;

TEST_CASE("the batch thread runs every job on one thread of its own, in the order submitted", "[train][batch_thread]") {
  std::thread::id started;
  std::vector<int> order;
  std::vector<std::thread::id> ran_on;
  {
    BatchThread batches([&] { started = std::this_thread::get_id(); });
    std::vector<std::future<int>> results;
    for (int i = 0; i < 20; ++i) {
      results.push_back(batches.submit<int>([&, i] {
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

TEST_CASE("a job's exception reaches its future and the thread carries on", "[train][batch_thread]") {
  BatchThread batches;
  auto failing = batches.submit<int>([]() -> int { throw std::runtime_error("no batch"); });
  auto next = batches.submit<int>([] { return 7; });
  CHECK_THROWS_WITH(failing.get(), "no batch");
  CHECK(next.get() == 7);
}
