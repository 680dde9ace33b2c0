// The test runner: Catch's own, with two warnings always on, so that a green run means the
// tests ran and asserted something. NoAssertions fails a test that asserts nothing; NoTests
// fails a run whose name or tag filter matches no test (a CTest entry made from a test name
// that CTest split, e.g. at a ';', would otherwise pass without running anything).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  const int rc = session.applyCommandLine(argc, argv);
  if (rc != 0) return rc;
  auto& config = session.configData();
  config.warnings = static_cast<Catch::WarnAbout::What>(config.warnings | Catch::WarnAbout::NoAssertions |
                                                        Catch::WarnAbout::NoTests);
  return session.run();
}
