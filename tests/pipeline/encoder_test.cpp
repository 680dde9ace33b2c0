// diagnose's encoding thread (pipeline/encoder.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "pipeline/encoder.h"

using medattn::pipeline::BatchEncoder;

TEST_CASE("the encoding thread runs each batch's work off the calling thread and hands back its exception", "[pipeline][encoder]") {
  BatchEncoder encoder;
  CHECK(encoder.wait() == nullptr);  // nothing in flight
  std::atomic<int> runs{0};
  std::thread::id where;
  encoder.start([&] {
    where = std::this_thread::get_id();
    ++runs;
  });
  CHECK(encoder.wait() == nullptr);
  CHECK(runs == 1);
  CHECK(where != std::this_thread::get_id());
  encoder.start([] { throw std::runtime_error("disk full"); });
  const std::exception_ptr error = encoder.wait();
  REQUIRE(error != nullptr);
  CHECK_THROWS_WITH(std::rethrow_exception(error), "disk full");
  encoder.start([&] { ++runs; });  // still usable after a failure
  CHECK(encoder.wait() == nullptr);
  CHECK(runs == 2);
}

