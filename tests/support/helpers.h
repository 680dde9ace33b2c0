// Helpers shared by the reader tests.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/requires.h"

namespace medattn::testing {

// Every float of a CV_32F matrix (all channels), in memory order.
inline std::vector<float> values(const cv::Mat& m) {
  cv::Mat c = m.isContinuous() ? m : m.clone();
  return std::vector<float>(c.ptr<float>(0), c.ptr<float>(0) + c.total() * c.channels());
}

// Runs `fn`, which must throw medattn::Error of `kind` with exactly `message`.
template <typename Fn>
void require_error(Fn fn, ErrorKind kind, const std::string& message) {
  try {
    fn();
    FAIL("no error thrown; expected: " << message);
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == message);
    CHECK(e.kind() == kind);
  }
}

}  // namespace medattn::testing
