// lab-run-experiment ID [mode…] [name=value…]: runs an experiment's runner against the stack
// and prints metrics, details and the verdict (for developing and measuring runners).
#include <cstdio>
#include <cstring>
#include <string>

#include "harness.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lab-run-experiment ID [mode...] [name=value...]\n");
    return 2;
  }
  std::map<std::string, lab::domain::ParamValue> params;
  std::vector<std::string> modes;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      modes.push_back(a);
      continue;
    }
    std::string v = a.substr(eq + 1);
    bool numeric = !v.empty() && v.find_first_not_of("0123456789-") == std::string::npos;
    if (numeric) {
      params[a.substr(0, eq)] = static_cast<std::int64_t>(std::stoll(v));
    } else {
      params[a.substr(0, eq)] = v;
    }
  }
  auto outcome = lab::testing::RunExperiment(argv[1], params, modes, true);
  std::printf("%s", lab::testing::Describe(outcome).c_str());
  return 0;
}
