// medattn: the command-line front end. Each command file (apps/cmd_*.cpp) binds its flags to
// the library's option structs and calls one library function; this file parses and maps the
// outcome to the exit codes of ../shared/CLI.md: 0 all inputs succeeded, 1 some failed,
// 2 usage error, 3 nothing could run.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "pipeline/version.h"

using namespace medattn;
using namespace medattn::cli;

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("medattn");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  install_signal_cleanup();  // SIGINT/SIGTERM remove this run's temporary files (core/fs.h)

  CLI::App app{"medattn: diagnose medical images with an attention CNN+Transformer and show where it looked"};
  app.set_version_flag("--version", pipeline::version_text());
  app.require_subcommand(1);
  app.footer("Run 'medattn COMMAND --help' for a command's options and an example.");
  const Command commands[] = {add_diagnose(app), add_merge(app),  add_train(app), add_pretrain(app),
                              add_evaluate(app), add_fit_ood(app), add_info(app),  add_phantom(app)};

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
