// medattn: the command-line front end. Each command file (apps/cmd_*.cpp) binds its flags to
// the library's option structs and calls one library function; this file parses and maps the
// outcome to the exit codes of ../shared/CLI.md: 0 all inputs succeeded, 1 some failed,
// 2 usage error, 3 nothing could run.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "core/threads.h"
#include "explain/registry.h"
#include "pipeline/version.h"

using namespace medattn;
using namespace medattn::cli;

namespace {

int run(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("medattn");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  install_signal_cleanup();  // SIGINT/SIGTERM remove this run's temporary files (core/fs.h)

  // Named, so that usage lines (and the man page made from them) say "medattn", not argv[0].
  CLI::App app{"medattn: diagnose medical images with an attention CNN+Transformer and show where it looked", "medattn"};
  app.set_version_flag("--version", pipeline::version_text());
  app.require_subcommand(1);
  app.footer("Run 'medattn COMMAND --help' for a command's options and an example.");
  const Command commands[] = {add_diagnose(app), add_merge(app),  add_train(app), add_pretrain(app),
                              add_evaluate(app), add_fit_ood(app), add_info(app),  add_phantom(app)};

  // Hidden, for the build: `--completion bash` prints the bash completion script, `commands` the
  // commands (for the man page), `methods` the heatmap methods (for scripts), one a line.
  if (argc == 3 && std::string(argv[1]) == "--completion") {
    const std::string what = argv[2];
    if (what == "bash") {
      std::cout << bash_completion(app);
    } else if (what == "methods") {
      for (const auto& name : explain::method_names()) std::cout << name << "\n";
    } else if (what == "commands") {
      for (const auto& c : commands) std::cout << c.app->get_name() << "\n";
    } else {
      std::cerr << "error: --completion takes bash, commands or methods (got '" << what << "')\n";
      return kExitUsage;
    }
    return kExitOk;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n";
    std::cerr << "Run 'medattn --help' or 'medattn COMMAND --help' for usage.\n";
    return kExitUsage;
  }

  try {
    for (const auto& c : commands) {
      if (*c.app) return c.run(command_line(argc, argv));
    }
  } catch (const Error& err) {
    spdlog::error("{}", printable(err.what()));
    return err.kind() == ErrorKind::kInvalidArgument ? kExitUsage : kExitCannotRun;
  } catch (const std::exception& err) {
    spdlog::error("{}", printable(err.what()));
    return kExitCannotRun;
  }
  return kExitUsage;
}

}  // namespace

// Every output file is written, closed and renamed inside run(). What is left at exit is the
// teardown of LibTorch's static registries (every operator deregistered, 30-60 ms of a cold
// start that is about 0.5 s in all): skipped by leaving without static destructors once the
// streams are flushed. Sanitizer builds exit normally, so that the leak check still runs.
int main(int argc, char** argv) {
  medattn::tune_allocator();
  const int rc = run(argc, argv);
  std::cout.flush();
  std::cerr.flush();
  spdlog::shutdown();
  std::fflush(nullptr);
#if !defined(__SANITIZE_ADDRESS__)  // GCC defines it under -fsanitize=address
  std::_Exit(rc);
#endif
  return rc;
}
